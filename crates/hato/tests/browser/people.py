"""The console's Recipients and Groups pages in Debian's chromium (Selenium, headless).

Run by tests/console_browser_people.rs with: BASE_URL ADDRESS PASSWORD SMTP_HOST SMTP_PORT
SCREENSHOT_DIR. Signs in as a tenant admin; creates a mailbox; creates a group and adds that
mailbox as a member; sends a message by SMTP (smtplib) to a moderated group, approves it in the
moderation queue and sees it delivered in message trace; types a dynamic group's filter and
sees the live preview list a member; switches to Japanese on a Groups page. Screenshots
`people-NN-*.png` go to SCREENSHOT_DIR. Prints "ok" at the end; any failed check raises.
"""
import smtplib
import sys
import time

from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC

from hato_browser import Browser

base, address, password, smtp_host, smtp_port, shots = sys.argv[1:7]
b = Browser(base, shots)
driver, wait, shot = b.driver, b.wait, b.shot


def body_text():
    return driver.find_element(By.TAG_NAME, "body").text


def fill(name, value, scope=None):
    el = (scope or driver).find_element(By.NAME, name)
    el.clear()
    el.send_keys(value)
    return el


try:
    b.sign_in(address, password, "/recipients")
    assert driver.current_url.endswith("/recipients"), driver.current_url

    # A new mailbox.
    driver.find_element(By.CSS_SELECTOR, "details.panel > summary").click()
    form = driver.find_element(By.ID, "new-mailbox")
    fill("address", "newbie@contoso.test", form)
    fill("display_name", "Newbie <New>", form)
    fill("password", "a long enough password", form)
    shot("people-01-new-mailbox")
    form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    wait.until(lambda d: "/recipients/mailbox/newbie%40contoso.test" in d.current_url)
    assert driver.find_element(By.CSS_SELECTOR, "p.done").is_displayed()
    assert driver.find_element(By.CSS_SELECTOR, "dd.display-name").text == "Newbie <New>"
    shot("people-02-mailbox")
    driver.find_element(By.CSS_SELECTOR, "a[data-nav='/recipients']").click()
    wait.until(EC.presence_of_element_located((By.CSS_SELECTOR, "table.data")))
    assert "newbie@contoso.test" in body_text()
    shot("people-03-mailboxes")

    # A group, then that mailbox as its member.
    driver.find_element(By.CSS_SELECTOR, "a[data-nav='/groups']").click()
    wait.until(EC.presence_of_element_located((By.CSS_SELECTOR, "nav.tabs")))
    driver.find_element(By.CSS_SELECTOR, "details.panel > summary").click()
    form = driver.find_element(By.ID, "new-group")
    fill("name", "Team", form)
    fill("address", "team@contoso.test", form)
    form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    wait.until(lambda d: "/groups/g/team%40contoso.test" in d.current_url)
    form = driver.find_element(By.ID, "add-member")
    fill("who", "newbie@contoso.test", form)
    form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    wait.until(EC.presence_of_element_located((By.CSS_SELECTOR, "table#members")))
    members = driver.find_element(By.CSS_SELECTOR, "table#members").text
    assert "newbie@contoso.test" in members and "Newbie <New>" in members, members
    shot("people-04-group-member")

    # A message to the moderated group, by SMTP; approved in the queue; delivered.
    with smtplib.SMTP(smtp_host, int(smtp_port)) as smtp:
        smtp.sendmail("someone@outside.test", ["moderated@contoso.test"],
                      "Subject: please approve me\r\n\r\nhello\r\n")
    deadline = time.time() + 20
    while True:
        driver.get(base + "/groups/moderation")
        if "please approve me" in body_text():
            break
        assert time.time() < deadline, "the message was never held"
        time.sleep(0.5)
    shot("people-05-moderation-queue")
    row = driver.find_element(By.XPATH, "//tr[td[contains(., 'please approve me')]]")
    row.find_element(By.CSS_SELECTOR, "button[value=approve]").click()
    wait.until(lambda d: "done=approved" in d.current_url)
    assert "Approved." in body_text()
    deadline = time.time() + 20
    while True:
        driver.get(base + "/trace?status=Delivered")
        if "please approve me" in body_text():
            break
        assert time.time() < deadline, "the approved message was never delivered"
        time.sleep(0.5)
    shot("people-06-delivered")

    # A dynamic group's live preview (htmx: typing fills #preview).
    driver.get(base + "/groups?type=dynamic")
    driver.find_element(By.CSS_SELECTOR, "details.panel > summary").click()
    box = driver.find_element(By.NAME, "recipient_filter")
    box.send_keys("Department -eq 'Sales'")
    wait.until(lambda d: "member@contoso.test" in d.find_element(By.ID, "preview").text)
    assert "newbie@contoso.test" not in driver.find_element(By.ID, "preview").text
    shot("people-07-dynamic-preview")

    # Japanese, on a Groups page.
    driver.get(base + "/groups")
    driver.find_element(By.LINK_TEXT, "日本語").click()
    wait.until(EC.presence_of_element_located((By.CSS_SELECTOR, "html[lang=ja]")))
    text = body_text()
    for label in ("配布リスト", "動的配布リスト", "モデレーション", "受信者", "グループ"):
        assert label in text, label
    shot("people-08-groups-ja")
    driver.get(base + "/groups/g/team%40contoso.test")
    assert "メンバー" in body_text()
    b.finish()
    print("ok")
finally:
    b.quit()
