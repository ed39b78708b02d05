"""The inbox: each tab shows the right people the right applications, due dates are flagged,
search and paging work, claim and bulk approval go through the service."""
from __future__ import annotations

from datetime import timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import update

from tests.web.helpers import DATA, act, as_user, open_tasks, start, text
from workflow_app.engine.runtime import Request
from workflow_app.models import ProcessInstance, Task


def tab(client, name: str, **params) -> str:
    query = "&".join(f"{k}={v}" for k, v in {"tab": name, **params}.items())
    response = client.get(f"/?{query}")
    assert response.status_code == 200
    return text(response)


def test_tabs_show_the_right_tasks_per_user(app, people):
    iid = start(app, people)
    title = DATA["project_name"]
    promo1, promo2 = as_user(app, "promo1"), as_user(app, "promo2")
    submitter, econ = as_user(app, "submitter"), as_user(app, "econ")

    assert title in tab(promo1, "queue") and "认领" in tab(promo1, "queue")
    assert title not in tab(promo1, "my")
    assert title in tab(submitter, "started") and title not in tab(submitter, "my")
    assert title not in tab(econ, "queue") and title not in tab(econ, "my")

    [task] = open_tasks(app, iid)
    response = promo1.post(f"/instances/{iid}/act", data={"action": "claim", "task_id": task.id})
    assert response.status_code == 302 and response.headers["Location"].endswith(f"/instances/{iid}")
    assert title in tab(promo1, "my")
    assert title not in tab(promo2, "queue")

    act(app, people, "promo1", iid, Request("approve", task.id, opinion="同意"))
    assert title in tab(promo1, "done") and title not in tab(promo1, "my")
    # now at the parallel step: econ (single: queue) and plan1/plan2 (会签: personal tasks)
    assert title in tab(econ, "queue")
    assert title in tab(as_user(app, "plan1"), "my")

    act(app, people, "submitter", iid, Request("cc", users=(people["haijiang"],), opinion="请知悉"))
    haijiang = as_user(app, "haijiang")
    assert title in tab(haijiang, "cc")
    assert haijiang.get(f"/instances/{iid}").status_code == 200  # CC'd people may read it


def test_overdue_due_soon_and_provisional_are_flagged(app, people, clock):
    first = start(app, people, data={**DATA, "project_name": "逾期项目"})
    second = start(app, people, data={**DATA, "project_name": "临期项目"})
    third = start(app, people, data={**DATA, "project_name": "宽裕项目"})
    svc = app.extensions["parkflow"]
    now = clock()
    with svc.db.write() as s:
        for iid, due, provisional in ((first, now - timedelta(hours=1), False),
                                      (second, now + timedelta(days=1), True),
                                      (third, now + timedelta(days=9), False)):
            s.execute(update(Task).where(Task.instance_id == iid)
                      .values(due_at=due, due_provisional=provisional))
    html = tab(as_user(app, "promo1"), "queue")
    rows = {t: html.split(t)[1].split("</li>")[0] for t in ("逾期项目", "临期项目", "宽裕项目")}
    assert "due-overdue" in rows["逾期项目"] and "已逾期" in rows["逾期项目"]
    assert "due-soon" in rows["临期项目"] and "即将到期" in rows["临期项目"] and "暂定" in rows["临期项目"]
    assert "due-ok" in rows["宽裕项目"] and "已逾期" not in rows["宽裕项目"]
    due = (now + timedelta(days=9)).astimezone(ZoneInfo("Asia/Shanghai")).date()
    assert f"截止 {due.year}年{due.month}月{due.day}日" in rows["宽裕项目"]
    assert 'class="inbox-item is-overdue"' in html


def test_search_and_keyset_paging(app, people):
    for n in range(1, 33):
        start(app, people, data={**DATA, "project_name": f"园区项目-{n}"})
    client = as_user(app, "promo1")
    html = tab(client, "queue")
    assert html.count('class="inbox-title"') == 30 and "更多" in html
    assert "园区项目-32" in html and "园区项目-2<" not in html  # newest first
    more = html.split('<div class="more">')[1].split('href="')[1].split('"')[0].replace("&amp;", "&")
    rest = text(client.get(more))
    assert rest.count('class="inbox-title"') == 2 and "园区项目-1<" in rest and "更多" not in rest

    found = tab(client, "queue", q="项目-3")
    assert found.count('class="inbox-title"') == 4  # 3, 30, 31, 32
    started = tab(as_user(app, "submitter"), "started", q="项目-1")
    assert started.count('class="inbox-title"') == 11  # 1, 10..19
    assert "没有标题包含" in tab(client, "queue", q="不存在的标题")


def test_bulk_approve_only_where_the_step_allows_it(app, people):
    quick = [start(app, people, key="quick_check", data={"subject": f"资料核验-{n}"}) for n in range(3)]
    review = start(app, people)
    [review_task] = open_tasks(app, review)
    act(app, people, "promo1", review, Request("claim", review_task.id))
    client = as_user(app, "promo1")
    html = tab(client, "my")
    assert "批量同意" in html
    mine = {iid: next(t.id for t in open_tasks(app, iid) if t.assignee_id == people["promo1"]) for iid in quick}
    for task_id in mine.values():
        assert f'name="task_ids" value="{task_id}"' in html
    assert f'name="task_ids" value="{review_task.id}"' not in html  # review's step does not allow it

    response = client.post("/inbox/bulk-approve",
                           data={"task_ids": [mine[quick[0]], mine[quick[1]], review_task.id]},
                           follow_redirects=True)
    page = text(response)
    assert "已批量同意 2 项" in page and "此环节不支持批量同意" in page
    svc = app.extensions["parkflow"]
    with svc.db.read() as s:
        statuses = [s.get(ProcessInstance, iid).status for iid in quick + [review]]
    assert statuses == ["approved", "approved", "running", "running"]
