"""Release requests in Debian's chromium through chromium-driver (Selenium).

Run by tests/console_browser_quarantine_requests.rs with:
BASE_URL ADMIN USER PASSWORD ITEM_ID SCREENSHOT_DIR.
As the user, whose item's quarantine policy grants only request release: the item's page with
its policy and no Release button; "Request release"; the status. As the admin: the quarantine
filtered by "Release requested", the item, "Deny release"; the user sees it denied.
Screenshots qrequest-NN-*.png go to SCREENSHOT_DIR. Prints "ok" at the end.
"""
import sys

from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select

from hato_browser import Browser

base, admin, user, password, item_id, shots = sys.argv[1:7]
b = Browser(base, shots)
driver, wait, shot = b.driver, b.wait, b.shot

try:
    b.sign_in(user, password, "/quarantine/%s" % item_id)
    b.wait_for("dd.quarantine-policy")
    assert driver.find_element(By.CSS_SELECTOR, "dd.quarantine-policy").text == "RequestOnly"
    assert not driver.find_elements(By.CSS_SELECTOR, "form[action='/quarantine/%s/release']" % item_id)
    shot("qrequest-01-user-item")
    driver.find_element(By.CSS_SELECTOR, "form[action='/quarantine/%s/request-release'] button" % item_id).click()
    b.wait_for("p.done")
    assert "Release requested" in driver.find_element(By.CSS_SELECTOR, "p.done").text
    assert driver.find_element(By.CSS_SELECTOR, "dd.request").text.startswith("Release requested")
    shot("qrequest-02-user-requested")
    b.check_console_log()
    b.sign_out()

    b.sign_in(admin, password, "/quarantine")
    b.wait_for("form.query[action='/quarantine']")
    Select(driver.find_element(By.NAME, "request")).select_by_value("pending")
    driver.find_element(By.CSS_SELECTOR, "form.query button[type=submit]").click()
    wait.until(lambda d: "request=pending" in d.current_url)
    rows = driver.find_elements(By.CSS_SELECTOR, "table.data tbody tr")
    assert len(rows) == 1, [r.text for r in rows]
    assert "Release requested" in rows[0].text, rows[0].text
    shot("qrequest-03-admin-requests")
    driver.find_element(By.CSS_SELECTOR, "a[href='/quarantine/%s']" % item_id).click()
    b.wait_for("form[action='/quarantine/%s/deny-release']" % item_id)
    shot("qrequest-04-admin-item")
    driver.find_element(By.CSS_SELECTOR, "form[action='/quarantine/%s/deny-release'] button" % item_id).click()
    b.wait_for("p.done")
    assert "denied" in driver.find_element(By.CSS_SELECTOR, "p.done").text
    assert driver.find_element(By.CSS_SELECTOR, "dd.request").text.startswith("Denied")
    shot("qrequest-05-admin-denied")
    b.finish()
    print("ok")
finally:
    b.quit()
