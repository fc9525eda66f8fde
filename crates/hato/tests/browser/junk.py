"""Junk email settings in Debian's chromium through chromium-driver (Selenium).

Run by tests/console_browser_junk.rs with: BASE_URL ADMIN USER PASSWORD ITEM_ID SCREENSHOT_DIR.
As the user: the quarantined item's page, "Allow sender"; the "Junk email settings" tab shows
the sender among the safe senders; a domain added to the blocked senders; removed again. As
the admin: the user's mailbox in Recipients, its junk email settings. Screenshots
junk-NN-*.png go to SCREENSHOT_DIR. Prints "ok" at the end.
"""
import sys

from selenium.webdriver.common.by import By

from hato_browser import Browser

base, admin, user, password, item_id, shots = sys.argv[1:7]
b = Browser(base, shots)
driver, wait, shot = b.driver, b.wait, b.shot

try:
    b.sign_in(user, password, "/quarantine/%s" % item_id)
    b.wait_for("form[action='/quarantine/%s/allow-sender']" % item_id)
    shot("junk-01-user-item")
    driver.find_element(By.CSS_SELECTOR, "form[action='/quarantine/%s/allow-sender'] button" % item_id).click()
    b.wait_for("p.done")
    assert "safe senders" in driver.find_element(By.CSS_SELECTOR, "p.done").text
    shot("junk-02-sender-allowed")
    driver.find_element(By.CSS_SELECTOR, "nav.tabs a[href='/junk-email']").click()
    b.wait_for("section.junk-list.trusted")
    trusted = driver.find_element(By.CSS_SELECTOR, "section.junk-list.trusted").text
    assert "spammer@outside.test" in trusted, trusted
    driver.find_element(By.CSS_SELECTOR, "section.junk-list.blocked input[name=entries]").send_keys("bulk.example")
    driver.find_element(By.CSS_SELECTOR, "section.junk-list.blocked button.add-blocked").click()
    b.wait_for("p.done")
    blocked = driver.find_element(By.CSS_SELECTOR, "section.junk-list.blocked").text
    assert "bulk.example" in blocked, blocked
    shot("junk-03-user-settings")
    driver.find_element(By.CSS_SELECTOR, "section.junk-list.blocked button.remove-blocked").click()
    b.wait_for("p.done")
    assert "Removed" in driver.find_element(By.CSS_SELECTOR, "p.done").text
    assert "bulk.example" not in driver.find_element(By.CSS_SELECTOR, "section.junk-list.blocked").text
    b.check_console_log()
    b.sign_out()

    b.sign_in(admin, password, "/recipients/mailbox/%s" % user)
    b.wait_for("a.junk-settings")
    driver.find_element(By.CSS_SELECTOR, "a.junk-settings").click()
    b.wait_for("section.junk-list.trusted")
    assert "spammer@outside.test" in driver.find_element(By.CSS_SELECTOR, "section.junk-list.trusted").text
    shot("junk-04-admin-view")
    b.finish()
    print("ok")
finally:
    b.quit()
