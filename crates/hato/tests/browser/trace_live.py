"""Message trace's live updates and saved queries in Debian's chromium through chromium-driver
(Selenium).

Run by tests/console_browser_trace_live.rs with: BASE_URL ADMIN PASSWORD SMTP_HOST SMTP_PORT
SCREENSHOT_DIR. As the admin: a query for alice's mail open; a message sent to alice by SMTP
(Python's smtplib) while the page is open shows up in it by itself (htmx polls every 5 seconds;
no inline script: the CSP check passes), one to bob does not; the query saved under a name,
run from its link and deleted; Home with its throttled-IP panel. Screenshots trace-live-NN-*.png
go to SCREENSHOT_DIR. Prints "ok" at the end; a failed check raises.
"""
import smtplib
import sys
import time

from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import WebDriverWait

from hato_browser import Browser

base, admin, password, smtp_host, smtp_port, shots = sys.argv[1:7]
b = Browser(base, shots)
driver, wait, shot = b.driver, b.wait, b.shot


def send(to, subject):
    with smtplib.SMTP(smtp_host, int(smtp_port), timeout=30) as c:
        c.ehlo("client.outside.test")
        msg = "From: <sender@outside.test>\r\nTo: <%s>\r\nSubject: %s\r\n\r\nhello\r\n" % (to, subject)
        c.sendmail("sender@outside.test", [to], msg)


try:
    b.sign_in(admin, password, "/trace?recipient=alice%40contoso.test")
    b.wait_for("#live[hx-trigger='every 5s']")
    assert "before the page" in driver.find_element(By.ID, "results").text
    shot("trace-live-01-open")

    # Mail arrives while the page is open: alice's row appears by itself, bob's never.
    send("bob@contoso.test", "live for bob")
    send("alice@contoso.test", "live for alice")
    WebDriverWait(driver, 30).until(
        lambda d: "live for alice" in d.find_element(By.ID, "live").text)
    live = driver.find_element(By.ID, "live").text
    assert "live for bob" not in live, live
    assert "before the page" not in live, live
    assert "/trace?recipient=alice%40contoso.test" in driver.current_url
    shot("trace-live-02-new-row")
    # Its row links to the detail, as every row does.
    driver.find_element(By.LINK_TEXT, "live for alice").click()
    b.wait_for("table.events")
    shot("trace-live-03-detail")

    # Save the query under a name, run it from its link, delete it.
    driver.get(base + "/trace?recipient=alice%40contoso.test")
    b.wait_for("#saved-queries")
    driver.find_element(By.CSS_SELECTOR, "#saved-queries input[name=name]").send_keys("Alice's mail")
    driver.find_element(By.CSS_SELECTOR, "form[action='/trace/saved'] button").click()
    b.wait_for("p.done")
    assert "Query saved." in driver.find_element(By.CSS_SELECTOR, "p.done").text
    shot("trace-live-04-saved")
    driver.get(base + "/trace")
    driver.find_element(By.LINK_TEXT, "Alice's mail").click()
    wait.until(lambda d: "recipient=alice%40contoso.test" in d.current_url)
    assert "live for bob" not in driver.find_element(By.ID, "results").text
    driver.find_element(By.CSS_SELECTOR, "form[action='/trace/saved/delete'] button").click()
    b.wait_for("p.done")
    assert "Saved query deleted." in driver.find_element(By.CSS_SELECTOR, "p.done").text
    assert not driver.find_elements(By.CSS_SELECTOR, "a.saved-query")

    # Home: the figures, the top lists and the throttled IPs.
    driver.get(base + "/")
    b.wait_for("#throttled-ips")
    assert "sender@outside.test" in driver.find_element(By.TAG_NAME, "body").text
    shot("trace-live-05-home")
    b.finish()
    print("ok")
finally:
    b.quit()
