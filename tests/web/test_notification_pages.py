"""The notification centre (/notifications) and the time-limit compliance page (/sla): who sees
what, the unread count, marking read, the charts' data block (no inline script), the XLSX export
(written to the security log)."""
from __future__ import annotations

import io
import json
import re
from datetime import datetime, timezone

from openpyxl import load_workbook
from sqlalchemy import select

from tests.web.helpers import act, as_user, csrf_token, open_tasks, start, text
from workflow_app.engine.runtime import Request
from workflow_app.models import Notification, SecurityEvent


def notifications(app, user_id: int) -> list[Notification]:
    with app.extensions["parkflow"].db.read() as s:
        return list(s.scalars(select(Notification).where(Notification.user_id == user_id).order_by(Notification.id)))


def test_the_notification_centre_lists_marks_read_and_opens(app, people):
    iid = start(app, people)
    [mine] = notifications(app, people["promo1"])
    client = as_user(app, "promo1")
    page = text(client.get("/notifications"))
    assert "待办：新材料中试基地" in page and "投促中心评估" in page and "未读 1" in page
    assert 'href="/notifications/%d"' % mine.id in page
    assert "时限监督" not in page  # a reviewer does not see the compliance page link
    header = text(client.get("/inbox"))
    assert re.search(r'href="/notifications"[^>]*>通知 <span class="badge badge-warn"[^>]*>1</span>', header)
    opened = client.get(f"/notifications/{mine.id}")
    assert opened.status_code == 302 and opened.headers["Location"].endswith(f"/instances/{iid}")
    assert notifications(app, people["promo1"])[0].read_at is not None
    assert "未读 1" not in text(client.get("/notifications"))
    assert 'badge badge-warn' not in text(client.get("/inbox")).split("</nav>")[0]
    other = notifications(app, people["promo2"])[0]
    assert client.get(f"/notifications/{other.id}").status_code == 404  # someone else's
    assert client.post(f"/notifications/{other.id}/read").status_code == 404


def test_mark_all_read_needs_csrf(make_app, people):
    app = make_app(csrf=True)
    start(app, people)
    client = as_user(app, "promo2")
    assert client.post("/notifications/read-all").status_code == 400
    page = text(client.get("/notifications?show=unread"))
    response = client.post("/notifications/read-all", data={"csrf_token": csrf_token(page)})
    assert response.status_code == 302
    assert all(n.read_at for n in notifications(app, people["promo2"]))


def test_the_submitter_hears_of_the_decision(app, people):
    iid = start(app, people)
    [task] = open_tasks(app, iid)
    act(app, people, "promo1", iid, Request("claim", task.id))
    act(app, people, "promo1", iid, Request("reject", task.id, opinion="不符合产业导向"))
    [decided] = notifications(app, people["submitter"])
    assert decided.kind == "decided" and "未通过" in decided.body and "不符合产业导向" in decided.body
    page = text(as_user(app, "submitter").get("/notifications"))
    assert "已办结：新材料中试基地" in page and "办结" in page


def test_the_sla_page_is_for_coordinators_heads_and_compliance(app, people, clock):
    clock.now = datetime(2026, 3, 2, 1, 0, tzinfo=timezone.utc)
    late = start(app, people, data={"project_name": "逾期项目", "investment_wan": "100", "industry": "新材料"})
    done = start(app, people, data={"project_name": "按期项目", "investment_wan": "100", "industry": "新材料"})
    [task] = open_tasks(app, done)
    act(app, people, "promo1", done, Request("claim", task.id))
    act(app, people, "promo1", done, Request("approve", task.id))
    clock.now = datetime(2026, 3, 11, 1, 0, tzinfo=timezone.utc)  # 'assess' (5 days) is overdue
    assert as_user(app, "promo1").get("/sla/").status_code == 403
    for who in ("sasac", "econ"):  # a department head; a member of the coordinating body
        page = text(as_user(app, who).get("/sla/?date_from=2026-01-01&date_to=2026-03-31&yellow=3"))
        assert "时限监督" in page and "逾期项目" in page
    assert "<script>" not in page and 'src="/static/js/sla.js"' in page
    data = json.loads(re.search(r'<script type="application/json" id="sla-data">(.*?)</script>', page, re.S).group(1))
    promo = data["departments"]["labels"].index("区投资促进中心")
    series = data["departments"]["series"]
    assert (series["overdue"][promo], series["on_time"][promo]) == (1, 1)  # the late one; the done one
    assert "sla-card-red" in page and f'href="/instances/{late}"' in page
    assert f'href="/instances/{done}"' not in page  # finished in time: on no card
    assert as_user(app, "sasac").get("/sla/?date_from=2026-03-31&date_to=2026-01-01").status_code == 400


def test_the_sla_export_is_a_workbook_and_is_logged(app, people, clock):
    clock.now = datetime(2026, 3, 2, 1, 0, tzinfo=timezone.utc)
    start(app, people)
    clock.now = datetime(2026, 3, 11, 1, 0, tzinfo=timezone.utc)
    response = as_user(app, "sasac").get("/sla/export.xlsx?date_from=2026-01-01&date_to=2026-03-31")
    assert response.status_code == 200 and response.mimetype.endswith("spreadsheetml.sheet")
    # the file is named in Beijing time: 01:00 UTC is 09:00 in Zhenhai
    assert 'filename="parkflow-sla-202603110900.xlsx"' in response.headers["Content-Disposition"]
    book = load_workbook(io.BytesIO(response.data))
    assert book.sheetnames == ["按部门", "按流程", "环节用时", "逾期清单（红牌）", "即将到期（黄牌）", "说明"]
    red = book["逾期清单（红牌）"]
    assert red.cell(2, 2).value == "新材料中试基地" and red.cell(2, 8).value == 2  # Tue 10, Wed 11 March
    with app.extensions["parkflow"].db.read() as s:
        [logged] = s.scalars(select(SecurityEvent).where(SecurityEvent.event == "export")).all()
    assert logged.details["kind"] == "sla_xlsx" and logged.user_id == people["sasac"]
