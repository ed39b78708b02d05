"""Browser tests: the real app served on a free local port, driven by headless Chromium.

`live` is a fresh SQLite database migrated with Alembic, the definitions of the real
`process_defs/` synced and the demo people loaded (people only: no demo applications, so each
inbox holds just what the test puts there), served by werkzeug in a thread. Its clock is set by
the test to the moment each person acts (Beijing time), so the timeline reads like a real project
and every run shows the same dates, ids and hashes.

`people` opens one browser context per person (cookies apart, as on their own computers) and
signs them in through the login page; `Desk` is what a person does on the pages. After set-up,
everything goes through the pages: no service shortcuts.

Chromium is the Debian one (/usr/bin/chromium, `apt-get install -y chromium fonts-noto-cjk`),
launched through the playwright PyPI wheel; without it these tests are skipped.
Screenshots go to docs/screenshots/ (PARKFLOW_SCREENSHOTS=<dir> writes them elsewhere).
"""
from __future__ import annotations

import io
import os
import re
import threading
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from config import TestConfig
from workflow_app import create_app
from workflow_app.cli import alembic_upgrade
from workflow_app.demo import DEMO_PASSWORD, PEOPLE, load_people

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
VIEWPORT = {"width": 1280, "height": 800}
SHANGHAI = ZoneInfo("Asia/Shanghai")
MAX_SHOT_BYTES = 600 * 1024
NAMES = {p.username: p.name for p in PEOPLE}
DUE = re.compile(r"\s*(?:已逾期[^·]*· |即将到期[^·]*· |剩 \d+ 个工作日 · )?截止 \d{4}年\d{1,2}月\d{1,2}日"
                 r"(?:\s*[（(]?暂定[）)]?)?$")


class SetClock:
    """The app's clock: stands still until the test moves it to the next person's moment."""

    def __init__(self, when: str):
        self.now = self._parse(when)

    @staticmethod
    def _parse(when: str) -> datetime:
        return datetime.strptime(when, "%Y-%m-%d %H:%M").replace(tzinfo=SHANGHAI)

    def __call__(self) -> datetime:
        return self.now

    def set(self, when: str) -> None:
        moment = self._parse(when)
        assert moment >= self.now, f"the clock only moves forward ({when})"
        self.now = moment


@dataclass
class Live:
    url: str
    app: object
    clock: SetClock

    @property
    def services(self):
        return self.app.extensions["parkflow"]


@pytest.fixture(scope="module")
def chromium():
    if not CHROMIUM.exists():
        pytest.skip(f"browser tests need {CHROMIUM} (apt-get install -y chromium fonts-noto-cjk)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="browser tests need playwright")
    # Playwright's sync API runs its own event loop: keep it to this module, not the session.
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def live(tmp_path, chromium):
    from werkzeug.serving import WSGIRequestHandler, make_server

    class QuietHandler(WSGIRequestHandler):
        def log_request(self, *args, **kwargs) -> None:  # errors are still logged
            pass

    url = f"sqlite:///{tmp_path / 'e2e.db'}"
    alembic_upgrade(url)

    class E2EConfig(TestConfig):
        DATABASE_URL = url
        PROCESS_DEFS = str(ROOT / "process_defs")
        CALENDARS = str(ROOT / "process_defs" / "calendars")
        RATELIMIT_ENABLED = False  # a dozen people sign in from 127.0.0.1 within a minute
        # The simulated clock crosses twenty months of a park's life while everyone stays signed
        # in; session expiry and password ageing have their own tests.
        SESSION_IDLE_MINUTES = 3 * 366 * 24 * 60
        SESSION_ABSOLUTE_HOURS = 3 * 366 * 24
        PASSWORD_MAX_AGE_DAYS = 3 * 366
        TIME_TRAVEL_TESTS = True  # config.check: those three are beyond production's ranges

    app = create_app(E2EConfig)
    svc = app.extensions["parkflow"]
    clock = SetClock("2026-03-02 08:30")
    svc.clock = svc.workflow.clock = clock
    with svc.db.write() as s:
        svc.store.sync(s, clock())
        load_people(s, clock())
    server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=QuietHandler)
    thread = threading.Thread(target=server.serve_forever, name="e2e-server", daemon=True)
    thread.start()
    try:
        yield Live(f"http://127.0.0.1:{server.server_port}", app, clock)
    finally:
        server.shutdown()
        thread.join(timeout=10)
        server.server_close()
        svc.db.dispose()


@pytest.fixture(scope="session")
def shots_dir() -> Path:
    path = Path(os.environ.get("PARKFLOW_SCREENSHOTS") or ROOT / "docs" / "screenshots")
    path.mkdir(parents=True, exist_ok=True)
    return path


@dataclass
class Desk:
    """One person at their own browser."""

    username: str
    page: object
    live: Live
    shots: Path

    @property
    def name(self) -> str:
        return NAMES[self.username]

    # ---------------------------------------------------------------- navigation
    def go(self, path: str) -> None:
        self.page.goto(self.live.url + path)

    def submit(self, locator) -> None:
        """Click a button that posts a form, and wait for the page the server answers with."""
        with self.page.expect_navigation():
            locator.click()

    def flash(self, text: str) -> None:
        from playwright.sync_api import expect
        expect(self.page.locator(".flash-success")).to_contain_text(text)

    def sign_in(self) -> None:
        from playwright.sync_api import expect
        self.go("/login")
        self.page.fill("#username", self.username)
        self.page.fill("#password", DEMO_PASSWORD)
        # the header's language switch is a submit button too: take the login form's
        self.submit(self.page.locator(".auth-card button[type=submit]"))
        expect(self.page.locator(".userbar .who strong")).to_have_text(self.name)

    def inbox(self, tab: str = "my") -> None:
        self.go(f"/?tab={tab}")

    def open_from_inbox(self, title: str, tab: str = "my") -> None:
        """Open the application from a 待办 (or other) tab by its title, as people do."""
        self.inbox(tab)
        with self.page.expect_navigation():
            self.page.locator(".inbox-item a.inbox-title", has_text=title).click()

    def claim_from_queue(self, title: str) -> None:
        """部门待认领: claim the department's task; the page then shows the application."""
        self.inbox("queue")
        row = self.page.locator(".inbox-item", has_text=title)
        self.submit(row.get_by_role("button", name="认领"))
        self.flash("已认领")

    # ---------------------------------------------------------------- the action panel
    def decide_card(self):
        from playwright.sync_api import expect
        cards = self.page.locator("section.action-card:has(form.decide-form)")
        expect(cards).to_have_count(1)
        return cards

    def fill_fields(self, scope, values: dict) -> None:
        """Generated inputs are named f-<field>; booleans are 是/否 radios; attachments file inputs."""
        for name, value in values.items():
            if isinstance(value, bool):
                scope.locator(f"input[name='f-{name}'][value='{'true' if value else 'false'}']").check()
                continue
            box = scope.locator(f"#f-{name}")
            if box.evaluate("e => e.type") == "file":  # an attachment: a small PDF of that name
                box.set_input_files({"name": str(value), "mimeType": "application/pdf",
                                     "buffer": b"%PDF-1.4\n% " + str(value).encode() + b"\n%%EOF\n"})
            elif box.evaluate("e => e.tagName") == "SELECT":
                box.select_option(str(value))
            else:
                box.fill(str(value))

    def decide(self, action: str, *, opinion: str = "", fields: dict | None = None,
               before=None) -> None:
        """Fill the step's fields and the opinion, then press the button for `action`."""
        card = self.decide_card()
        if fields:
            self.fill_fields(card, fields)
        if opinion:
            card.locator("form.decide-form textarea[name=opinion]").fill(opinion)
        if before:
            before()
        self.submit(card.locator(f"button[name=action][value='{action}']"))

    def return_to(self, target: str, opinion: str) -> None:
        """退回: the first press shows where to; the second (确认退回) sends it back."""
        from playwright.sync_api import expect
        card = self.decide_card()
        card.locator("form.decide-form textarea[name=opinion]").fill(opinion)
        button = card.locator("button[name=action][value=return]")
        button.click()
        expect(card.locator("[data-return-chooser]")).to_be_visible()
        expect(button).to_have_text("确认退回")
        card.locator("select[name=target]").select_option(target)
        self.submit(button)

    # ---------------------------------------------------------------- checks and pictures
    def waiting(self) -> list[str]:
        """Who the application waits for, as the 当前进度 card lists them (without due dates)."""
        return [DUE.sub("", re.sub(r"\s+", " ", t)).strip()
                for t in self.page.locator(".now-card .waiting-list > li").all_inner_texts()]

    def timeline(self) -> list[str]:
        return [re.sub(r"\s+", " ", t).strip()
                for t in self.page.locator(".timeline .tl-item:not(.tone-pending)").all_inner_texts()]

    def snap(self, name: str) -> Path:
        """A full-page screenshot (after the diagram is drawn), kept under MAX_SHOT_BYTES."""
        page = self.page
        page.wait_for_load_state("networkidle")
        if page.locator("pre.mermaid").count():
            page.wait_for_selector("pre.mermaid[data-processed] svg", timeout=20_000)
        page.evaluate("document.fonts.ready")
        page.evaluate("window.scrollTo(0, 0)")  # else the sticky header lands mid-picture
        path = self.shots / f"{name}.png"
        save_picture(path, small_png(page.screenshot(full_page=True, animations="disabled", caret="hide")))
        assert path.stat().st_size < MAX_SHOT_BYTES, f"{path.name} is {path.stat().st_size} bytes"
        return path


def small_png(data: bytes) -> bytes:
    """The pages are flat colours and text: 256 colours keep them sharp at a third of the size
    (long instance pages stay under MAX_SHOT_BYTES). Pillow comes with WeasyPrint."""
    try:
        from PIL import Image
    except ImportError:  # pragma: no cover - the full screenshot then
        return data
    with Image.open(io.BytesIO(data)) as image:
        fewer = image.convert("RGB").quantize(256, method=Image.Quantize.MEDIANCUT,
                                              dither=Image.Dither.NONE)
        out = io.BytesIO()
        fewer.save(out, format="PNG")
    return out.getvalue()


def save_picture(path: Path, data: bytes) -> None:
    """Write the screenshot unless the picture already there differs only by anti-aliasing (a
    few pixels of the diagram's curves shift from run to run): a test run leaves git clean."""
    if path.exists():
        try:
            from PIL import Image, ImageChops
        except ImportError:  # pragma: no cover
            pass
        else:
            with Image.open(path) as old, Image.open(io.BytesIO(data)) as new:
                old, new = old.convert("RGB"), new.convert("RGB")
                if old.size == new.size:
                    strong = sum(ImageChops.difference(old, new).convert("L").histogram()[65:])
                    if strong <= old.size[0] * old.size[1] // 100_000:
                        return
    path.write_bytes(data)


class People:
    """people("zt_submit") -> that person's Desk, signed in on first use; people.anonymous() ->
    a browser nobody has signed in to."""

    def __init__(self, browser, live: Live, shots: Path):
        self.browser, self.live, self.shots = browser, live, shots
        self.contexts: list = []
        self.desks: dict[str, Desk] = {}

    def _page(self):
        context = self.browser.new_context(viewport=VIEWPORT, locale="zh-CN",
                                           timezone_id="Asia/Shanghai", accept_downloads=True)
        context.set_default_timeout(15_000)
        self.contexts.append(context)
        return context.new_page()

    def __call__(self, username: str) -> Desk:
        if username not in self.desks:
            self.desks[username] = Desk(username, self._page(), self.live, self.shots)
            self.desks[username].sign_in()
        return self.desks[username]

    def anonymous(self) -> Desk:
        return Desk("", self._page(), self.live, self.shots)

    def close(self) -> None:
        for context in self.contexts:
            context.close()


@pytest.fixture
def people(live, chromium, shots_dir):
    crowd = People(chromium, live, shots_dir)
    yield crowd
    crowd.close()
