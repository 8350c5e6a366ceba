"""The web board in headless Chromium (Selenium), as the staff would use it.

Run by tests/web_board.rs against `samsyn up --demo`; every wait is bounded. Checks:
Anna sees the 8 rows most acute first; Lisa sees only Örjan's and Märta's; Örjan revokes
his consent with the command-line client and his row leaves Lisa's open page without a
reload; Anna's status change in one window shows in her second; the timeline draws the
known steps and bars with a table of the same data; a form posted without the CSRF token is
refused; axe-core finds no serious or critical violation on any page. Screenshots of the
board, the meeting and the timeline go to $SHOTS.
"""

import json
import os
import re
import subprocess
import sys
import time

from selenium.common.exceptions import ElementNotInteractableException, StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select, WebDriverWait

import common

BOARD = os.environ["BOARD_URL"]
SAMSYN = os.environ["BROWSER_TEST_SAMSYN"]
DATA_DIR = os.environ["BROWSER_TEST_DATA_DIR"]
SHOTS = os.environ["SHOTS"]
AXE = open(os.environ["AXE_JS"], encoding="utf-8").read()
TIMELINE = os.environ["TIMELINE_PARTICIPANT"]
STEPS = int(os.environ["TIMELINE_STEPS"])
BARS = int(os.environ["TIMELINE_BARS"])
WAIT = 10  # seconds, for page loads and ordinary waits
LIVE = 2.0  # seconds: the bound for a change to reach an open page

check = common.check
failures = common.failures


def browser():
    return common.browser(WAIT)


def log_in(driver, key):
    driver.get(BOARD + "login")
    driver.find_element(By.ID, "person-" + key).click()
    driver.find_element(By.CSS_SELECTOR, "form[action='/board/login'] button").click()
    WebDriverWait(driver, WAIT).until(lambda d: d.find_elements(By.ID, "board-rows"))


def rows(driver):
    return driver.find_elements(By.CSS_SELECTOR, "#board-rows > tr")


def live(driver, element="board-rows"):
    """Waits until the page follows the board: its stream is open and has sent the first
    snapshot, and the rows (or the agenda) have been fetched again for it."""
    WebDriverWait(driver, WAIT).until(
        lambda d: d.execute_script(
            "const b = document.getElementById(arguments[0]);"
            "return b.dataset.live === 'open' && b.dataset.updated !== undefined;",
            element,
        )
    )


def agenda_names(driver):
    return driver.execute_script(
        "return Array.from(document.querySelectorAll('#agenda > li h3 a')).map(a => a.textContent.trim());"
    )


def row_data(driver):
    """The rows as shown now, read in one go (the live page may replace them any time)."""
    return driver.execute_script(
        "return Array.from(document.querySelectorAll('#board-rows > tr')).map(r => ({"
        "entry: r.dataset.entry, participant: r.dataset.participant,"
        "level: Number(r.dataset.level), name: r.querySelector('th').textContent.trim(),"
        "trend: r.querySelector('td.trend').firstChild.textContent.trim(),"
        "revision: r.querySelector('input[name=revision]').value}));"
    )


def axe(driver, page):
    driver.execute_script(AXE)
    result = driver.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "axe.run(document, {runOnly: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'best-practice']})"
        ".then(r => done(r.violations.map(v => ({id: v.id, impact: v.impact, nodes: v.nodes.length}))))"
        ".catch(e => done([{id: 'axe-error: ' + e, impact: 'critical', nodes: 0}]));"
    )
    bad = [v for v in result if v["impact"] in ("serious", "critical")]
    check(not bad, f"axe: no serious or critical violations on the {page}: {bad}")
    others = [v for v in result if v not in bad]
    if others:
        print(f"     axe, minor/moderate on the {page}: {others}", flush=True)


def samsyn(*args):
    out = subprocess.run(
        [SAMSYN, *args, "--data-dir", DATA_DIR],
        capture_output=True,
        text=True,
        timeout=30,
    )
    if out.returncode != 0:
        raise RuntimeError(f"samsyn {args} failed: {out.stderr}")
    return out.stdout


def retry_stale(action, tries=3):
    """Runs `action` again (bounded) if the live page replaced an element it had found:
    rows and agenda are fetched again whenever the board changes, until someone types.
    (No `clear()` on a field: it blurs the field, which lets a waiting fetch replace it.)"""
    for attempt in range(tries):
        try:
            return action()
        except (StaleElementReferenceException, ElementNotInteractableException):
            if attempt == tries - 1:
                raise
            time.sleep(0.3)


def wait_until(condition, limit):
    """Seconds until `condition()` held, or None after `limit` seconds."""
    start = time.monotonic()
    while time.monotonic() - start < limit:
        if condition():
            return time.monotonic() - start
        time.sleep(0.02)
    return None


def main():
    anna = browser()
    lisa = browser()
    try:
        # Login page: accessible before anyone logs in.
        anna.get(BOARD + "login")
        check(anna.find_element(By.TAG_NAME, "html").get_attribute("lang") == "sv", "lang=sv")
        axe(anna, "login page")

        # 1. Anna sees every row, most acute first.
        log_in(anna, "anna")
        live(anna)
        anna_rows = row_data(anna)
        check(len(anna_rows) == 8, f"Anna sees 8 rows ({len(anna_rows)})")
        levels = [r["level"] for r in anna_rows]
        check(levels == sorted(levels), f"most acute first: levels {levels}")
        trends = {"Försämras": 0, "Oförändrad": 1, "Okänd": 2, "Förbättras": 3}
        keys = [(r["level"], trends[r["trend"]]) for r in anna_rows]
        check(keys == sorted(keys), f"within a level, worsening first: {keys}")
        page = anna.page_source
        check("Teamets mall" in page, "the team's template is on the board")
        anna.save_screenshot(os.path.join(SHOTS, "board.png"))
        axe(anna, "board")

        # 2. Lisa sees only the rows her residents' consents open.
        log_in(lisa, "lisa")
        live(lisa)
        names = [r["name"] for r in row_data(lisa)]
        check(len(names) == 2, f"Lisa sees 2 rows ({names})")
        check(any(n.startswith("Örjan") for n in names), "Lisa sees Örjan's row")
        check(any(n.startswith("Märta") for n in names), "Lisa sees Märta's row")
        axe(lisa, "municipal board")

        # 3. Örjan revokes his consent with the client; his row leaves Lisa's open board and
        # her open meeting agenda.
        board_window = lisa.current_window_handle
        lisa.switch_to.new_window("window")
        meeting_window = lisa.current_window_handle
        lisa.get(BOARD + "meeting")
        live(lisa, "agenda")
        lisa.execute_script("window.notReloaded = true;")
        check(any(n.startswith("Örjan") for n in agenda_names(lisa)), "Örjan is on Lisa's agenda")
        lisa.switch_to.window(board_window)
        lisa.execute_script("window.notReloaded = true;")
        consents = json.loads(samsyn("as", "orjan", "consents", "orjan", "--json"))
        sharing = next(
            c["id"]
            for c in consents["consents"]
            if c["kind"] == "CONSENT_KIND_INFORMATION_SHARING"
            and c.get("revocation") is None
            and "DATA_CATEGORY_BOARD" in c.get("sharing", {}).get("categories", [])
        )
        samsyn("as", "orjan", "revoke-consent", "orjan", sharing)
        left = wait_until(
            lambda: not any(r["name"].startswith("Örjan") for r in row_data(lisa)),
            LIVE,
        )
        check(left is not None, f"Örjan's row left Lisa's page within {LIVE} s ({left})")
        check(lisa.execute_script("return window.notReloaded === true;"), "without a reload")
        check(len(row_data(lisa)) == 1, f"Lisa has 1 row left ({len(row_data(lisa))})")
        if left is not None:
            print(f"     revocation to row gone: {left * 1000:.0f} ms", flush=True)
        lisa.switch_to.window(meeting_window)
        gone = wait_until(lambda: not any(n.startswith("Örjan") for n in agenda_names(lisa)), LIVE)
        check(gone is not None, f"Örjan left Lisa's open agenda ({agenda_names(lisa)})")
        check(lisa.execute_script("return window.notReloaded === true;"), "the agenda did not reload")

        # 4. Anna changes a status in one window; her second window shows it.
        first = anna.current_window_handle
        anna.switch_to.new_window("window")
        second = anna.current_window_handle
        anna.get(BOARD)
        live(anna)
        anna.execute_script("window.notReloaded = true;")
        target = next(r for r in row_data(anna) if r["participant"] != TIMELINE)
        entry = target["entry"]
        old = target["level"]
        new = 3 if old != 3 else 1
        anna.switch_to.window(first)
        live(anna)

        def change_status():
            row = anna.find_element(By.CSS_SELECTOR, f"tr[data-entry='{entry}']")
            note = row.find_element(By.ID, f"note-{entry}")
            if not note.is_displayed():
                row.find_element(By.TAG_NAME, "summary").click()
            Select(row.find_element(By.ID, f"level-{entry}")).select_by_value(str(new))
            note.send_keys("Ändrad i webbläsaren")
            clicked = time.monotonic()
            row.find_element(By.CSS_SELECTOR, "form.status-form button").click()
            return clicked

        clicked = retry_stale(change_status)

        def level_shown():
            try:
                return next((r["level"] for r in row_data(anna) if r["entry"] == entry), None)
            except StaleElementReferenceException:
                return None  # the page is being replaced by the form's answer

        wait_until(lambda: level_shown() == new, WAIT)
        saved = level_shown()
        check(saved == new, f"the status form saved level {new} ({saved})")
        anna.switch_to.window(second)
        seen = wait_until(
            lambda: any(r["entry"] == entry and r["level"] == new for r in row_data(anna)),
            LIVE,
        )
        elapsed = time.monotonic() - clicked
        check(
            seen is not None and elapsed <= LIVE,
            f"the change shows in Anna's second window within {LIVE} s of the click ({elapsed:.2f} s)",
        )
        check(anna.execute_script("return window.notReloaded === true;"), "the second window did not reload")
        anna.close()
        anna.switch_to.window(first)

        # 4b. Anna puts a participant on the board, then takes them off again.
        anna.get(BOARD)
        live(anna)
        before = len(row_data(anna))
        chosen = Select(anna.find_element(By.ID, "put-on-participant")).first_selected_option
        chosen_id = chosen.get_attribute("value")
        anna.find_element(By.ID, "put-on-reason").send_keys("Orolig efter flytt – täta kontakter")
        anna.find_element(By.CSS_SELECTOR, "form.put-on-form button").click()
        WebDriverWait(anna, WAIT).until(lambda d: d.find_elements(By.ID, "board-rows"))
        live(anna)
        added = [r for r in row_data(anna) if r["participant"] == chosen_id]
        check(len(row_data(anna)) == before + 1 and len(added) == 1, "the put-on form adds a row")
        if added:
            entry = added[0]["entry"]

            def take_off():
                row = anna.find_element(By.CSS_SELECTOR, f"tr[data-entry='{entry}']")
                field = row.find_element(By.ID, f"take-off-{entry}")
                if not field.is_displayed():
                    row.find_element(By.TAG_NAME, "summary").click()
                field.send_keys("Stabil igen")
                row.find_element(By.CSS_SELECTOR, "form.take-off-form button").click()

            retry_stale(take_off)
            WebDriverWait(anna, WAIT).until(lambda d: d.find_elements(By.ID, "board-rows"))
            live(anna)
            check(
                not any(r["entry"] == entry for r in row_data(anna)) and len(row_data(anna)) == before,
                "the take-off form removes the row",
            )

        # 5. The timeline: the known steps and bars, and a table of the same data.
        anna.get(BOARD + f"participants/{TIMELINE}/timeline")
        steps = anna.find_elements(By.CSS_SELECTOR, "svg line.status-step")
        bars = anna.find_elements(By.CSS_SELECTOR, "svg rect.intervention")
        check(len(steps) == STEPS, f"the timeline draws {STEPS} steps ({len(steps)})")
        check(len(bars) == BARS, f"the timeline draws {BARS} bars ({len(bars)})")
        points = anna.find_elements(By.CSS_SELECTOR, "table.points tbody tr")
        interventions = anna.find_elements(By.CSS_SELECTOR, "table.interventions tbody tr")
        check(len(points) == STEPS, f"the table lists {STEPS} assessments ({len(points)})")
        check(len(interventions) == BARS, f"the table lists {BARS} interventions ({len(interventions)})")
        anna.save_screenshot(os.path.join(SHOTS, "timeline.png"))
        axe(anna, "timeline")

        # 6. The morning meeting: the agenda, start it, record a discussion.
        anna.get(BOARD + "meeting")
        items = anna.find_elements(By.CSS_SELECTOR, "ol.agenda > li")
        check(len(items) > 0, f"the agenda lists participants ({len(items)})")
        starts = anna.find_elements(By.CSS_SELECTOR, "form[action='/board/meeting/start'] button")
        if starts:
            starts[0].click()
        try:
            WebDriverWait(anna, WAIT).until(lambda d: d.find_elements(By.CSS_SELECTOR, "form.discussion"))
        except Exception:
            print("     meeting page: " + anna.find_element(By.TAG_NAME, "h1").text, flush=True)
        forms = anna.find_elements(By.CSS_SELECTOR, "form.discussion")
        check(len(forms) > 0, "the started meeting has a discussion form per participant")
        if forms:
            def discuss():
                form = anna.find_elements(By.CSS_SELECTOR, "form.discussion")[0]
                text = form.find_element(By.TAG_NAME, "textarea")
                text.send_keys("Går åt rätt håll, fortsätt hembesöken")
                decision = form.find_element(By.CSS_SELECTOR, "input[name='decision']")
                decision.send_keys("Kvar på tavlan")
                form.find_element(By.TAG_NAME, "button").click()

            retry_stale(discuss)
            WebDriverWait(anna, WAIT).until(lambda d: d.find_elements(By.CSS_SELECTOR, "dl.minutes"))
            check("Går åt rätt håll" in anna.find_element(By.CSS_SELECTOR, "dl.minutes").text, "the minutes show the discussion")
        anna.save_screenshot(os.path.join(SHOTS, "meeting.png"))
        axe(anna, "meeting")

        # 7. A form posted without the CSRF token is refused, and so is a wrong one.
        anna.get(BOARD)
        live(anna)
        first_row = row_data(anna)[0]
        entry = first_row["entry"]
        revision = first_row["revision"]
        participant = first_row["participant"]
        codes = anna.execute_async_script(
            "const done = arguments[arguments.length - 1];"
            "const post = (body) => fetch(`/board/entries/${arguments[0]}/status`, {method: 'POST',"
            " headers: {'Content-Type': 'application/x-www-form-urlencoded'}, body, redirect: 'manual'})"
            " .then(r => r.status);"
            "const fields = `participant=${arguments[1]}&level=1&trend=1&revision=1&note=x`;"
            "Promise.all([post(fields), post(fields + '&csrf=wrong')]).then(done);",
            entry,
            participant,
        )
        check(codes == [403, 403], f"a POST without or with a wrong CSRF token gets 403 ({codes})")
        # The person's own form, its token taken out, submitted as they would.
        anna.execute_script(
            "const form = document.querySelector(`tr[data-entry='${arguments[0]}'] form.status-form`);"
            "form.querySelector('input[name=csrf]').remove();"
            "form.closest('details').open = true;"
            "form.requestSubmit();",
            entry,
        )
        WebDriverWait(anna, WAIT).until(lambda d: "/status" in d.current_url)
        heading = anna.find_element(By.TAG_NAME, "h1").text
        check(heading == "Formuläret godtogs inte", f"the person is told the form was refused ({heading})")
        anna.get(BOARD)
        after = next(r["revision"] for r in row_data(anna) if r["entry"] == entry)
        check(after == revision, f"the refused forms changed nothing (revision {revision} -> {after})")

        # An unknown page under /board is the board's own page, not a gRPC answer.
        anna.get(BOARD + "finns-inte")
        check(anna.find_element(By.TAG_NAME, "h1").text == "Hittades inte", "an unknown page says so in Swedish")

        # No personal identity number on any page or in any URL seen.
        for url in [BOARD, BOARD + "meeting", BOARD + f"participants/{TIMELINE}/timeline"]:
            anna.get(url)
            source = anna.page_source
            # Not part of a longer id: a participant id (a UUID) may well begin "20123456-7890".
            pin = r"(?<![\w-])(19|20)\d{6}[-+]?\d{4}(?![\w-])"
            check(re.search(pin, source) is None, f"no personal identity number on {url}")
    finally:
        anna.quit()
        lisa.quit()
    print(f"{len(failures)} failed" if failures else "all passed", flush=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
