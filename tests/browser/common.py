"""What the browser tests share: the checks they report, and a headless Chromium."""

from selenium import webdriver

failures = []


def check(condition, what):
    print(("ok   " if condition else "FAIL ") + what, flush=True)
    if not condition:
        failures.append(what)


def browser(wait, network_log=False):
    """Debian's headless Chromium in Swedish, page loads and scripts bounded by `wait` seconds;
    with `network_log`, the performance log holds the URLs the browser was sent to."""
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for arg in [
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--window-size=1400,1000",
        "--lang=sv-SE",
    ]:
        options.add_argument(arg)
    # The gateway's (and the identity provider's) certificates are from test CAs.
    options.accept_insecure_certs = True
    if network_log:
        options.set_capability("goog:loggingPrefs", {"performance": "ALL"})
    service = webdriver.ChromeService(executable_path="/usr/bin/chromedriver")
    driver = webdriver.Chrome(options=options, service=service)
    driver.set_page_load_timeout(wait)
    driver.set_script_timeout(wait)
    return driver
