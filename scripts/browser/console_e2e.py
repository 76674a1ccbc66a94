#!/usr/bin/env python3
"""vigil's operator console, end to end in Debian's Chromium (headless, over chromium-driver).

Run by crates/app/tests/console.rs against a real `vigil serve`, which writes the plan: the
server's address, the users with their passwords and tokens, the case, the watchlist, the photos.
The script drives the screens as each role would, by the console's `data-testid` contract
(docs/design/016-console.md), runs axe-core on every main screen and saves a screenshot of each
to the screens folder.

Each failure is recorded with its step, what was expected, what was found and a screenshot, and
the script goes on with the steps that do not depend on it; it exits 1 when any step failed,
after printing them all, and prints "console e2e: ok" when none did.
"""

import argparse
import json
import os
import re
import sys
import time
import traceback
import unicodedata
import urllib.error
import urllib.request
import uuid

from selenium import webdriver
from selenium.common.exceptions import (
    NoAlertPresentException,
    TimeoutException,
    UnexpectedAlertPresentException,
    WebDriverException,
)
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

XSS_NAME = "<img src=x onerror=alert(1)>"
CYRILLIC_NAME = "Николай Пауэлл"
# Installed on every document before its own scripts: records any call of alert() (what the
# injected onerror handler would run) and any img element whose src is the payload's "x".
CANARY = """
(() => {
  const original = window.alert;
  window.alert = function (message) {
    window.__xss = String(message);
    return original.apply(this, arguments);
  };
  window.__xssImages = 0;
  new MutationObserver(() => {
    window.__xssImages = document.querySelectorAll('img[src="x"]').length;
  }).observe(document, {subtree: true, childList: true, attributes: true});
})();
"""
# The screens' navigation links (docs/design/016-console.md). Which an account is shown follows
# what the API lets its roles do: live needs ViewCameras (operator, admin), alerts ViewAlerts
# (operator, reviewer, investigator), search and subjects the investigator's Search and Enrol,
# cases the investigator's ManageCases, audit the auditor's ReadAudit, admin the admin's
# ManageUsers.
NAV = ["live", "alerts", "search", "subjects", "cases", "audit", "admin"]


class Failure(Exception):
    def __init__(self, expected, found):
        super().__init__(f"expected {expected}; found {found}")
        self.expected = expected
        self.found = found


def tid(name):
    return f'[data-testid="{name}"]'


class Console:
    def __init__(self, plan, screens, failures_dir, axe_path):
        self.plan = plan
        self.base = plan["base_url"].rstrip("/")
        self.screens = screens
        self.failures_dir = failures_dir
        with open(axe_path, encoding="utf-8") as handle:
            self.axe_source = handle.read()
        self.failures = []
        self.axe_findings = []
        self.step = "start"
        options = webdriver.ChromeOptions()
        options.binary_location = plan.get("chromium", "/usr/bin/chromium")
        options.add_argument("--headless=new")
        if os.geteuid() == 0:
            options.add_argument("--no-sandbox")
        options.add_argument("--disable-dev-shm-usage")
        options.add_argument("--window-size=1280,900")
        options.add_argument("--lang=en-GB")
        options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        # Unhandled dialogs stay open, so that a script's alert() is seen, not dismissed.
        options.set_capability("unhandledPromptBehavior", "ignore")
        service = Service(executable_path=plan.get("chromedriver", "/usr/bin/chromedriver"))
        self.driver = webdriver.Chrome(service=service, options=options)
        self.driver.set_page_load_timeout(30)
        self.driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": CANARY})

    # --- recording -------------------------------------------------------------------------

    def log(self, message):
        print(f"[{self.step}] {message}", flush=True)

    def shot(self, path):
        try:
            self.driver.save_screenshot(path)
            return path
        except WebDriverException as error:
            return f"(no screenshot: {error.msg})"

    def fail(self, expected, found):
        slug = re.sub(r"[^a-z0-9]+", "-", self.step.lower()).strip("-")[:60]
        path = self.shot(
            os.path.join(self.failures_dir, f"{len(self.failures) + 1:02d}-{slug}.png")
        )
        try:
            url = self.driver.current_url
        except WebDriverException:
            url = "?"
        self.failures.append(
            {
                "step": self.step,
                "expected": expected,
                "found": found,
                "url": url,
                "screenshot": path,
            }
        )
        print(
            f"FAIL [{self.step}]\n  expected: {expected}\n  found:    {found}\n  url: {url}\n"
            f"  screenshot: {path}",
            flush=True,
        )

    def check(self, condition, expected, found):
        if not condition:
            self.fail(expected, found)
        return condition

    def phase(self, name, body, *args):
        """Runs one group of steps; a Failure or error in it is recorded and the next goes on."""
        self.step = name
        self.log("begins")
        try:
            return body(*args)
        except Failure as failure:
            self.fail(failure.expected, failure.found)
        except UnexpectedAlertPresentException as error:
            self.fail("no JavaScript dialog", f"a dialog is open: {error.alert_text!r}")
            self.dismiss_dialogs()
        except Exception as error:  # noqa: BLE001 - every error is a finding to report
            self.fail(
                "the step to run", f"{type(error).__name__}: {error}\n{traceback.format_exc()}"
            )
        return None

    # --- the page ---------------------------------------------------------------------------

    def open(self, route):
        self.driver.get(f"{self.base}/{route}")

    def go(self, route):
        """Navigates inside the single-page app (hash route), without reloading the page."""
        self.driver.execute_script("window.location.hash = arguments[0];", route)

    def find(self, name, within=None):
        return (within or self.driver).find_elements(By.CSS_SELECTOR, tid(name))

    def wait(self, what, condition, timeout=15, poll=0.25):
        try:
            return WebDriverWait(self.driver, timeout, poll_frequency=poll).until(
                lambda _: condition()
            )
        except TimeoutException:
            return None

    def visible(self, name, timeout=15):
        """The first displayed element with `name`, waiting up to `timeout`; Failure otherwise."""

        def shown():
            for element in self.find(name):
                if element.is_displayed():
                    return element
            return None

        element = self.wait(name, shown, timeout)
        if element is None:
            present = self.find(name)
            raise Failure(
                f"a visible [data-testid={name}] within {timeout} s",
                "present but hidden" if present else "absent",
            )
        return element

    def text_of(self, name, displayed_only=False):
        """The text of the first displayed element `name` (else of the first), or None."""
        return self.driver.execute_script(
            """
            const all = Array.from(document.querySelectorAll(`[data-testid="${arguments[0]}"]`));
            const e = all.find((e) => e.checkVisibility()) || (arguments[1] ? null : all[0]);
            return e ? e.innerText.trim() : null;
            """,
            name,
            displayed_only,
        )

    def rows(self, name, fields=(), attributes=()):
        """Every element `name` as plain data (text, the texts of the `fields` inside it, its
        `attributes`, whether an img inside it has loaded, its img elements' count inside each
        field), read in one script: lists that redraw leave no stale references behind."""
        return self.driver.execute_script(
            """
            const [name, fields, attributes] = arguments;
            return Array.from(document.querySelectorAll(`[data-testid="${name}"]`)).map((e) => {
              const inner = (f) => e.querySelector(`[data-testid="${f}"]`);
              const images = Array.from(e.querySelectorAll('img'));
              return {
                text: e.innerText.trim(),
                displayed: e.checkVisibility(),
                fields: Object.fromEntries(fields.map((f) => [f, inner(f) ? inner(f).textContent.trim() : null])),
                html: Object.fromEntries(fields.map((f) => [f, inner(f) ? inner(f).innerHTML : null])),
                images_inside: Object.fromEntries(fields.map((f) => [f, inner(f) ? inner(f).querySelectorAll('img').length : 0])),
                attributes: Object.fromEntries(attributes.map((a) => [a, e.getAttribute(a)])),
                images: images.length,
                loaded_images: images.filter((i) => i.complete && i.naturalWidth > 0).length,
              };
            });
            """,
            name,
            list(fields),
            list(attributes),
        )

    def fill(self, name, value):
        element = self.visible(name)
        element.clear()
        if value:
            element.send_keys(value)

    def attach(self, name, paths):
        elements = self.find(name)
        if not elements:
            raise Failure(f"a file input [data-testid={name}]", "absent")
        element = elements[0]
        if not element.is_displayed():
            # A drop zone may hide its input; a user's file dialog reaches it all the same.
            self.driver.execute_script("arguments[0].style.display = 'block';", element)
        element.send_keys("\n".join(os.path.abspath(p) for p in paths))

    def dialog_open(self):
        try:
            return self.driver.switch_to.alert.text
        except NoAlertPresentException:
            return None

    def dismiss_dialogs(self):
        for _ in range(5):
            try:
                self.driver.switch_to.alert.dismiss()
            except NoAlertPresentException:
                return

    def no_script_ran(self, where):
        dialog = self.dialog_open()
        if dialog is not None:
            self.fail(f"no JavaScript dialog on {where}", f"alert({dialog!r}) opened")
            self.dismiss_dialogs()
            return
        xss, images = self.driver.execute_script(
            "return [window.__xss === undefined ? null : window.__xss, window.__xssImages || 0];"
        )
        self.check(xss is None, f"no call of alert() on {where}", f"alert({xss!r}) was called")
        self.check(
            images == 0,
            f'no <img src="x"> element on {where}',
            f"{images} such element(s): the name was rendered as HTML",
        )

    def errors_in_console(self):
        try:
            entries = self.driver.get_log("browser")
        except WebDriverException:
            return []
        return [e["message"] for e in entries if e.get("level") == "SEVERE"]

    # --- axe-core and screenshots -----------------------------------------------------------

    def audit_screen(self, screen):
        """axe-core on the current screen (serious and critical violations fail) and its
        screenshot in the screens folder."""
        self.driver.execute_script(self.axe_source)
        result = self.driver.execute_async_script(
            """
            const done = arguments[arguments.length - 1];
            axe.run(document, {resultTypes: ['violations']})
              .then(r => done({violations: r.violations.map(v => ({
                  id: v.id, impact: v.impact, help: v.help,
                  nodes: v.nodes.map(n => n.target.join(' ')).slice(0, 5)}))}))
              .catch(e => done({error: String(e)}));
            """
        )
        if "error" in result:
            self.fail(f"axe-core to run on {screen}", result["error"])
            return
        for violation in result["violations"]:
            line = (
                f"{screen}: {violation['impact']} {violation['id']} ({violation['help']}) "
                f"at {violation['nodes']}"
            )
            print(f"axe {line}", flush=True)
            self.axe_findings.append(line)
            if violation["impact"] in ("serious", "critical"):
                self.fail(
                    f"no serious or critical axe-core violation on {screen}",
                    f"{violation['impact']} {violation['id']}: {violation['help']} at "
                    f"{violation['nodes']}",
                )
        path = os.path.join(self.screens, f"{screen}.png")
        self.driver.execute_script("document.activeElement?.blur(); window.scrollTo(0, 0);")
        time.sleep(0.2)
        self.shot(path)
        self.log(f"screenshot {path}; axe: {len(result['violations'])} violation(s)")

    # --- the API, for set-up and for checking what the page claims ---------------------------

    def api(self, user, method, path, body=None, headers=None, files=None, fields=None):
        request_headers = {"Authorization": f"Bearer {self.plan['users'][user]['token']}"}
        request_headers.update(headers or {})
        data = None
        if files is not None:
            boundary = uuid.uuid4().hex
            parts = []
            for key, value in (fields or {}).items():
                parts.append(
                    f'--{boundary}\r\nContent-Disposition: form-data; name="{key}"\r\n\r\n'
                    f"{value}\r\n".encode()
                )
            for key, file_path in files:
                with open(file_path, "rb") as handle:
                    content = handle.read()
                parts.append(
                    f'--{boundary}\r\nContent-Disposition: form-data; name="{key}"; '
                    f'filename="{os.path.basename(file_path)}"\r\nContent-Type: image/jpeg\r\n\r\n'.encode()
                    + content
                    + b"\r\n"
                )
            parts.append(f"--{boundary}--\r\n".encode())
            data = b"".join(parts)
            request_headers["Content-Type"] = f"multipart/form-data; boundary={boundary}"
        elif body is not None:
            data = json.dumps(body).encode()
            request_headers["Content-Type"] = "application/json"
        request = urllib.request.Request(
            f"{self.base}{path}", data=data, headers=request_headers, method=method
        )
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                return response.status, json.loads(response.read() or b"null")
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode(errors="replace")

    # --- sessions -------------------------------------------------------------------------

    def login(self, user, wrong_password_first=False):
        password = self.plan["users"][user]["password"]
        # Whatever the last step left, start from no session.
        self.open("")
        self.driver.delete_all_cookies()
        self.driver.execute_script("localStorage.clear(); sessionStorage.clear();")
        self.open("")
        self.visible("login-name", timeout=30)
        if wrong_password_first:
            self.fill("login-name", user)
            self.fill("login-password", password + "-wrong")
            self.visible("login-submit").click()
            error = self.visible("login-error", timeout=10)
            self.check(
                error.text.strip() != "",
                "login-error says why the login failed",
                "an empty login-error",
            )
            shown = [e.text for e in self.find("whoami") if e.is_displayed()]
            self.check(not shown, "no whoami shown after a wrong password", f"whoami {shown}")
        self.fill("login-name", user)
        self.fill("login-password", password)
        self.visible("login-submit").click()
        whoami = self.wait("whoami", lambda: self.text_of("whoami", True), timeout=15)
        if not whoami:
            raise Failure(
                f"whoami showing {user!r} after logging in",
                f"login-error {self.text_of('login-error')!r}"
                if self.find("login-error")
                else "no whoami",
            )
        self.check(user in whoami, f"whoami contains {user!r}", f"{whoami!r}")

    def logout(self):
        buttons = self.find("logout")
        if not buttons:
            self.fail("a logout control", "absent")
        else:
            buttons[0].click()
            if not self.wait(
                "login", lambda: any(e.is_displayed() for e in self.find("login-name")), 10
            ):
                self.fail("the login screen after logout", "no login-name")
        self.driver.delete_all_cookies()

    def nav_links(self, user, allowed):
        self.visible("whoami")
        # The top bar is drawn from /v1/me; give it a moment to settle.
        self.wait("nav", lambda: any(self.find(f"nav-{allowed[0]}")), 10)
        for screen in NAV:
            present = [e for e in self.find(f"nav-{screen}")]
            if screen in allowed:
                self.check(
                    any(e.is_displayed() for e in present),
                    f"nav-{screen} shown to {user}",
                    "present but hidden" if present else "absent",
                )
            else:
                self.check(
                    not present,
                    f"no nav-{screen} for {user} (roles {self.plan['users'][user]['roles']})",
                    "present and displayed"
                    if any(e.is_displayed() for e in present)
                    else "present in the DOM (hidden)",
                )


# --- the flows ------------------------------------------------------------------------------


def operator_live(c):
    c.login("operator", wrong_password_first=True)
    c.nav_links("operator", ["live", "alerts"])
    c.go("#/live")
    camera = c.plan["camera"]
    card_selector = f'{tid("camera-card")}[data-camera-id="{camera}"]'

    def card():
        """The card's texts, read in one script: the grid redraws every 2 s."""
        return c.driver.execute_script(
            """
            const card = document.querySelector(arguments[0]);
            if (!card) return null;
            const text = (name) => {
              const e = card.querySelector(`[data-testid="${name}"]`);
              return e ? e.textContent.trim() : null;
            };
            return {state: text('camera-state'), fps: text('camera-fps'),
                    drops: text('camera-drops'), error: text('camera-error')};
            """,
            card_selector,
        )

    def streaming():
        now = card()
        return now if now and "streaming" in (now["state"] or "").lower() else None

    if c.wait("streaming", streaming, timeout=90, poll=0.5) is None:
        raise Failure(
            f"camera-card[data-camera-id={camera}] with camera-state 'streaming' within 90 s",
            f"{card()}"
            if card()
            else f"no such card ({len(c.find('camera-card'))} camera-card elements)",
        )

    # The first refresh may not have a rate yet.
    def with_rate():
        now = card()
        return now if now and re.search(r"[1-9]", now["fps"] or "") else None

    now = c.wait("fps", with_rate, 8)
    now = now or card()
    c.check(
        re.search(r"[1-9]", now["fps"] or "") is not None,
        "camera-fps shows a rate above 0",
        repr(now["fps"]),
    )
    c.check(
        now["drops"] is not None and re.search(r"\d", now["drops"]),
        "camera-drops shows a number",
        repr(now["drops"]),
    )
    c.check(now["error"] is None, "no camera-error on a streaming camera", repr(now["error"]))
    c.log(f"camera {camera}: {now}")
    c.audit_screen("live")


def operator_watches_live(c):
    """The camera's live picture loads, refreshes, and boxes a tracked face."""
    camera = c.plan["camera"]
    c.go(f"#/live/{camera}")

    def boxed():
        return c.driver.execute_script(
            """
            const img = document.querySelector('[data-testid="live-picture"]');
            const faces = document.querySelector('[data-testid="live-faces"]');
            if (!img || !img.complete || !img.naturalWidth || !faces) return null;
            const n = parseInt(faces.textContent, 10);
            if (!(n >= 1)) return null;
            // a box is drawn in the picture itself: look for its green or amber pixels
            const canvas = document.createElement('canvas');
            canvas.width = img.naturalWidth; canvas.height = img.naturalHeight;
            const g = canvas.getContext('2d');
            g.drawImage(img, 0, 0);
            const data = g.getImageData(0, 0, canvas.width, canvas.height).data;
            let boxPixels = 0;
            for (let i = 0; i < data.length; i += 4) {
              const [r, gr, b] = [data[i], data[i + 1], data[i + 2]];
              if ((r < 70 && gr > 160 && b < 130) || (r > 200 && gr > 140 && gr < 210 && b < 60)) boxPixels++;
            }
            return boxPixels > 50 ? {faces: n, boxPixels, width: img.naturalWidth} : null;
            """
        )

    found = c.wait("a boxed face on the live picture", boxed, timeout=60, poll=0.5)
    c.check(
        found is not None,
        "live-picture shows the camera with at least one tracked face boxed within 60 s",
        f"live-faces={c.text_of('live-faces')!r}",
    )
    c.log(f"live picture: {found}")
    c.audit_screen("live-picture")


def operator_alert_arrives(c):
    c.go("#/alerts")
    c.wait(
        "alerts list", lambda: c.driver.execute_script("return document.readyState") == "complete"
    )
    time.sleep(2)  # the list's first load and the event stream's connection

    def alert_rows():
        return c.rows("alert-row", ["alert-state", "alert-subject"], ["data-alert-id"])

    before = {r["attributes"]["data-alert-id"] for r in alert_rows()}
    c.check(not before, "no alert before the watchlist entry exists", f"alerts {sorted(before)}")
    marker = uuid.uuid4().hex
    c.driver.execute_script("window.__consoleTestMarker = arguments[0];", marker)
    watch = c.plan["watch"]
    status, entry = c.api(
        "investigator",
        "POST",
        f"/v1/watchlists/{watch['watchlist_id']}/entries",
        headers={"X-Vigil-Case": c.plan["case"]},
        fields={
            "name": watch["name"],
            "legal_basis": watch["legal_basis"],
            "responsible": "investigator",
            "expires_at_ms": str(watch["expires_at_ms"]),
        },
        files=[("image", p) for p in watch["photos"]],
    )
    if status != 201:
        raise Failure("the watchlist entry created over the API (201)", f"{status} {entry}")
    c.log(f"watchlist entry {entry.get('id')} for {watch['name']!r} created by investigator")

    def new_row():
        rows = [r for r in alert_rows() if r["attributes"]["data-alert-id"] not in before]
        return rows[0] if rows else None

    row = c.wait("an alert row", new_row, timeout=150, poll=0.5)
    if row is None:
        status, alerts = c.api("operator", "GET", "/v1/alerts")
        raise Failure(
            "an alert-row appearing without a reload within 150 s",
            f"none in the page; GET /v1/alerts answers {status}: "
            f"{[a['alert']['id'] for a in alerts] if isinstance(alerts, list) else alerts}",
        )
    same_page = c.driver.execute_script("return window.__consoleTestMarker;")
    c.check(
        same_page == marker,
        "the alert arrived without a page reload",
        "the page was reloaded (its marker is gone)",
    )
    alert_id = row["attributes"]["data-alert-id"]
    c.check(
        bool(alert_id and alert_id.isdigit()), "data-alert-id is the alert's id", repr(alert_id)
    )
    subject = row["fields"]["alert-subject"] or ""
    c.check(watch["name"] in subject, f"alert-subject names {watch['name']!r}", repr(subject))
    state = row["fields"]["alert-state"] or ""
    c.check(
        state != "" and not re.search(r"confirmed|rejected", state.lower()),
        "alert-state saying the alert awaits review (API state 'candidate')",
        repr(state),
    )
    status, alerts = c.api("operator", "GET", "/v1/alerts")
    ids = [str(a["alert"]["id"]) for a in alerts] if isinstance(alerts, list) else []
    c.check(alert_id in ids, f"alert {alert_id} is one the API lists", f"{ids}")
    c.log(f"alert {alert_id} arrived: {subject!r} {state!r}")
    time.sleep(1)
    c.audit_screen("alerts")
    c.logout()
    return alert_id


def investigator_enrols_a_hostile_name(c):
    c.login("investigator")
    c.nav_links("investigator", ["alerts", "search", "subjects", "cases"])
    c.go("#/subjects")
    c.fill("enrol-name", XSS_NAME)
    c.attach("enrol-photos", c.plan["enrol_photos"])
    c.visible("enrol-submit").click()
    result = c.visible("enrol-result", timeout=60)
    c.wait("enrol result text", lambda: result.text.strip(), 30)
    c.log(f"enrol-result: {result.text.strip()!r}")

    def named_row():
        for row in c.rows("subject-row", ["subject-name"]):
            if row["fields"]["subject-name"] == XSS_NAME:
                return row
        return None

    row = c.wait("the subject's row", named_row, timeout=20)
    if row is None:
        names = [r["fields"]["subject-name"] for r in c.rows("subject-row", ["subject-name"])]
        raise Failure(
            f"a subject-row whose subject-name reads {XSS_NAME!r} as text", f"names {names}"
        )
    c.check(
        row["images_inside"]["subject-name"] == 0,
        "no img element inside subject-name",
        row["html"]["subject-name"],
    )
    status, subjects = c.api("investigator", "GET", "/v1/subjects")
    listed = [s.get("name") for s in subjects] if isinstance(subjects, list) else subjects
    c.check(
        isinstance(listed, list) and XSS_NAME in listed,
        "the API lists the subject under the literal name",
        f"{status} {listed}",
    )
    time.sleep(1.5)  # an injected onerror would have fired by now
    c.no_script_ran("the subjects screen")
    c.audit_screen("subjects")
    # A name in another script is shown as it was typed.
    c.fill("enrol-name", CYRILLIC_NAME)
    c.attach("enrol-photos", c.plan["second_enrol_photos"])
    c.visible("enrol-submit").click()
    listed = c.wait(
        "the Cyrillic name listed",
        lambda: any(
            r["fields"]["subject-name"] == CYRILLIC_NAME
            for r in c.rows("subject-row", ["subject-name"])
        ),
        60,
    )
    c.check(
        bool(listed),
        f"a subject-name reading {CYRILLIC_NAME!r}",
        f"names {[r['fields']['subject-name'] for r in c.rows('subject-row', ['subject-name'])]}; "
        f"enrol-result {c.text_of('enrol-result')!r}",
    )
    # The filter compares in Unicode normal form, ignoring case: the name typed in lower case
    # and decomposed (й as и + combining breve) finds it, and only it.
    query = unicodedata.normalize("NFD", CYRILLIC_NAME.split()[0].lower())
    c.driver.find_element(By.ID, "subject-filter").send_keys(query)
    filtered = c.wait(
        "the filtered list",
        lambda: (
            [
                r["fields"]["subject-name"]
                for r in c.rows("subject-row", ["subject-name"])
                if r["displayed"]
            ]
            == [CYRILLIC_NAME]
        ),
        10,
    )
    c.check(
        bool(filtered),
        f"the filter {query!r} (NFD, lower case) shows only {CYRILLIC_NAME!r}",
        f"{[r['fields']['subject-name'] for r in c.rows('subject-row', ['subject-name']) if r['displayed']]}",
    )
    c.driver.find_element(By.ID, "subject-filter").clear()
    # Reloaded from the server, the name is still text.
    c.driver.refresh()
    c.go("#/subjects")
    c.wait("subject list", named_row, timeout=20)
    time.sleep(1)
    c.no_script_ran("the subjects screen, reloaded")


def creator_is_refused(c, alert_id):
    c.go(f"#/alerts/{alert_id}")
    c.fill("review-comment", "I created this entry; I should not be able to confirm it")
    c.visible("review-confirm").click()
    error = c.visible("review-error", timeout=15)
    message = c.wait("refusal text", lambda: error.text.strip(), 10) or ""
    c.check(message != "", "review-error shows the API's refusal", "an empty review-error")
    c.log(f"review-error for the entry's creator: {message!r}")
    _, alert = c.api("investigator", "GET", f"/v1/alerts/{alert_id}")
    reviews = (
        alert.get("reviews", alert.get("alert", {}).get("reviews"))
        if isinstance(alert, dict)
        else None
    )
    c.check(
        "investigator" not in json.dumps(reviews or []),
        "no review recorded for the entry's creator",
        f"{reviews}",
    )


def investigator_cases(c):
    c.go("#/cases")
    rows = c.wait(
        "the case's row",
        lambda: [
            r
            for r in c.rows("case-row", [], ["data-case"])
            if r["attributes"]["data-case"] == c.plan["case"]
        ],
        15,
    )
    c.check(
        bool(rows), f"a case-row for {c.plan['case']}", f"{c.rows('case-row', [], ['data-case'])}"
    )
    lists = c.wait("watchlist rows", lambda: c.rows("watchlist-row"), 15) or []
    c.check(any("wanted" in r["text"] for r in lists), "a watchlist-row for 'wanted'", f"{lists}")
    time.sleep(1)
    c.no_script_ran("the cases screen")
    c.audit_screen("cases")


def investigator_searches(c):
    c.go("#/search")
    c.attach("search-photo", [c.plan["search_photo"]])
    c.fill("search-case", "")
    c.fill("search-reason", "")

    def searches_sent():
        return c.driver.execute_script(
            "return performance.getEntriesByType('resource')"
            ".filter((e) => new URL(e.name).pathname === '/v1/search').length;"
        )

    sent_before = searches_sent()
    c.visible("search-submit").click()
    error = c.visible("search-error", timeout=10)
    c.check(
        error.text.strip() != "",
        "search-error says a case and a reason are needed",
        "an empty search-error",
    )
    c.log(f"search-error without case and reason: {error.text.strip()!r}")
    time.sleep(2)
    c.check(
        not c.find("search-hit"),
        "no search-hit without case and reason",
        f"{len(c.find('search-hit'))} hits",
    )
    # A case alone is not enough either.
    c.fill("search-case", c.plan["case"])
    c.visible("search-submit").click()
    time.sleep(2)
    c.check(
        not c.find("search-hit"),
        "no search-hit without a reason",
        f"{len(c.find('search-hit'))} hits",
    )
    c.check(
        any(e.is_displayed() and e.text.strip() for e in c.find("search-error")),
        "search-error without a reason",
        "no visible search-error",
    )
    c.check(
        searches_sent() == sent_before,
        "no request to /v1/search before the case and the reason are given",
        f"{searches_sent() - sent_before} request(s) sent",
    )
    c.fill("search-reason", "locate the watched person for the console test")
    c.visible("search-submit").click()
    hit = c.wait("a search hit", lambda: (c.find("search-hit") or [None])[0], timeout=60)
    c.check(
        searches_sent() > sent_before,
        "the search sent to /v1/search with case and reason",
        "no request in the page's resource timing",
    )
    if hit is None:
        raise Failure(
            "search-hit results with case and reason",
            f"none; search-error {c.text_of('search-error')!r}",
        )
    time.sleep(1)
    hits = c.rows("search-hit")
    first = hits[0]
    text = first["text"]
    c.log(f"{len(hits)} search hit(s); first: {text!r}")
    c.check(
        first["loaded_images"] > 0,
        "the hit shows its crop (a loaded img)",
        f"{first['images']} img, {first['loaded_images']} loaded",
    )
    c.check(c.plan["camera"] in text, f"the hit names camera {c.plan['camera']!r}", repr(text))
    c.check(re.search(r"\d{1,2}:\d{2}", text) is not None, "the hit shows a time", repr(text))
    c.check(
        re.search(r"1 in [\d,.\s]+|\d(\.\d+)?e-\d+|\d+(\.\d+)?\s*%", text) is not None,
        "the hit shows its false-match rate",
        repr(text),
    )
    c.audit_screen("search")
    c.logout()


def review_images(c):
    for name in ("review-probe", "review-enrolled"):
        image = c.visible(name, timeout=15)
        loaded = c.wait(
            f"{name} loaded",
            lambda image=image: c.driver.execute_script(
                "return arguments[0].complete && arguments[0].naturalWidth > 0;", image
            ),
            10,
        )
        c.check(
            bool(loaded),
            f"{name} shows its image",
            f"src={image.get_attribute('src')!r} not loaded",
        )
    words = c.visible("review-fmr-words").text.strip()
    c.check(
        re.search(r"1 in [\d,]+", words) is not None and "stranger" in words.lower(),
        'review-fmr-words in words ("about 1 in 100,000 strangers score this high")',
        repr(words),
    )


def reviewer1_confirms(c, alert_id):
    c.login("reviewer1")
    c.nav_links("reviewer1", ["alerts"])
    c.go(f"#/alerts/{alert_id}")
    review_images(c)
    c.fill("review-comment", "")
    c.visible("review-confirm").click()
    time.sleep(2)
    comment = c.find("review-comment")[0]
    refused_in_page = any(e.is_displayed() and e.text.strip() for e in c.find("review-error"))
    invalid = c.driver.execute_script("return !arguments[0].checkValidity();", comment)
    c.check(
        refused_in_page or invalid,
        "an empty comment refused (review-error, or the required textarea invalid)",
        "neither",
    )
    c.log(
        "empty comment: "
        + (f"review-error {c.text_of('review-error')!r}" if refused_in_page else "")
        + (" textarea invalid (required)" if invalid else "")
    )
    _, alert = c.api("reviewer1", "GET", f"/v1/alerts/{alert_id}")
    c.check(
        "reviewer1" not in json.dumps(alert),
        "no review recorded without a comment",
        f"GET /v1/alerts/{alert_id}: {alert}",
    )
    c.fill("review-comment", "same person: face shape, hairline and ears agree")
    c.visible("review-confirm").click()
    shown = c.wait(
        "reviewer1 among the reviewers",
        lambda: "reviewer1" in (c.text_of("review-reviewers") or ""),
        15,
    )
    c.check(bool(shown), "review-reviewers names reviewer1", repr(c.text_of("review-reviewers")))
    state = c.text_of("review-state") or ""
    c.check(
        "candidate" in state.lower() or "confirmed" not in state.lower(),
        "review-state not yet confirmed after one reviewer",
        repr(state),
    )
    c.log(f"after reviewer1: state {state!r}; reviewers {c.text_of('review-reviewers')!r}")
    c.logout()


def reviewer2_confirms(c, alert_id):
    c.login("reviewer2")
    c.go(f"#/alerts/{alert_id}")
    review_images(c)
    c.fill("review-comment", "agree: the same person")
    c.visible("review-confirm").click()

    def confirmed_state():
        state = (c.text_of("review-state") or "").lower()
        return "confirmed" in state and "candidate" not in state

    confirmed = c.wait("confirmed", confirmed_state, 15)
    c.check(
        bool(confirmed),
        "review-state 'confirmed' after two reviewers",
        repr(c.text_of("review-state")),
    )
    reviewers = c.text_of("review-reviewers") or ""
    c.check(
        "reviewer1" in reviewers and "reviewer2" in reviewers,
        "review-reviewers names reviewer1 and reviewer2",
        repr(reviewers),
    )
    status, alert = c.api("reviewer2", "GET", f"/v1/alerts/{alert_id}")
    c.check(
        isinstance(alert, dict) and alert.get("alert", {}).get("state") == "confirmed",
        "the API says the alert is confirmed",
        f"{status} {alert}",
    )
    time.sleep(1)
    c.audit_screen("review")
    c.go("#/alerts")
    c.visible("alert-row")
    c.no_script_ran("the alerts screen")
    c.logout()


def auditor_audits(c):
    c.login("auditor")
    c.nav_links("auditor", ["audit"])
    c.go("#/audit")
    verified = c.wait(
        "verified",
        lambda: "verified" in (c.text_of("audit-verify-status") or "").lower(),
        20,
    )
    c.check(
        bool(verified), "audit-verify-status says verified", repr(c.text_of("audit-verify-status"))
    )
    rows = c.wait("audit rows", lambda: c.find("audit-row"), 15) or []
    c.check(len(rows) > 0, "audit-row entries", "none")
    c.log(f"audit: {c.text_of('audit-verify-status')!r}, {len(rows)} rows")
    time.sleep(1)
    c.no_script_ran("the audit screen")
    c.audit_screen("audit")
    c.logout()


def admin_administers(c):
    c.login("admin")
    c.nav_links("admin", ["live", "admin"])
    c.go("#/admin")
    cameras = c.wait("camera rows", lambda: c.rows("admin-camera-row"), 15) or []
    c.check(
        any(c.plan["camera"] in r["text"] for r in cameras),
        f"an admin-camera-row for {c.plan['camera']!r}",
        f"{[r['text'] for r in cameras]}",
    )
    users = c.wait("user rows", lambda: c.rows("admin-user-row"), 15) or []
    texts = " ".join(r["text"] for r in users)
    missing = [u for u in c.plan["users"] if u not in texts]
    c.check(not missing, "an admin-user-row for every user", f"missing {missing}")
    time.sleep(1)
    c.audit_screen("admin")
    c.logout()


def login_screen(c):
    c.open("")
    c.visible("login-name", timeout=30)
    # The detector itself: an img with src "x" put into the page is counted, then removed.
    counted = c.driver.execute_async_script(
        """
        const done = arguments[arguments.length - 1];
        const probe = document.createElement('span');
        probe.innerHTML = '<img src="x" alt="">';
        document.body.appendChild(probe);
        setTimeout(() => { const n = window.__xssImages; probe.remove();
                           setTimeout(() => done([n, window.__xssImages]), 50); }, 50);
        """
    )
    c.check(
        counted == [1, 0],
        "the canary counts an injected img (1, then 0 once removed)",
        f"{counted}",
    )
    c.audit_screen("login")


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--plan", required=True)
    parser.add_argument("--axe", required=True, help="axe.min.js")
    parser.add_argument("--screens", required=True, help="folder for the screens' PNGs")
    parser.add_argument("--failures", required=True, help="folder for failure screenshots")
    args = parser.parse_args()
    with open(args.plan, encoding="utf-8") as handle:
        plan = json.load(handle)
    os.makedirs(args.screens, exist_ok=True)
    os.makedirs(args.failures, exist_ok=True)
    started = time.monotonic()
    c = Console(plan, args.screens, args.failures, args.axe)
    try:
        c.phase("login screen", login_screen, c)
        c.phase("operator: log in, live camera streaming", operator_live, c)
        c.phase("operator: the live picture boxes a tracked face", operator_watches_live, c)
        alert_id = c.phase("operator: an alert arrives without reload", operator_alert_arrives, c)
        c.phase(
            "investigator: enrol a subject named like HTML", investigator_enrols_a_hostile_name, c
        )
        if alert_id:
            c.phase(
                "investigator (the entry's creator): review refused",
                creator_is_refused,
                c,
                alert_id,
            )
        c.phase("investigator: cases and watchlists", investigator_cases, c)
        c.phase(
            "investigator: search needs a case and a reason, then finds", investigator_searches, c
        )
        if alert_id:
            c.phase(
                "reviewer1: confirm (empty comment refused first)", reviewer1_confirms, c, alert_id
            )
            c.phase("reviewer2: confirm; alert confirmed", reviewer2_confirms, c, alert_id)
        else:
            c.step = "reviews"
            c.fail("an alert to review", "none arrived (see above)")
        c.phase("auditor: audit chain verified", auditor_audits, c)
        c.phase("admin: cameras and users", admin_administers, c)
        errors = c.errors_in_console()
        if errors:
            print("browser console errors (last page):\n  " + "\n  ".join(errors), flush=True)
    finally:
        c.driver.quit()
    print(f"\naxe-core findings ({len(c.axe_findings)}):", flush=True)
    for line in c.axe_findings:
        print(f"  {line}")
    print(f"console e2e: {time.monotonic() - started:.0f} s", flush=True)
    if c.failures:
        print(f"\n{len(c.failures)} FAILURE(S):")
        for number, failure in enumerate(c.failures, 1):
            print(
                f"{number}. [{failure['step']}]\n   expected: {failure['expected']}\n"
                f"   found:    {failure['found']}\n   url: {failure['url']}\n"
                f"   screenshot: {failure['screenshot']}"
            )
        sys.exit(1)
    print("console e2e: ok")


if __name__ == "__main__":
    main()
