"""The web board's OpenID Connect login in headless Chromium (Selenium), at a real provider.

Run by tests/web_login.rs against `samsyn up --demo` configured with `[access.web_login]`
at `oidc-provider` (tests/oidc/provider.mjs); every wait is bounded. Checks: the board sends
the browser to the provider with a code flow, PKCE S256, state and nonce; after the
provider's login and consent the board shows the person's rows and name; the session cookie
is HttpOnly, Secure, SameSite=Strict and ends no later than the token; a callback with a
wrong state, and a replayed code, each get a Swedish error page and open no session.
"""

import json
import os
import sys
import time
from urllib.parse import parse_qs, quote, urlparse

from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

import common

BOARD = os.environ["BOARD_URL"]
ISSUER = os.environ["ISSUER"]
PERSON = os.environ["PERSON_LOGIN"]
NAME = os.environ["PERSON_NAME"]
ROWS = int(os.environ["EXPECTED_ROWS"])
TOKEN_TTL = int(os.environ["TOKEN_TTL"])
SHOTS = os.environ["SHOTS"]
WAIT = 10  # seconds, for page loads and ordinary waits
SESSION = "__Host-samsyn-board"

check = common.check
failures = common.failures


def browser():
    return common.browser(WAIT, network_log=True)


def requested(driver, prefix):
    """The URLs starting with `prefix` the browser requested since the last call."""
    urls = []
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message.get("method") == "Network.requestWillBeSent":
            url = message["params"]["request"]["url"]
            if url.startswith(prefix):
                urls.append(url)
    return urls


def heading(driver):
    found = driver.find_elements(By.TAG_NAME, "h1")
    return found[0].text if found else ""


def refused(driver, url, title, what):
    driver.get(url)
    text = driver.find_element(By.TAG_NAME, "body").text
    check(heading(driver) == title, f"{what}: the page says {title!r} (got {heading(driver)!r})")
    check("Traceback" not in text and "panicked" not in text, f"{what}: no stack trace")
    check(driver.get_cookie(SESSION) is None, f"{what}: no session cookie")
    driver.get(BOARD)
    check(
        not driver.find_elements(By.ID, "board-rows"),
        f"{what}: the board is not shown",
    )


def main():
    anna = browser()
    other = browser()
    try:
        started = time.time()
        anna.get(BOARD)
        WebDriverWait(anna, WAIT).until(lambda d: d.find_elements(By.NAME, "login"))
        authorization = requested(anna, ISSUER + "/auth")
        check(len(authorization) == 1, "the board sent the browser to the provider once")
        params = parse_qs(urlparse(authorization[0]).query)
        one = lambda name: params.get(name, [""])[0]
        check(one("response_type") == "code", "authorization code flow")
        check("openid" in one("scope").split(), "scope openid")
        check(one("code_challenge_method") == "S256", "PKCE S256")
        check(len(one("code_challenge")) == 43, "a SHA-256 code challenge")
        check(len(one("state")) >= 32 and len(one("nonce")) >= 32, "state and nonce")
        anna.find_element(By.NAME, "login").send_keys(PERSON)
        anna.find_element(By.NAME, "password").send_keys("test")
        anna.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
        WebDriverWait(anna, WAIT).until(
            lambda d: d.find_elements(By.CSS_SELECTOR, "input[name=prompt][value=consent]")
        )
        anna.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
        WebDriverWait(anna, WAIT).until(
            lambda d: len(d.find_elements(By.CSS_SELECTOR, "#board-rows > tr")) == ROWS
        )
        finished = time.time()
        check(True, f"after the login the board shows the person's {ROWS} rows")
        check(NAME in anna.find_element(By.TAG_NAME, "body").text, "the page names the person")
        anna.save_screenshot(os.path.join(SHOTS, "logged-in.png"))
        callbacks = requested(anna, BOARD + "callback?")
        check(len(callbacks) == 1, "the provider sent the browser back once")
        for url in callbacks:
            check("token" not in url.lower() and PERSON not in url, "no token or person in the URL")
        cookie = anna.get_cookie(SESSION)
        check(cookie is not None, "a session cookie")
        cookie = cookie or {}
        check(cookie.get("httpOnly") is True, "the session cookie is HttpOnly")
        check(cookie.get("secure") is True, "the session cookie is Secure")
        check(cookie.get("sameSite") == "Strict", "the session cookie is SameSite=Strict")
        expiry = cookie.get("expiry", 1 << 40)
        # The token was issued during the login, for TOKEN_TTL seconds.
        check(
            started + TOKEN_TTL - 60 <= expiry <= finished + TOKEN_TTL,
            f"the session ends with the token (in {expiry - finished:.0f} s; token {TOKEN_TTL} s)",
        )
        code = parse_qs(urlparse(callbacks[0]).query)["code"][0] if callbacks else "x"

        # Another browser starts a login, then comes back with a wrong state.
        other.get(BOARD + "login")
        WebDriverWait(other, WAIT).until(lambda d: d.find_elements(By.NAME, "login"))
        requested(other, ISSUER)
        refused(
            other,
            BOARD + "callback?code=" + quote(code) + "&state=wrong",
            "Inloggningen godtogs inte",
            "a callback with a wrong state",
        )
        # It starts again and replays Anna's code with its own, right, state: the
        # provider refuses the used code.
        other.get(BOARD + "login")
        WebDriverWait(other, WAIT).until(lambda d: d.find_elements(By.NAME, "login"))
        state = parse_qs(urlparse(requested(other, ISSUER + "/auth")[-1]).query)["state"][0]
        refused(
            other,
            BOARD + "callback?code=" + quote(code) + "&state=" + quote(state),
            "Inloggningen godtogs inte",
            "a replayed code",
        )
        # The same callback again in Anna's browser: the login it belonged to is used up.
        before = anna.get_cookie(SESSION)
        anna.get(callbacks[0] if callbacks else BOARD + "callback")
        check(heading(anna) == "Inloggningen har gått ut", "a replayed callback is refused")
        check(anna.get_cookie(SESSION) == before, "a replayed callback opens no new session")
    finally:
        anna.quit()
        other.quit()
    if failures:
        print(f"{len(failures)} check(s) failed", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
