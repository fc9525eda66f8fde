"""Drives the web console in Debian's chromium through chromium-driver (Selenium), headless.

Run by tests/console_browser.rs with: BASE_URL ADDRESS PASSWORD TRACE_ID SCREENSHOT_DIR.
Signs in, finds the message in message trace, opens its detail and sees its events, switches
to Japanese and sees Japanese labels; a screenshot of each page goes to SCREENSHOT_DIR.
Prints "ok" at the end; any failed check raises (non-zero exit).
"""
import sys

from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC

from hato_browser import Browser

base, address, password, trace_id, shots = sys.argv[1:6]
b = Browser(base, shots)
driver, wait, shot = b.driver, b.wait, b.shot


def check_console_log():
    b.check_console_log()


try:
    driver.get(base + "/trace")
    # Not signed in: the sign-in page, which will come back to /trace.
    wait.until(EC.presence_of_element_located((By.NAME, "address")))
    assert "/login?next=%2Ftrace" in driver.current_url, driver.current_url
    shot("01-sign-in")
    driver.find_element(By.NAME, "address").send_keys(address)
    driver.find_element(By.NAME, "password").send_keys(password)
    driver.find_element(By.CSS_SELECTOR, "form.login button[type=submit]").click()
    wait.until(EC.presence_of_element_located((By.CSS_SELECTOR, "form.query")))
    assert driver.current_url.endswith("/trace"), driver.current_url
    check_console_log()

    # The query builder, through htmx (the results swap in place).
    sender = driver.find_element(By.NAME, "sender")
    sender.send_keys("*@outside.test")
    driver.find_element(By.CSS_SELECTOR, "form.query button[type=submit]").click()
    wait.until(lambda d: "sender=" in d.current_url)
    link = wait.until(EC.presence_of_element_located(
        (By.XPATH, "//table[contains(@class,'data')]//a[contains(@href,'" + trace_id + "')]")))
    # The subject is text, not markup: the <script> in it shows as written.
    assert link.text == "<script>alert(1)</script>", link.text
    shot("02-message-trace")

    link.click()
    wait.until(EC.presence_of_element_located((By.CSS_SELECTOR, "table.events")))
    events = [td.text for td in driver.find_elements(By.CSS_SELECTOR, "table.events td.event")]
    assert "Receive" in events and "Deliver" in events, events
    assert driver.find_element(By.CSS_SELECTOR, "dd.subject").text == "<script>alert(1)</script>"
    shot("03-trace-detail")

    driver.find_element(By.LINK_TEXT, "Home").click()
    wait.until(EC.presence_of_element_located((By.CSS_SELECTOR, "svg.chart")))
    shot("04-home")

    driver.find_element(By.LINK_TEXT, "Quarantine").click()
    wait.until(EC.presence_of_element_located((By.CSS_SELECTOR, "form.query[action='/quarantine']")))
    shot("05-quarantine")

    # Japanese.
    driver.find_element(By.LINK_TEXT, "日本語").click()
    wait.until(EC.presence_of_element_located((By.CSS_SELECTOR, "html[lang=ja]")))
    driver.find_element(By.LINK_TEXT, "メッセージ追跡").click()
    wait.until(EC.presence_of_element_located((By.CSS_SELECTOR, "form.query")))
    body = driver.find_element(By.TAG_NAME, "body").text
    for label in ("メッセージ追跡", "検疫", "送信者", "受信者", "配信状態", "サインアウト"):
        assert label in body, label
    shot("06-message-trace-ja")
    driver.find_element(By.LINK_TEXT, "ホーム").click()
    wait.until(EC.presence_of_element_located((By.CSS_SELECTOR, "svg.chart")))
    assert "過去 24 時間" in driver.find_element(By.TAG_NAME, "body").text
    shot("07-home-ja")
    check_console_log()

    # Sign out: back to the sign-in page, and the console is closed again.
    driver.find_element(By.CSS_SELECTOR, "form[action='/logout'] button").click()
    wait.until(EC.presence_of_element_located((By.NAME, "password")))
    driver.get(base + "/trace")
    wait.until(EC.presence_of_element_located((By.NAME, "password")))
    b.finish()
    print("ok")
finally:
    b.quit()
