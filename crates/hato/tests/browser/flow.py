"""The console's Mail flow and Protection pages in Debian's chromium (Selenium, headless).

Run by tests/console_browser_flow.rs with: BASE_URL ADDRESS PASSWORD SCREENSHOT_DIR.
Signs in as a tenant admin, creates two transport rules and moves the second above the first
(the order on the page changes; the Rust side checks the API's priorities after), tests a
message against them and sees both match, adds an IP to the connection filter's block list,
and switches Mail flow to Japanese. Screenshots flow-NN-*.png go to SCREENSHOT_DIR. Prints
"ok" at the end; any failed check raises (non-zero exit).
"""
import sys

from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import Select

from hato_browser import Browser

base, address, password, shots = sys.argv[1:5]
b = Browser(base, shots)
driver, wait, shot = b.driver, b.wait, b.shot


def rule_order():
    return [a.text for a in driver.find_elements(By.CSS_SELECTOR, "td.rule-name a")]


def create_rule(name, word, prefix):
    form = driver.find_element(By.CSS_SELECTOR, "form.rule-form")
    form.find_element(By.NAME, "name").send_keys(name)
    Select(form.find_element(By.NAME, "condition")).select_by_value("subject_contains_words")
    form.find_element(By.NAME, "condition_value").send_keys(word)
    Select(form.find_element(By.NAME, "action")).select_by_value("prepend_subject")
    form.find_element(By.NAME, "action_value").send_keys(prefix)
    form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    wait.until(EC.presence_of_element_located((By.CSS_SELECTOR, "p.notice")))
    assert "done=created" in driver.current_url, driver.current_url


try:
    b.sign_in(address, password, "/mail-flow")
    wait.until(EC.presence_of_element_located((By.CSS_SELECTOR, "form.rule-form")))
    create_rule("Tag invoices", "invoice", "[invoice]")
    create_rule("Tag urgent", "urgent", "[urgent]")
    assert rule_order() == ["Tag invoices", "Tag urgent"], rule_order()
    shot("flow-01-rules")

    # Open the second rule and move it up: back on the list, it comes first.
    driver.find_element(By.LINK_TEXT, "Tag urgent").click()
    wait.until(EC.presence_of_element_located((By.CSS_SELECTOR, "h2.rule-title")))
    assert driver.find_elements(By.CSS_SELECTOR, "button[data-op=down]") == []
    shot("flow-02-rule-detail")
    driver.find_element(By.CSS_SELECTOR, "button[data-op=up]").click()
    wait.until(lambda d: "done=moved" in d.current_url)
    assert rule_order() == ["Tag urgent", "Tag invoices"], rule_order()
    shot("flow-03-reordered")

    # Test a message: both rules match, the moved one first.
    form = driver.find_element(By.CSS_SELECTOR, "form.rule-test")
    form.find_element(By.NAME, "from").send_keys("someone@outside.test")
    form.find_element(By.NAME, "to").send_keys(address)
    form.find_element(By.NAME, "subject").send_keys("urgent: invoice 42")
    form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    wait.until(EC.presence_of_element_located((By.ID, "test-result")))
    hits = [td.text for td in driver.find_elements(By.CSS_SELECTOR, "td.hit-rule")]
    assert hits == ["Tag urgent", "Tag invoices"], hits
    shot("flow-04-rule-test")

    # Protection: an IP on the connection filter's block list.
    driver.find_element(By.LINK_TEXT, "Protection").click()
    wait.until(EC.presence_of_element_located((By.CSS_SELECTOR, "form.ip-form")))
    form = driver.find_element(By.CSS_SELECTOR, "form.ip-form")
    Select(form.find_element(By.NAME, "list")).select_by_value("ip_block_list")
    form.find_element(By.NAME, "entry").send_keys("192.0.2.55")
    form.find_element(By.CSS_SELECTOR, "button[value=add]").click()
    wait.until(EC.presence_of_element_located((By.CSS_SELECTOR, "p.notice")))
    cells = [td.text for td in driver.find_elements(By.CSS_SELECTOR, "table.data td")]
    assert "192.0.2.55" in cells, cells
    shot("flow-05-connection-filter")

    # Mail flow in Japanese.
    driver.find_element(By.LINK_TEXT, "Mail flow").click()
    wait.until(EC.presence_of_element_located((By.CSS_SELECTOR, "form.rule-form")))
    driver.find_element(By.LINK_TEXT, "日本語").click()
    wait.until(EC.presence_of_element_located((By.CSS_SELECTOR, "html[lang=ja]")))
    body = driver.find_element(By.TAG_NAME, "body").text
    for label in ("メール フロー", "ルール", "承認済みドメイン", "コネクタ", "キュー", "新しいルール",
                  "メッセージのテスト"):
        assert label in body, label
    shot("flow-06-mail-flow-ja")
    driver.find_element(By.LINK_TEXT, "承認済みドメイン").click()
    wait.until(EC.presence_of_element_located((By.CSS_SELECTOR, "td.domain-verified")))
    shot("flow-07-accepted-domains-ja")
    driver.find_element(By.LINK_TEXT, "English").click()
    wait.until(EC.presence_of_element_located((By.CSS_SELECTOR, "html[lang=en]")))

    b.finish()
    print("ok")
finally:
    b.quit()
