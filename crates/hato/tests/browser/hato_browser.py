"""What every real-browser test of the console shares: Debian's chromium through
chromium-driver (never a downloaded browser), headless; sign-in; screenshots; the check that
the page broke no Content-Security-Policy rule (an inline script or style shows up in the
browser's log)."""
import os

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import WebDriverWait


class Browser:
    def __init__(self, base, shots):
        self.base = base
        self.shots = shots
        os.makedirs(shots, exist_ok=True)
        options = webdriver.ChromeOptions()
        options.binary_location = "/usr/bin/chromium"
        for arg in ("--headless=new", "--no-sandbox", "--disable-gpu",
                    "--disable-dev-shm-usage", "--window-size=1400,1000", "--lang=en-US"):
            options.add_argument(arg)
        self.driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
        self.wait = WebDriverWait(self.driver, 15)
        self.csp_errors = []

    def shot(self, name):
        self.driver.save_screenshot(os.path.join(self.shots, name + ".png"))

    def check_console_log(self):
        try:
            for entry in self.driver.get_log("browser"):
                if "Content Security Policy" in entry.get("message", ""):
                    self.csp_errors.append(entry["message"])
        except Exception:  # the log may not be available in every driver
            pass

    def wait_for(self, css):
        return self.wait.until(EC.presence_of_element_located((By.CSS_SELECTOR, css)))

    def sign_in(self, address, password, path="/"):
        """Opens `path`, signs in on the sign-in page it redirects to, and waits to be back."""
        self.driver.get(self.base + path)
        self.wait.until(EC.presence_of_element_located((By.NAME, "address")))
        self.driver.find_element(By.NAME, "address").send_keys(address)
        self.driver.find_element(By.NAME, "password").send_keys(password)
        self.driver.find_element(By.CSS_SELECTOR, "form.login button[type=submit]").click()
        self.wait.until(lambda d: "/login" not in d.current_url)

    def sign_out(self):
        self.driver.find_element(By.CSS_SELECTOR, "form[action='/logout'] button").click()
        self.wait.until(EC.presence_of_element_located((By.NAME, "password")))

    def finish(self):
        """Asserts no CSP violation was logged; call last, before printing "ok"."""
        self.check_console_log()
        assert not self.csp_errors, self.csp_errors

    def quit(self):
        self.driver.quit()
