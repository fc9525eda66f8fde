"""Rule exceptions and editing, inbound connector validation and a custom malware policy in
Debian's chromium (Selenium, headless).

Run by tests/console_browser_flow_s9.rs with: BASE_URL ADDRESS PASSWORD SCREENSHOT_DIR.
Signs in as a tenant admin; creates a rule with a condition, an exception and an action from
the rows of the rule form; opens it, sees its description, changes its condition's words and
saves; validates the inbound connector "Onprem" for a sending IP; creates the malware policy
"Finance". Screenshots flow-s9-NN-*.png go to SCREENSHOT_DIR. Prints "ok" at the end; any
failed check raises (non-zero exit).
"""
import sys

from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import Select

from hato_browser import Browser

base, address, password, shots = sys.argv[1:5]
b = Browser(base, shots)
driver, wait, shot = b.driver, b.wait, b.shot


def row(form, kind, n):
    """The n-th row (select, value) of conditions, exceptions or actions."""
    rows = form.find_elements(By.CSS_SELECTOR, f"fieldset[data-kind={kind}] .rule-row")
    r = rows[n]
    return Select(r.find_element(By.TAG_NAME, "select")), r.find_element(By.TAG_NAME, "textarea")


try:
    b.sign_in(address, password, "/mail-flow")
    form = wait.until(EC.presence_of_element_located((By.CSS_SELECTOR, "form.rule-form")))
    form.find_element(By.NAME, "name").send_keys("Tag invoices")
    select, value = row(form, "condition", 0)
    select.select_by_value("subject_contains_words")
    value.send_keys("invoice")
    select, value = row(form, "exception", 0)
    select.select_by_value("from")
    value.send_keys("boss@outside.test")
    select, value = row(form, "action", 0)
    select.select_by_value("prepend_subject")
    value.send_keys("[ext]")
    shot("flow-s9-01-rule-form")
    form.find_element(By.CSS_SELECTOR, "div.actions button[type=submit]").click()
    wait.until(lambda d: "done=created" in d.current_url)
    assert "boss@outside.test" in driver.page_source

    driver.find_element(By.LINK_TEXT, "Tag invoices").click()
    wait.until(EC.presence_of_element_located((By.CSS_SELECTOR, "dl.rule-description")))
    assert "Except if" in driver.find_element(By.CSS_SELECTOR, "dl.rule-description").text
    shot("flow-s9-02-rule-description")
    form = driver.find_element(By.CSS_SELECTOR, "form.rule-form")
    select, value = row(form, "condition", 0)
    assert select.first_selected_option.get_attribute("value") == "subject_contains_words"
    value.clear()
    value.send_keys("payment")
    form.find_element(By.CSS_SELECTOR, "div.actions button[type=submit]").click()
    wait.until(lambda d: "done=changed" in d.current_url)
    assert "payment" in driver.find_element(By.CSS_SELECTOR, "dd.conditions").text
    shot("flow-s9-03-rule-edited")

    driver.get(base + "/mail-flow/connectors/inbound/Onprem")
    form = wait.until(EC.presence_of_element_located((By.CSS_SELECTOR, "form.validate")))
    form.find_element(By.NAME, "sender_ip_address").send_keys("127.0.0.9")
    form.find_element(By.NAME, "sender_address").send_keys("app@contoso.test")
    form.find_element(By.CSS_SELECTOR, "button[value=validate]").click()
    result = wait.until(EC.presence_of_element_located((By.ID, "validation")))
    assert "contoso/Onprem" in result.find_element(By.CSS_SELECTOR, "dd.attributed").text
    shot("flow-s9-04-connector-validated")

    driver.get(base + "/protection/malware")
    form = wait.until(
        EC.presence_of_element_located((By.CSS_SELECTOR, "form.malware-policy-form"))
    )
    form.find_element(By.NAME, "name").send_keys("Finance")
    form.find_element(By.NAME, "sent_to").send_keys(address)
    form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    wait.until(lambda d: "done=created" in d.current_url)
    assert "Finance" in driver.find_element(By.CSS_SELECTOR, "h2.policy-title").text
    shot("flow-s9-05-malware-policy")
    b.finish()
    print("ok")
finally:
    b.quit()
