"""The live trace's expired session, and delist decisions, in Debian's chromium through
chromium-driver (Selenium).

Run by tests/console_browser_s10.rs with: BASE_URL ADMIN PASSWORD OPERATOR_TOKEN SCREENSHOT_DIR.
As the admin: a trace query open with its live poller; the server's test clock moved past the
console's idle time (the API's /api/v1/testing/clock, with the operator token); at the next
poll (every 5 seconds) the page goes by itself to the sign-in page, which leads back to the
query. As the operator: the block list tab's pending delist request approved with its button.
Screenshots s10-NN-*.png go to SCREENSHOT_DIR. Prints "ok" at the end; a failed check raises.
"""
import json
import sys
import urllib.request

from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from hato_browser import Browser

base, admin, password, operator_token, shots = sys.argv[1:6]
b = Browser(base, shots)
driver, wait, shot = b.driver, b.wait, b.shot


def advance_clock(seconds):
    req = urllib.request.Request(
        base + "/api/v1/testing/clock",
        data=json.dumps({"advance_seconds": seconds}).encode(),
        headers={"Authorization": "Bearer " + operator_token, "Content-Type": "application/json"},
        method="POST")
    with urllib.request.urlopen(req, timeout=30) as r:
        assert r.status == 200, r.status


try:
    b.sign_in(admin, password, "/trace?recipient=alice%40contoso.test")
    b.wait_for("#live[hx-trigger='every 5s']")
    shot("s10-01-trace-open")
    # Idle past the console's idle time (30 minutes) on the server's clock: the next poll sends
    # the whole page to the sign-in page, with the query to come back to.
    advance_clock(31 * 60)
    WebDriverWait(driver, 30).until(lambda d: "/login" in d.current_url)
    assert "next=%2Ftrace%3Frecipient%3Dalice%2540contoso.test" in driver.current_url, driver.current_url
    shot("s10-02-signed-out")
    driver.find_element(By.NAME, "address").send_keys(admin)
    driver.find_element(By.NAME, "password").send_keys(password)
    driver.find_element(By.CSS_SELECTOR, "form.login button[type=submit]").click()
    wait.until(lambda d: "/trace?recipient=alice%40contoso.test" in d.current_url)
    b.wait_for("#live")
    shot("s10-03-back")
    b.sign_out()

    # The operator approves the pending delist request from its row.
    b.sign_in("operator", operator_token, "/protection/blocklist?tenant=contoso")
    b.wait_for("#delist-requests")
    shot("s10-04-delist-pending")
    driver.find_element(By.CSS_SELECTOR, "#delist-requests tr.request-pending input[name=reason]").send_keys("cleaned up")
    driver.find_element(By.CSS_SELECTOR, "#delist-requests tr.request-pending button[value=approve]").click()
    b.wait_for("p.notice")
    assert "Approved" in driver.find_element(By.CSS_SELECTOR, "p.notice").text
    assert driver.find_elements(By.CSS_SELECTOR, "#delist-requests tr.request-approved")
    shot("s10-05-delist-approved")
    b.finish()
    print("ok")
finally:
    b.quit()
