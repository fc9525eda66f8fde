"""The console's Quarantine section in Debian's chromium through chromium-driver (Selenium).

Run by tests/console_browser_quarantine.rs with:
BASE_URL ADMIN USER PASSWORD SPAM_ID MALWARE_ID SCREENSHOT_DIR.
As the admin: the list, the spam message's page (why it was held, its preview), release it,
and see it delivered in message trace. As the user: their list (no malware in it), refused the
malware message's page and a forged release of it (the page says why), their Junk Email and a
not-junk report that moves the message to the Inbox; the section in Japanese. Screenshots
quarantine-NN-*.png go to SCREENSHOT_DIR. Prints "ok" at the end; a failed check raises.
"""
import sys
import time

from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC

from hato_browser import Browser

base, admin, user, password, spam_id, malware_id, shots = sys.argv[1:8]
b = Browser(base, shots)
driver, wait, shot = b.driver, b.wait, b.shot


def body_text():
    return driver.find_element(By.TAG_NAME, "body").text


try:
    # The admin: every held message of the tenant.
    b.sign_in(admin, password, "/quarantine")
    b.wait_for("form.query[action='/quarantine']")
    rows = driver.find_elements(By.CSS_SELECTOR, "table.data tbody tr")
    assert len(rows) == 2, [r.text for r in rows]
    assert "Malware" in body_text() and "High confidence spam" in body_text(), body_text()
    shot("quarantine-01-list")

    # Filter by reason (a plain GET form).
    kind = driver.find_element(By.NAME, "kind")
    kind.find_element(By.CSS_SELECTOR, "option[value='high-confidence-spam']").click()
    driver.find_element(By.CSS_SELECTOR, "form.query button[type=submit]").click()
    wait.until(lambda d: "kind=high-confidence-spam" in d.current_url)
    rows = driver.find_elements(By.CSS_SELECTOR, "table.data tbody tr")
    assert len(rows) == 1, [r.text for r in rows]

    # The spam message: why, and its text (the <script> of its subject as text).
    driver.find_element(By.CSS_SELECTOR, "a[href='/quarantine/%s']" % spam_id).click()
    b.wait_for("div.why")
    assert driver.find_element(By.CSS_SELECTOR, "dd.subject").text == "<script>x</script> spam for release"
    assert "scl = 9" in driver.find_element(By.CSS_SELECTOR, "div.why").text
    assert "GTUBE" in driver.find_element(By.CSS_SELECTOR, "pre.text").text
    shot("quarantine-02-detail")

    # Release it: back to the page with a note; released.
    driver.find_element(By.CSS_SELECTOR, "form[action='/quarantine/%s/release'] button" % spam_id).click()
    b.wait_for("p.done")
    assert "Released: 1 recipient" in driver.find_element(By.CSS_SELECTOR, "p.done").text
    assert driver.find_element(By.CSS_SELECTOR, "dd.state").text == "Released"
    shot("quarantine-03-released")

    # Message trace: the release and the delivery.
    driver.get(base + "/trace?subject=spam%20for%20release")
    link = b.wait_for("table.data tbody a")
    link.click()
    for _ in range(50):
        events = [td.text for td in driver.find_elements(By.CSS_SELECTOR, "table.events td.event")]
        if "Deliver" in events:
            break
        time.sleep(0.2)
        driver.refresh()
    assert "Release" in events and "Deliver" in events, events
    shot("quarantine-04-trace-delivered")
    b.check_console_log()
    b.sign_out()

    # The user: their own messages of the kinds users manage; no malware.
    b.sign_in(user, password, "/quarantine")
    b.wait_for("form.query[action='/quarantine']")
    assert "Malware" not in driver.find_element(By.ID, "results").text
    assert "only admins can release them" in body_text()
    shot("quarantine-05-user-list")

    # The malware message: refused, saying why.
    driver.get(base + "/quarantine/" + malware_id)
    b.wait_for("p.error")
    assert "only admins may see or release messages quarantined as malware" in \
        driver.find_element(By.CSS_SELECTOR, "p.error").text
    # A forged release (a form the console never shows, with the session's token): refused.
    driver.execute_script(
        """
        const token = document.querySelector("input[name=_csrf]").value;
        const f = document.createElement("form");
        f.method = "post";
        f.action = "/quarantine/" + arguments[0] + "/release";
        const i = document.createElement("input");
        i.type = "hidden"; i.name = "_csrf"; i.value = token;
        f.appendChild(i);
        document.body.appendChild(f);
        f.submit();
        """,
        malware_id,
    )
    wait.until(lambda d: d.current_url.endswith("/quarantine/%s/release" % malware_id))
    error = b.wait_for("p.error").text
    assert "only admins may see or release messages quarantined as malware" in error, error
    assert driver.find_element(By.TAG_NAME, "h1").text == "Not permitted"
    shot("quarantine-06-user-refused-malware")

    # Junk Email: report not junk; the message moves to the Inbox.
    driver.get(base + "/quarantine")
    driver.find_element(By.LINK_TEXT, "Junk Email").click()
    link = b.wait_for("table.data tbody a")
    assert link.text == "weekly offers"
    shot("quarantine-07-junk-email")
    link.click()
    driver.find_element(By.CSS_SELECTOR, "button.report").click()
    b.wait_for("p.done")
    assert "Reported as not junk" in driver.find_element(By.CSS_SELECTOR, "p.done").text
    assert not driver.find_elements(By.CSS_SELECTOR, "table.data tbody a")
    driver.find_element(By.LINK_TEXT, "Inbox").click()
    wait.until(EC.presence_of_element_located((By.LINK_TEXT, "weekly offers")))
    shot("quarantine-08-not-junk-in-inbox")

    # In Japanese.
    driver.get(base + "/quarantine")
    driver.find_element(By.LINK_TEXT, "日本語").click()
    wait.until(EC.presence_of_element_located((By.CSS_SELECTOR, "html[lang=ja]")))
    text = body_text()
    for label in ("検疫", "検疫の理由", "迷惑メール", "受信トレイ", "解放の状態"):
        assert label in text, label
    shot("quarantine-09-ja")
    b.finish()
    print("ok")
finally:
    b.quit()
