"""Browser tests: the real app (`python app.py`) in a subprocess, driven by Debian's headless Chromium.

Fixtures
    app_server   one app for the whole suite (a fresh data dir, no simulated latency)
    app_factory  start more apps (own data dir, flags; tests/app_server.py), e.g. to kill and restart one
    browser      one Chromium for the whole suite
    page         a fresh browser context and page per test (own localStorage), with a `Studio` helper
    studio       the page wrapped in `Studio` (tests/browser/conftest.py), pointed at app_server
    shot         shot(page, suffix="") saves a full-page screenshot named after the test

Screenshots go to $COLLABVR_SCREENSHOTS, else tests/browser/screenshots/ (git-ignored there).
The suite is skipped when /usr/bin/chromium is missing; `playwright install` is never needed.
"""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

import pytest

from app_server import AppServer


CHROMIUM = Path("/usr/bin/chromium")
HERE = Path(__file__).resolve().parent
# What a component shows, without the progress overlay Gradio puts over it while an event is pending: an HTML
# or Markdown component's text, or a message box's (a read-only text box: ui/widgets.py) value.
SHOWN_JS = ("(e) => { if (!e) return ''; const c = e.querySelector('.prose'); if (c) return c.innerText;"
            " const box = e.querySelector('textarea'); return box ? box.value : e.innerText; }")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--disable-quic", "--no-first-run"]
WAIT_MS = 20_000
# The simulated world the seeds of these tests were chosen in: the legacy models, which the app still lists
# (its default is the calibrated `paper` world).
LEGACY_VGM = "Simulated VGM (legacy profile)"
LEGACY_VLM = "Simulated VLM (verifier errs like gemini-2.5-pro)"
BREAKPOINTS = ["before_generate", "after_verify", "on_reject", "on_route"]  # default bound of every wait on the page


def pytest_collection_modifyitems(config, items):
    if CHROMIUM.exists():
        return
    skip = pytest.mark.skip(reason=f"browser tests need Debian's Chromium at {CHROMIUM} (apt-get install chromium)")
    for item in items:
        if HERE in Path(item.path).resolve().parents:
            item.add_marker(skip)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"rep_{report.when}", report)


def screenshot_dir() -> Path:
    folder = Path(os.environ.get("COLLABVR_SCREENSHOTS") or HERE / "screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture(scope="session")
def app_factory(tmp_path_factory):
    servers: list[AppServer] = []

    def make(name: str = "app", **options) -> AppServer:
        server = AppServer(tmp_path_factory.mktemp(name), **options)
        servers.append(server)
        return server.start()

    yield make
    for server in servers:
        server.stop()


@pytest.fixture(scope="session")
def app_server(app_factory) -> AppServer:
    return app_factory("shared")


# ----- the browser ------------------------------------------------------------------------------------------------

@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser, request):
    context = browser.new_context(viewport={"width": 1440, "height": 1000}, accept_downloads=True)
    context.set_default_timeout(WAIT_MS)
    pg = context.new_page()
    pg.errors = []  # type: ignore[attr-defined]
    pg.on("pageerror", lambda exc: pg.errors.append(str(exc)))  # type: ignore[attr-defined]
    trace: list[str] = []  # what the page asked and said, kept for a failing test's report
    pg.on("console", lambda m: trace.append(f"{time.time():.2f} console {m.type}: {m.text[:300]}"))
    pg.on("request", lambda r: trace.append(f"{time.time():.2f} request {r.method} {r.url[-60:]} "
                                            f"{(r.post_data or '')[:200]}"))
    pg.on("requestfailed", lambda r: trace.append(f"{time.time():.2f} FAILED {r.url[-60:]} {r.failure}"))
    yield pg
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed:  # what the page showed when the test failed
        try:
            name = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.name)
            (screenshot_dir() / f"FAILED-{name}.log").write_text("\n".join(trace[-400:]))
            pg.screenshot(path=str(screenshot_dir() / f"FAILED-{name}.png"), full_page=True, timeout=10_000)
        except Exception:
            pass
    context.close()


@pytest.fixture
def shot(request):
    folder = screenshot_dir()

    def take(pg, suffix: str = "") -> Path:
        try:  # let the clips on screen show a frame rather than a black box (best effort, bounded)
            pg.wait_for_function("() => [...document.querySelectorAll('video')].every(v => v.readyState >= 2)",
                                 timeout=5000)
        except Exception:
            pass
        name = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.name + (f"-{suffix}" if suffix else ""))
        path = folder / f"{name}.png"
        pg.screenshot(path=str(path), full_page=True)
        return path

    return take


@pytest.fixture
def studio(page, app_server):
    s = Studio(page, app_server.url)
    s.open()
    return s


# ----- the page, as a person sees and uses it ------------------------------------------------------------------------

class Studio:
    """Helpers that do what a person does on the page: pick, type, click, and read what is shown.

    Each wait is bounded (WAIT_MS unless told); nothing sleeps for long."""

    def __init__(self, page, url: str) -> None:
        self.page = page
        self.url = url

    # navigation ----------------------------------------------------------------------------------------------
    def open(self, url: str | None = None) -> None:
        if url:
            self.url = url
        self._navigate(lambda: self.page.goto(self.url, wait_until="domcontentloaded"))

    def reload(self) -> None:
        self._navigate(lambda: self.page.reload(wait_until="domcontentloaded"))

    def _navigate(self, go) -> None:
        from playwright.sync_api import Error as PlaywrightError

        for attempt in range(3):
            try:
                go()
                break
            except PlaywrightError as exc:  # the page's own reconnect navigated meanwhile (after a restart)
                if "ERR_ABORTED" not in str(exc) or attempt == 2:
                    raise
                go = lambda: self.page.goto(self.url, wait_until="domcontentloaded")  # noqa: E731
        self.wait_loaded()

    def wait_loaded(self) -> None:
        self.page.wait_for_selector("#start-session", state="attached")
        self.page.wait_for_selector("#status-line .status-line")
        # demo.load restores the session and the annotator from this browser's storage; let it land.
        self.page.wait_for_function("() => !document.querySelector('.wrap.pending, .wrap.generating')",
                                    timeout=WAIT_MS)
        self.page.wait_for_timeout(600)

    def tab(self, name: str) -> None:
        self.page.get_by_role("tab", name=name, exact=True).click()

    # generic widgets ----------------------------------------------------------------------------------------
    def el(self, elem_id: str):
        return self.page.locator(f"#{elem_id}")

    def text(self, elem_id: str) -> str:
        """What the component shows (for Markdown and HTML: their content, not the progress overlay)."""
        return self.el(elem_id).evaluate(SHOWN_JS)

    def field(self, elem_id: str):
        return self.page.locator(f"#{elem_id} textarea, #{elem_id} input:not([type=range])").first

    def value(self, elem_id: str) -> str:
        return self.field(elem_id).input_value()

    def fill(self, elem_id: str, text: str) -> None:
        box = self.field(elem_id)
        box.fill(str(text))
        box.press("Tab")

    def choose(self, elem_id: str, label: str) -> None:
        """A dropdown: open it and click the option with this label."""
        self.page.locator(f"#{elem_id} input[role=combobox]").click()
        self.page.locator(f'#{elem_id} li[role=option][aria-label="{label}"]').click()
        self.page.wait_for_function(
            "([id, label]) => document.querySelector(`#${id} input[role=combobox]`).value === label",
            arg=[elem_id, label])

    def radio(self, elem_id: str, label: str) -> None:
        self.page.locator(f"#{elem_id} label").filter(has_text=label).first.click()

    def check(self, elem_id: str, names: list[str], *, on: bool = True) -> None:
        """A checkbox group: tick (or untick) the boxes with these values (e.g. breakpoint keys)."""
        for name in names:
            box = self.page.locator(f'#{elem_id} input[name="{name}"]')
            if box.is_checked() != on:
                box.click()

    def click(self, elem_id: str) -> None:
        self.page.locator(f"#{elem_id}").click()

    def open_accordion(self, elem_id: str) -> None:
        button = self.page.locator(f"#{elem_id} > button.label-wrap")
        if "open" not in (button.get_attribute("class") or ""):
            button.click()

    def wait_text(self, elem_id: str, pattern: str, timeout: int = WAIT_MS) -> str:
        """Wait until the element's visible text matches the regex; returns the text."""
        from playwright.sync_api import TimeoutError as PlaywrightTimeout

        try:
            self.page.wait_for_function(
                "([id, pattern]) => { const e = document.getElementById(id);"
                f" return !!e && new RegExp(pattern).test(({SHOWN_JS})(e)); }}",
                arg=[elem_id, pattern], timeout=timeout)
        except PlaywrightTimeout:
            shown = self.text(elem_id) if self.el(elem_id).count() else "<missing>"
            raise AssertionError(f"#{elem_id} never matched {pattern!r} within {timeout} ms; it shows: {shown!r}")
        return self.text(elem_id)

    def message(self, elem_id: str, pattern: str, timeout: int = WAIT_MS) -> str:
        return self.wait_text(elem_id, pattern, timeout)

    def table(self, elem_id: str) -> list[list[str]]:
        """The rows a gr.Dataframe shows (cell texts), in order."""
        return self.page.locator(f"#{elem_id}").evaluate(
            "e => [...e.querySelectorAll('[role=row].virtual-row')]"
            ".sort((a, b) => Number(a.dataset.index) - Number(b.dataset.index))"
            ".map(r => [...r.querySelectorAll('[role=gridcell]')].map(c => c.innerText.trim()))")

    # the session's display -------------------------------------------------------------------------------
    @property
    def sid(self) -> str:
        return self.value("session-id")

    def status(self) -> str:
        return self.text("status-line")

    def seq(self) -> int:
        root = self.page.locator("#timeline .timeline-root[data-seq]")
        return int(root.get_attribute("data-seq")) if root.count() else -1

    def wait_status(self, pattern: str, timeout: int = WAIT_MS) -> str:
        return self.wait_text("status-line", pattern, timeout)

    def badge(self) -> str:
        """The status badge's word (idle, working, held, failed, interrupted, finished)."""
        return self.page.locator("#status-line .status-badge").inner_text().strip()

    def wait_idle(self, timeout: int = WAIT_MS) -> str:
        """Until the worker is idle: the status line no longer says 'working'."""
        self.page.wait_for_function(
            "() => { const e = document.querySelector('#status-line .status-line');"
            " return !!e && !/working|in flight/.test(e.innerText); }", timeout=timeout)
        return self.status()

    def step(self, timeout: int = WAIT_MS) -> str:
        """Press Step and wait for the command to land in the timeline (or for a new ⚠ message); returns the
        status line."""
        before, said = self.seq(), self.text("control-message")
        self.click("btn-step")
        self.page.wait_for_function(
            "([before, said]) => { const r = document.querySelector('#timeline .timeline-root[data-seq]');"
            " const s = document.querySelector('#status-line .status-line');"
            f" const m = ({SHOWN_JS})(document.getElementById('control-message'));"
            " if (m.includes('⚠') && m !== said) return true;"
            " return !!r && Number(r.dataset.seq) > before && !!s && !/working|in flight/.test(s.innerText); }",
            arg=[before, said], timeout=timeout)
        return self.status()

    def run(self, until: str = r"done:|waiting:", timeout: int = 40_000) -> str:
        """Press Run and wait until the status line says the loop stopped (done, or waiting for a person).
        Only for a loop that is not stopped already (else there would be nothing to wait for)."""
        assert not re.search(until, self.status()), f"the loop is stopped already: {self.status()}"
        self.click("btn-run")
        self.page.wait_for_function(
            "(pattern) => { const s = document.querySelector('#status-line .status-line');"
            " return !!s && !/working|in flight/.test(s.innerText) && new RegExp(pattern).test(s.innerText); }",
            arg=until, timeout=timeout)
        return self.status()

    @staticmethod
    def new_text(locator) -> str:
        """The text of a prompt diff as it reads now: the <del> words left out, whitespace squeezed."""
        return locator.evaluate(
            "e => { const c = e.cloneNode(true); c.querySelectorAll('del').forEach(d => d.remove());"
            " return c.textContent.replace(/\\s+/g, ' ').trim(); }")

    def cards(self):
        return self.page.locator("#timeline .step-card")

    def rows(self, step: int | None = None):
        where = f'[data-step="{step}"]' if step is not None else ""
        return self.page.locator(f"#timeline .attempt-row{where}")

    def row(self, step: int, attempt: int):
        return self.page.locator(f'#timeline .attempt-row[data-step="{step}"][data-attempt="{attempt}"]')

    # starting sessions --------------------------------------------------------------------------------------
    def new_sim_session(self, *, family: str = "maze", difficulty: str = "easy", seed: int = 0,
                        vgm: str | None = LEGACY_VGM, vlm: str | None = LEGACY_VLM, n_max: int = 2, m: int = 2,
                        first_seconds: float = 2, later_seconds: float = 1, latency: float | None = 0,
                        breakpoints: list[str] = ()) -> str:
        """Fill the new-session panel and press Start; returns the new session's id (from the top bar)."""
        self.open_accordion("new-session")
        if self.value("family") != family:
            self.choose("family", family)
        self.radio("difficulty", difficulty)
        self.fill("seed", str(seed))
        if vlm:
            self.choose("vlm-choice", vlm)
        if vgm:
            self.choose("vgm-choice", vgm)
        for elem_id, number in (("n-max", n_max), ("m", m), ("first-seconds", first_seconds),
                                ("later-seconds", later_seconds)):
            self.fill(elem_id, str(number))
        if latency is not None:
            self.fill("sim-latency", str(latency))
        self.check("new-breakpoints", BREAKPOINTS, on=False)
        self.check("new-breakpoints", list(breakpoints))
        previous, said = self.sid, self.text("new-session-message")
        self.click("start-session")
        self.page.wait_for_function(
            "(said) => { const t = (" + SHOWN_JS + ")(document.getElementById('new-session-message'));"
            " return /session \\w+ started/.test(t) || (t.includes('⚠') && t !== said); }", arg=said)
        assert "⚠" not in self.text("new-session-message"), self.text("new-session-message")
        self.page.wait_for_function(
            "(prev) => { const e = document.querySelector('#session-id input, #session-id textarea');"
            " return !!e && e.value && e.value !== prev; }", arg=previous)
        sid = self.sid
        self.page.wait_for_selector(f'#timeline .timeline-root[data-session="{sid}"]')
        return sid

    def set_annotator(self, name: str) -> None:
        self.fill("annotator", name)
