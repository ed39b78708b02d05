"""An enterprise admission driven end to end through the pages by the demo roles: the park is
chosen from the portfolio's operating parks (no typed owner group), the operator offers a vacant
unit, the owner group's head approves, and the park's dossier shows the application and the
unit let to the new firm."""
from __future__ import annotations

import io

from pathlib import Path

import pytest
from sqlalchemy import select

from tests.factories import create_people
from tests.web.helpers import as_user, text
from workflow_app import demo
from workflow_app.domain import portfolio
from workflow_app.domain.portfolio_store import load_portfolio
from workflow_app.models import ProcessInstance, Task

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def site(make_app, clock):
    app = make_app(defs=ROOT / "process_defs")
    svc = app.extensions["parkflow"]
    with svc.db.write() as s:
        svc.store.sync(s, clock())
        app.people = create_people(s, {p.username: list(p.memberships) for p in demo.PEOPLE
                                       if not p.admin_role})
        load_portfolio(s, portfolio.load_file())
    return app


PDF = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj<<>>endobj\n%%EOF\n"


def fields(data: dict) -> dict:
    """The form's inputs; a document (an attachment field, named by its file) is uploaded."""
    return {f"f-{k}": (io.BytesIO(PDF), v) if isinstance(v, str) and v.endswith(".pdf") else str(v)
            for k, v in data.items()}


def task_of(app, iid: int) -> Task:
    with app.extensions["parkflow"].db.read() as s:
        return s.scalars(select(Task).where(Task.instance_id == iid, Task.status == "open")
                         .order_by(Task.id)).first()


def act(client, app, iid: int, action: str = "approve", **data):
    task = task_of(app, iid)
    response = client.post(f"/instances/{iid}/act", data={"action": action, "task_id": task.id, **data},
                           headers={"Referer": f"http://localhost/instances/{iid}"})
    assert response.status_code == 302, text(response)
    return response


def test_admission_through_the_pages_lets_the_unit(site):
    submitter = as_user(site, "hj_submit")
    form = text(submitter.get("/processes/enterprise_admission/start"))
    # the preferred park is chosen from the portfolio's operating parks; the owner group is not asked
    assert "新材料产业园（ZH-P01，蛟川街道）" in form and "浦成小微园（ZH-P03，澥浦镇）" in form
    assert "ZH-P07" not in form and 'name="f-owner_group"' not in form
    response = submitter.post("/processes/enterprise_admission/start",
                              data={"department": "haijiang", **fields(demo.ADMISSION)})
    assert response.status_code == 302, text(response)
    iid = int(response.headers["Location"].rsplit("/", 1)[1])

    promo = as_user(site, "tc_review")
    page = text(promo.get(f"/instances/{iid}"))
    assert 'name="f-park_name"' in page and 'name="f-owner_group"' not in page
    act(promo, site, iid, **fields(demo.ADMISSION_MATCH), opinion="匹配新材料产业园首层厂房")
    ops = as_user(site, "hj_ops")
    act(ops, site, iid, "claim")
    act(ops, site, iid, **fields({"offered_units": "8-102", "rent_yuan_m2_day": "0.8"}))
    act(as_user(site, "hj_head"), site, iid, opinion="同意入驻")
    with site.extensions["parkflow"].db.read() as s:
        case = s.get(ProcessInstance, iid)
        assert (case.status, case.subject_ref, case.form_data["owner_group"]) == ("approved", "ZH-P01", "haijiang")

    dossier = text(as_user(site, "hj_head").get("/parks/ZH-P01"))  # took part: may open it
    assert f'href="/instances/{iid}"' in dossier
    assert dossier.count(demo.ADMISSION["enterprise_name"]) >= 2  # the application and the unit's tenant
    other = text(as_user(site, "jx_review").get("/parks/ZH-P01"))  # listed, not openable
    assert demo.ADMISSION["enterprise_name"] in other and f'href="/instances/{iid}"' not in other


def test_a_unit_that_does_not_exist_is_shown_beside_the_input(site):
    submitter = as_user(site, "hj_submit")
    response = submitter.post("/processes/enterprise_admission/start",
                              data={"department": "haijiang", **fields(demo.ADMISSION)})
    iid = int(response.headers["Location"].rsplit("/", 1)[1])
    act(as_user(site, "tc_review"), site, iid, **fields(demo.ADMISSION_MATCH))
    ops = as_user(site, "hj_ops")
    task = task_of(site, iid)
    act(ops, site, iid, "claim")  # the operators' queue: the page offers the decision once claimed
    response = ops.post(f"/instances/{iid}/act", data={"action": "approve", "task_id": task.id,
                                                       "f-offered_units": "A1-101"},
                        headers={"Referer": f"http://localhost/instances/{iid}"})
    assert response.status_code == 422 and "ZH-P01 没有单元 A1-101" in text(response)
    ops.post("/locale/en")  # the English page gives the engine-side message itself
    response = ops.post(f"/instances/{iid}/act", data={"action": "approve", "task_id": task.id,
                                                       "f-offered_units": "A1-101"},
                        headers={"Referer": f"http://localhost/instances/{iid}"})
    assert response.status_code == 422 and "ZH-P01 has no unit A1-101" in text(response)


def to_owner_approval(app, unit: str, name: str, code: str) -> int:
    """An admission matched by 投促中心 and offered `unit` by the operator (through the service)."""
    from workflow_app.engine.runtime import Request

    svc = app.extensions["parkflow"]
    people = app.people

    def step(who, iid, data=None):
        with svc.db.write() as s:
            task = s.scalars(select(Task.id).where(Task.instance_id == iid, Task.status == "open",
                                                   (Task.assignee_id == people[who]) | Task.assignee_id.is_(None))
                             .order_by(Task.id)).first()
            svc.workflow.act(s, people[who], iid, Request("approve", task, data=data))

    with svc.db.write() as s:
        iid = svc.workflow.start(s, people["hj_submit"], "enterprise_admission",
                                 {**demo.ADMISSION, "enterprise_name": name, "credit_code": code},
                                 department="haijiang").instance_id
    step("tc_review", iid, demo.ADMISSION_MATCH)
    step("hj_ops", iid, {"offered_units": unit})
    return iid


def test_the_owner_group_approves_routine_admissions_in_bulk(site):
    first = to_owner_approval(site, "8-102", "甲材料科技有限公司(示例)", "DEMO00000000000071")
    second = to_owner_approval(site, "8-201", "乙材料科技有限公司(示例)", "DEMO00000000000072")
    third = to_owner_approval(site, "8-202", "丙材料科技有限公司(示例)", "DEMO00000000000073")
    svc = site.extensions["parkflow"]
    with svc.db.write() as s:  # 8-202 is let to someone else before the batch is signed
        from workflow_app.models import Building, Enterprise, Park, Unit
        unit = s.scalar(select(Unit).join(Building).join(Park).where(Park.code == "ZH-P01", Unit.number == "8-202"))
        unit.status, unit.tenant_id = "let", s.scalar(select(Enterprise.id).limit(1))
    head = as_user(site, "hj_head")
    inbox = text(head.get("/"))
    assert 'name="task_ids"' in inbox  # the step allows 批量同意
    ids = [task_of(site, iid).id for iid in (first, second, third)]
    response = head.post("/inbox/bulk-approve", data={"task_ids": ids})
    assert response.status_code == 302
    with svc.db.read() as s:
        status = {i: s.get(ProcessInstance, i).status for i in (first, second, third)}
    assert status == {first: "approved", second: "approved", third: "running"}
    page = text(head.get("/"))
    assert "已批量同意 2 项" in page and "丙材料科技有限公司(示例)" in page
    assert "无法登记入驻：单元 8-202 已出租或出售" in page  # why the third was not approved
    dossier = text(head.get("/parks/ZH-P01"))
    assert "甲材料科技有限公司(示例)" in dossier and "乙材料科技有限公司(示例)" in dossier
