"""Every shipped process end to end through the JSON API, each step taken by the demo role the
definition routes it to (bearer tokens of the demo people), over the demo portfolio:
enterprise admission (the unit is let), the investment review through the 三重一大 decision,
SASAC's quorum, payment, post-review and the equity exit, the park project lifecycle from
planning to operation, and a rectification opened by a red warning and closed by 经信局."""
from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from sqlalchemy import select

from config import TestConfig
from tests.factories import create_people
from workflow_app import create_app, demo
from workflow_app.domain import portfolio
from workflow_app.engine.schema import FieldType
from workflow_app.domain.portfolio_store import load_portfolio
from workflow_app.models import (Building, Enterprise, Park, ParkIndicator, ParkWarning,
                                 ProcessInstance, Unit)
from workflow_app.services import trail
from workflow_app.services.monitoring import RECTIFICATION, evaluate_period
from workflow_app.services.tokens import create_token

ROOT = Path(__file__).resolve().parents[2]
PDF = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj<<>>endobj\n%%EOF\n"


@pytest.fixture
def api(db, clock):
    class Config(TestConfig):
        DATABASE_URL = db.url
        PROCESS_DEFS = str(ROOT / "process_defs")

    app = create_app(Config)
    svc = app.extensions["parkflow"]
    svc.clock = svc.workflow.clock = clock
    with svc.db.write() as s:
        svc.store.sync(s, clock())
        people = create_people(s, {p.username: list(p.memberships) for p in demo.PEOPLE if not p.admin_role})
        load_portfolio(s, portfolio.load_file())
        tokens = {name: create_token(s, uid, f"{name} script", 30, now=clock()) for name, uid in people.items()}
    client = app.test_client()

    class Api:
        def __init__(self):
            self.app, self.people = app, people

        def start(self, who, process, department, data):
            """Attachment fields named by a file name are uploaded as that file (multipart), as
            the start form does; attachments cannot be typed in."""
            kinds = self.attachment_fields(process)
            files = {k: (io.BytesIO(PDF), v) for k, v in data.items() if k in kinds and isinstance(v, str)}
            payload = {"process": process, "department": department,
                       "data": {k: v for k, v in data.items() if k not in files}}
            r = client.post("/api/v1/instances/with-files", headers={"Authorization": f"Bearer {tokens[who]}"},
                            content_type="multipart/form-data",
                            data={"payload": json.dumps(payload, ensure_ascii=False), **files})
            assert r.status_code == 201, r.get_json()
            return r.get_json()["result"]["instance_id"]

        def attachment_fields(self, process):
            with svc.db.read() as s:
                _definition_id, spec = svc.store.latest(s, process)
            return {f.name for f in spec.fields if f.type is FieldType.attachment}

        def get(self, who, iid):
            r = client.get(f"/api/v1/instances/{iid}", headers={"Authorization": f"Bearer {tokens[who]}"})
            assert r.status_code == 200, r.get_json()
            return r.get_json()

        def step(self, who, iid, action="approve", *, step=None, expect=200, **body):
            """`who` takes their open task (assigned to them or in a queue of theirs)."""
            inst = self.get(who, iid)
            holds = {(d, r) for p in demo.PEOPLE if p.username == who for d, r in p.memberships}
            mine = [t for t in inst["tasks"] if t["status"] == "open" and (step is None or t["step"] == step)
                    and (t["assignee_id"] == people[who]
                         or (t["assignee_id"] is None and (t["department"], t["role"]) in holds))]
            assert mine, (who, inst["current_step"], inst["tasks"])
            body = {"action": action, "task_id": mine[0]["id"], **body}
            files = {k: (io.BytesIO(PDF), v) for k, v in (body.get("data") or {}).items()
                     if k in self.attachment_fields(inst["process_key"]) and isinstance(v, str)}
            if files:  # attachments are uploaded with the action, never typed in
                body["data"] = {k: v for k, v in body["data"].items() if k not in files}
                r = client.post(f"/api/v1/instances/{iid}/actions/with-files",
                                headers={"Authorization": f"Bearer {tokens[who]}"},
                                content_type="multipart/form-data",
                                data={"payload": json.dumps(body, ensure_ascii=False), **files})
            else:
                r = client.post(f"/api/v1/instances/{iid}/actions",
                                headers={"Authorization": f"Bearer {tokens[who]}"}, json=body)
            assert r.status_code == expect, r.get_json()
            return r.get_json()

    yield Api()
    svc.db.dispose()


def check_trail(api):
    with api.app.extensions["parkflow"].db.read() as s:
        assert trail.verify(s).ok


def test_enterprise_admission(api):
    iid = api.start("hj_submit", "enterprise_admission", "haijiang", demo.ADMISSION)
    assert api.get("hj_submit", iid)["current_step"] == "industry_fit"
    api.step("tc_review", iid, data=demo.ADMISSION_MATCH, opinion="补链项目，匹配新材料产业园")
    inst = api.get("tc_review", iid)
    assert inst["current_step"] == "offer" and inst["data"]["owner_group"] == "haijiang"
    api.step("hj_ops", iid, data={"offered_units": "A1-101"}, expect=422)  # no such unit
    api.step("hj_ops", iid, data=demo.ADMISSION_OFFER)
    body = api.step("hj_head", iid, opinion="同意入驻")
    assert body["result"]["status"] == "approved" and body["instance"]["current_step"] == "admitted"
    with api.app.extensions["parkflow"].db.read() as s:
        assert s.get(ProcessInstance, iid).subject_ref == "ZH-P01"
        status, code = s.execute(select(Unit.status, Enterprise.credit_code).join(Enterprise, Enterprise.id == Unit.tenant_id)
                                 .join(Building).join(Park).where(Park.code == "ZH-P01", Unit.number == "8-102")).one()
    assert (status, code) == ("let", demo.ADMISSION["credit_code"])
    check_trail(api)


def test_investment_review_through_the_collective_decision_to_the_equity_exit(api):
    iid = api.start("zt_submit", "investment_review", "zhentou", demo.INVESTMENT_ZHENTOU)
    api.step("tc_review", iid, opinion="符合新材料产业链招引方向")
    api.step("jx_review", iid, opinion="符合产业政策")
    body = api.step("fg_review", iid, opinion="符合总体规划")
    assert body["instance"]["current_step"] == "collective"  # 6,000 万元 equity: 三重一大 first
    api.step("zt_head", iid, data={"meeting_date": "2026-03-10", "attendees": "周国华等7人",
                                   "resolution_file": "党委会决议.pdf"}, opinion="集体决策同意")
    api.step("gz_review", iid, opinion="决策程序合规")
    body = api.step("gz_review2", iid, opinion="同意")  # quorum: 2 of the 3 committee members
    assert body["instance"]["current_step"] == "invest_execution"
    api.step("zt_ops", iid, "invested", data={"paid_in_wan": "6000", "closing_date": "2026-04-01"})
    api.step("tc_review2", iid, step="post_review", data={"actual_output_wan": "26000"})  # not tc_review: one person, one step
    body = api.step("gz_review3", iid, step="post_review")
    assert body["instance"]["current_step"] == "exit_decision"
    body = api.step("gz_head", iid, "exit", data={"exit_method": "股权回购", "exit_amount_wan": "7800"},
                    opinion="培育期满，按约回购退出")
    assert body["result"]["status"] == "approved" and body["instance"]["current_step"] == "exited"
    assert api.get("zt_submit", iid)["subject_ref"] == "ZH-P01"  # 新材料产业园, named in the form
    check_trail(api)


def test_park_project_lifecycle_from_planning_to_operation(api):
    iid = api.start("zt_submit", "park_project_lifecycle", "zhentou", demo.LIFECYCLE_P07)
    inst = api.get("zt_submit", iid)
    assert inst["current_step"] == "planning"
    api.step("jx_review", iid, step="planning", opinion="产业定位符合差异化指引")   # 会签: both reviewers
    api.step("jx_review2", iid, step="planning", opinion="同意")
    api.step("fg_review", iid, step="planning", opinion="符合总体规划")
    body = api.step("tc_review", iid, step="planning", opinion="招商方案可行")
    assert body["instance"]["current_step"] == "land_transfer"
    api.step("zt_head", iid, "land_acquired", data={"land_contract_date": "2026-05-20", "land_parcel_no": "ZH2026-07"})
    api.step("zt_head", iid, "started", data={"start_date": "2026-07-01"})
    api.step("zt_head", iid, "completed", data={"completion_date": "2028-06-30", "split_sale_planned": False})
    body = api.step("jx_review", iid, opinion="竣工验收合格，产业准入核验通过")
    assert body["instance"]["current_step"] == "handover"
    body = api.step("hj_ops", iid, data={"operation_start_date": "2028-09-01"}, opinion="海江公司运营平台接收")
    assert body["result"]["status"] == "approved" and body["instance"]["current_step"] == "operating"
    assert api.get("zt_submit", iid)["subject_ref"] == "ZH-P07"
    check_trail(api)


def test_rectification_opened_by_a_red_warning_and_closed_by_econ_it(api, clock):
    svc = api.app.extensions["parkflow"]
    with svc.db.write() as s:  # 浦成小微园 (镇投, opened 2023) falls to 45 % let and 7 万元/亩
        row = s.scalar(select(ParkIndicator).join(Park).where(Park.code == "ZH-P03", ParkIndicator.period == "2026Q3"))
        row.occupancy_rate, row.tax_wan = 0.45, 150
        evaluate_period(s, svc.workflow, "2026Q3", clock(), None)
        iid = s.scalar(select(ProcessInstance.id).where(ProcessInstance.process_key == RECTIFICATION))
    api.step("zt_head", iid, "plan_submitted", data={"plan_summary": "二层以上分割出租，引入小微企业",
                                                     "target_occupancy_pct": "75", "target_tax_per_mu_wan": "15"})
    api.step("jx_review", iid, step="review")
    body = api.step("gz_review", iid, step="review")
    assert body["instance"]["current_step"] == "follow_up"
    api.step("zt_ops", iid, "progress_reported", data={"progress_note": "新引入企业6家",
                                                       "current_occupancy_pct": "78", "current_tax_per_mu_wan": "16"})
    body = api.step("jx_head", iid, "recovered", opinion="指标恢复，销号")
    assert body["result"]["status"] == "approved"
    with svc.db.read() as s:
        warning = s.scalar(select(ParkWarning).where(ParkWarning.rectification_instance_id == iid))
    assert (warning.status, warning.closed_reason) == ("closed", "recovered")
    check_trail(api)


def to_collective(api):
    iid = api.start("zt_submit", "investment_review", "zhentou", demo.INVESTMENT_ZHENTOU)
    api.step("tc_review", iid)
    api.step("jx_review", iid)
    api.step("fg_review", iid)
    return iid


def test_the_collective_decision_needs_its_meeting_date_and_attendees(api):
    iid = to_collective(api)
    refused = api.step("zt_head", iid, data={"resolution_file": "决议.pdf"}, opinion="同意", expect=422)
    assert set(refused["details"]["fields"]) == {"meeting_date", "attendees"}
    refused = api.step("zt_head", iid, data={"meeting_date": "2026-03-10"}, opinion="同意", expect=422)
    assert set(refused["details"]["fields"]) == {"attendees"}
    assert api.get("zt_head", iid)["current_step"] == "collective"
    # returning for more material does not need a meeting record
    body = api.step("zt_head", iid, "return", target="proposal", opinion="请补充尽调报告")
    assert body["instance"]["current_step"] == "proposal"


def test_the_lifecycle_goes_on_when_its_investment_is_decided_not_when_the_review_ends(api):
    data = {**demo.LIFECYCLE_P07, "soe_equity": True, "soe_investment_type": "股权投资",
            "soe_equity_wan": "20000", "investment_proposal_file": "国资入股方案.pdf"}
    parent = api.start("zt_submit", "park_project_lifecycle", "zhentou", data)
    for who in ("jx_review", "jx_review2", "fg_review", "tc_review"):
        api.step(who, parent, step="planning")
    assert api.get("zt_submit", parent)["current_step"] == "investment"
    with api.app.extensions["parkflow"].db.read() as s:
        child = s.scalar(select(ProcessInstance.id).where(ProcessInstance.parent_id == parent))
    assert api.get("zt_submit", child)["subject_ref"] == "ZH-P07"  # the review is about the same park
    api.step("tc_review", child)
    api.step("jx_review", child)
    api.step("fg_review", child)
    api.step("zt_head", child, data={"meeting_date": "2026-03-10", "attendees": "周国华等7人"}, opinion="集体决策同意")
    api.step("gz_review", child, opinion="合规")
    assert api.get("zt_submit", parent)["current_step"] == "investment"  # SASAC has not decided yet
    api.step("gz_review2", child, opinion="合规")
    child_now, parent_now = api.get("zt_submit", child), api.get("zt_submit", parent)
    assert (child_now["status"], child_now["current_step"]) == ("running", "invest_execution")
    assert (parent_now["status"], parent_now["current_step"]) == ("running", "land_transfer")
    assert parent_now["trail"][-1]["action"] == "subprocess_resume"
    # both go on independently: the land is bought while the money is paid in
    api.step("zt_head", parent, "land_acquired", data={"land_contract_date": "2026-05-20"})
    api.step("zt_ops", child, "invested", data={"paid_in_wan": "20000"})
    assert api.get("zt_submit", child)["current_step"] == "post_review"
    assert api.get("zt_submit", parent)["current_step"] == "construction_start"
    check_trail(api)
