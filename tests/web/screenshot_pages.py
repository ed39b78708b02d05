"""Look at the pages: build a throw-away SQLite database with the demo people and a few
applications in different states, serve the app, sign in with headless Chromium and save
screenshots.

    .venv/bin/python tests/web/screenshot_pages.py [OUT_DIR]     (default /tmp/parkflow-screens)

Needs /usr/bin/chromium (`apt-get install -y chromium`); driven through playwright. Not a test:
pytest does not collect it. Prints the PNG paths.
"""
from __future__ import annotations

import sys
import tempfile
import threading
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from werkzeug.serving import make_server  # noqa: E402

from config import DevConfig  # noqa: E402
from workflow_app import create_app  # noqa: E402
from workflow_app.cli import alembic_upgrade  # noqa: E402
from workflow_app.demo import DEMO_PASSWORD, load_people  # noqa: E402
from workflow_app.engine.runtime import Request  # noqa: E402
from workflow_app.models import Task, User  # noqa: E402
from workflow_app.services import attachments  # noqa: E402

INVESTMENT = {
    "project_name": "新材料产业园中试基地股权投资", "investing_entity": "zhentou",
    "enterprise_name": "宁波镇新新材料科技有限公司", "credit_code": "91330211MA2H3X4Y5Z",
    "investment_type": "股权投资", "investment_wan": "6800", "equity_ratio_pct": "35",
    "lead_industry": "新材料", "location": "澥浦镇", "park_name": "新材料产业园",
    "expected_output_wan": "52000", "expected_tax_wan": "2600", "expected_jobs": "180",
    "holding_years": "5", "exit_path": "股权回购", "proposal_file": "投资方案及尽调报告-2026-03.pdf",
}


class Clock:
    def __init__(self, now: datetime):
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def build(workdir: Path):
    url = f"sqlite:///{workdir / 'shots.db'}"
    alembic_upgrade(url)

    class Config(DevConfig):
        DATABASE_URL = url
        PROCESS_DEFS = str(ROOT / "process_defs")
        RATELIMIT_ENABLED = False

    app = create_app(Config)
    svc = app.extensions["parkflow"]
    clock = Clock(datetime.now(timezone.utc) - timedelta(days=12))
    svc.clock = svc.workflow.clock = clock
    with svc.db.write() as s:
        svc.store.sync(s, clock())
        load_people(s, clock())
        ids = dict(s.query(User.username, User.id).all())

    def act(name, iid, req, **kw):
        with svc.db.write() as s:
            return svc.workflow.act(s, ids[name], iid, req, **kw)

    def open_task(iid):
        with svc.db.read() as s:
            return s.query(Task).filter_by(instance_id=iid, status="open").order_by(Task.id).first()

    def start(key, data, name="zt_submit", dept="zhentou", files=()):
        checked = [attachments.Policy.from_config(app.config).check(f) for f in files]
        with svc.db.write() as s:
            result = svc.workflow.start(s, ids[name], key, attachments.with_files(data, checked), department=dept,
                                        trail_details=attachments.trail_details(checked))
            attachments.save(s, result.instance_id, result.trail_event_id, ids[name], checked, clock())
            return result.instance_id

    # 1. well under way: assessed, policy-checked, now waiting in 发改局's queue (overdue); its
    # proposal is an uploaded PDF
    proposal = attachments.Upload("proposal_file", "投资方案及尽调报告-2026-03.pdf",
                                  b"%PDF-1.4\n% ParkFlow screenshot sample\n" + b"0" * 180_000 + b"\n%%EOF\n")
    first = start("investment_review", {k: v for k, v in INVESTMENT.items() if k != "proposal_file"},
                  files=[proposal])
    clock.now += timedelta(hours=3)
    act("tc_review", first, Request("claim", open_task(first).id), department="invest_promo", role="reviewer")
    act("tc_review", first, Request("approve", open_task(first).id, opinion="项目符合新材料产业链招商方向，同意。"),
        department="invest_promo", role="reviewer")
    clock.now += timedelta(days=1)
    act("jx_review", first, Request("approve", open_task(first).id,
                                     opinion="符合我区新材料产业政策及小微园区差异化发展导向。"),
        department="econ_it", role="reviewer")
    clock.now += timedelta(hours=2)
    act("zt_submit", first, Request("urge", opinion="请尽快审查，企业计划二季度投产。"))
    act("fg_review", first, Request("claim", open_task(first).id), department="dev_reform", role="reviewer")
    # 2. returned to the submitter
    clock.now += timedelta(days=4)
    second = start("investment_review", {**INVESTMENT, "project_name": "招宝智造谷二期载体建设",
                                         "investment_type": "园区载体建设", "investment_wan": "3200"})
    act("tc_review2", second, Request("return", open_task(second).id, target="proposal",
                                      opinion="请补充载体建设的投资测算和租金回收计划。"),
        department="invest_promo", role="reviewer")
    # 3. fresh, due soon
    clock.now = datetime.now(timezone.utc) - timedelta(days=4)
    third = start("investment_review", {**INVESTMENT, "project_name": "浦成小微园集成电路基金出资",
                                        "investment_type": "产业基金出资", "lead_industry": "集成电路",
                                        "investment_wan": "12000", "location": "蛟川街道"})
    clock.now = datetime.now(timezone.utc)
    return app, {"first": first, "second": second, "third": third}


def serve(app):
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    return server, f"http://127.0.0.1:{server.server_port}"


def shoot(base: str, out: Path, iids: dict) -> list[Path]:
    from playwright.sync_api import sync_playwright

    shots = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium",
                                    args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--lang=zh-CN"])

        def session(username, width=1360, height=900):
            page = browser.new_page(viewport={"width": width, "height": height}, locale="zh-CN")
            page.goto(base + "/login")
            page.fill("#username", username)
            page.fill("#password", DEMO_PASSWORD)
            page.click(".auth-card button[type=submit]")
            page.wait_for_load_state("networkidle")
            return page

        def snap(page, name, url, full=True):
            page.goto(base + url)
            page.wait_for_load_state("networkidle")
            if page.locator("pre.mermaid").count():
                page.wait_for_selector("pre.mermaid[data-processed] svg", timeout=15000)
            path = out / f"{name}.png"
            page.screenshot(path=str(path), full_page=full)
            shots.append(path)

        login = browser.new_page(viewport={"width": 1360, "height": 800})
        snap(login, "01-login", "/login")
        fg = session("fg_review")
        snap(fg, "02-inbox-todo-fg_review", "/")
        snap(fg, "02b-inbox-filtered-fg_review", "/?process=investment_review&due=overdue&since=2026-01-01")
        snap(fg, "03-instance-decide-fg_review", f"/instances/{iids['first']}")
        tc = session("tc_review")
        snap(tc, "04-inbox-queue-tc_review", "/?tab=queue")
        zt = session("zt_submit")
        snap(zt, "05-inbox-started-zt_submit", "/?tab=started")
        snap(zt, "06-instance-returned-zt_submit", f"/instances/{iids['second']}")
        snap(zt, "07-start-form", "/processes/investment_review/start")
        snap(zt, "08-definition", "/definitions/investment_review")
        mobile = session("fg_review", width=390, height=844)
        snap(mobile, "09-mobile-instance", f"/instances/{iids['first']}")
        en = session("tc_review2")
        en.goto(base + "/")
        en.click(".lang-switch button")
        snap(en, "10-english-inbox-queue", "/?tab=queue")
        snap(en, "11-english-instance", f"/instances/{iids['first']}")
        snap(en, "12-english-start-form", "/processes/park_project_lifecycle/start")
        browser.close()
    return shots


def main() -> None:
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "/tmp/parkflow-screens")
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        app, iids = build(Path(tmp))
        server, base = serve(app)
        try:
            for path in shoot(base, out, iids):
                print(path)
        finally:
            server.shutdown()
            app.extensions["parkflow"].db.dispose()


if __name__ == "__main__":
    main()
