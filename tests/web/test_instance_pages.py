"""The instance page: what it shows, who sees it, and every action posted from it."""
from __future__ import annotations

from tests.web.helpers import DATA, act, as_user, open_tasks, start, text
from workflow_app.engine.runtime import Request
from workflow_app.models import ProcessInstance


def instance(app, iid: int) -> ProcessInstance:
    with app.extensions["parkflow"].db.read() as s:
        return s.get(ProcessInstance, iid)


def post(client, iid: int, **data):
    return client.post(f"/instances/{iid}/act", data=data,
                       headers={"Referer": f"http://localhost/instances/{iid}"})


def at_joint(app, people) -> int:
    """An application approved by 投促中心, now at the parallel step (econ queue, plan1+plan2 会签)."""
    iid = start(app, people)
    [task] = open_tasks(app, iid)
    act(app, people, "promo1", iid, Request("approve", task.id, opinion="符合产业方向"))
    return iid


def test_a_stranger_gets_404(app, people):
    iid = start(app, people)
    stranger = as_user(app, "haijiang")
    response = stranger.get(f"/instances/{iid}")
    assert response.status_code == 404 and DATA["project_name"] not in text(response)
    [task] = open_tasks(app, iid)
    assert post(stranger, iid, action="comment", opinion="看看").status_code == 404
    assert post(stranger, iid, action="claim", task_id=task.id).status_code == 404
    assert instance(app, iid).trail_count == 1


def test_page_shows_data_who_must_act_diagram_and_timeline(app, people):
    iid = at_joint(app, people)
    html = text(as_user(app, "submitter").get(f"/instances/{iid}"))
    assert "6,000 万元" in html and "新材料" in html                   # form data, money in 万元
    assert "办理中" in html and "并联审查" in html                      # status, current step
    assert "区经信局 · 审核人" in html and "待认领" in html              # the queue branch
    assert "plan1" in html and "plan2" in html                          # the 会签 people by name
    assert "class s_joint,s_joint__industry,s_joint__plan current" in html  # diagram: current step
    assert "class s_draft,s_assess visited" in html
    assert "符合产业方向" in html and "区投资促进中心 · 审核人" in html  # timeline opinion + capacity
    assert "投促中心评估 → 并联审查" in html


def test_submitter_has_no_approve_button(app, people):
    iid = at_joint(app, people)
    mine = text(as_user(app, "submitter").get(f"/instances/{iid}"))
    assert 'value="approve"' not in mine and 'value="reject"' not in mine
    assert "不能审批自己的申请" in mine
    assert 'value="urge"' in mine                                         # 催办 is the submitter's
    theirs = text(as_user(app, "plan1").get(f"/instances/{iid}"))
    assert 'value="approve"' in theirs and 'value="reject"' in theirs and 'value="return"' in theirs
    assert 'value="urge"' not in theirs
    assert '<option value="draft">填报</option>' in theirs and '<option value="assess">投促中心评估</option>' in theirs


def test_claim_then_approve_from_the_page(app, people):
    iid = start(app, people)
    [task] = open_tasks(app, iid)
    client = as_user(app, "promo1")
    assert 'value="claim"' in text(client.get(f"/instances/{iid}"))
    assert 'value="approve"' not in text(client.get(f"/instances/{iid}"))
    post(client, iid, action="claim", task_id=task.id)
    page = text(client.get(f"/instances/{iid}"))
    assert 'value="approve"' in page and "已认领" in page
    response = post(client, iid, action="approve", task_id=task.id, opinion="同意立项", **{"f-note": "已核实"})
    assert response.status_code == 302
    page = text(client.get(response.headers["Location"]))
    assert "已同意" in page and "同意立项" in page
    inst = instance(app, iid)
    assert inst.current_step == "joint" and inst.form_data["note"] == "已核实"  # editable at assess
    assert "修改了：备注" in page


def test_reject_needs_an_opinion(app, people):
    iid = at_joint(app, people)
    econ = as_user(app, "econ")
    [task] = [t for t in open_tasks(app, iid) if t.branch == "industry"]
    response = post(econ, iid, action="reject", task_id=task.id)
    assert response.status_code == 302
    assert "请填写审批意见（拒绝需要填写意见）" in text(econ.get(response.headers["Location"]))
    assert instance(app, iid).status == "running"
    post(econ, iid, action="reject", task_id=task.id, opinion="不符合产业政策")
    assert instance(app, iid).status == "rejected"
    page = text(econ.get(f"/instances/{iid}"))
    assert "未通过" in page and "不符合产业政策" in page and 'value="approve"' not in page


def test_return_then_resubmit_with_field_errors(app, people):
    iid = at_joint(app, people)
    plan1 = as_user(app, "plan1")
    task = next(t for t in open_tasks(app, iid) if t.assignee_id == people["plan1"])
    post(plan1, iid, action="return", task_id=task.id, target="draft", opinion="请补充规划图")
    inst = instance(app, iid)
    assert inst.current_step == "draft" and inst.status == "running"

    submitter = as_user(app, "submitter")
    page = text(submitter.get(f"/instances/{iid}"))
    assert "重新提交" in page and 'name="f-project_name"' in page and "请补充规划图" in page
    [resubmit] = open_tasks(app, iid)
    response = post(submitter, iid, action="submit", task_id=resubmit.id, **{
        "f-project_name": "新材料中试基地（修改）", "f-investment_wan": "六千", "f-industry": "新材料"})
    assert response.status_code == 422
    html = text(response)
    assert "请输入数字" in html and 'value="六千"' in html and instance(app, iid).current_step == "draft"
    post(submitter, iid, action="submit", task_id=resubmit.id, **{
        "f-project_name": "新材料中试基地（修改）", "f-investment_wan": "6500", "f-industry": "新材料"})
    inst = instance(app, iid)
    assert inst.current_step == "assess" and inst.title and inst.form_data["investment_wan"] == "6500"


def test_withdraw_by_the_submitter(app, people):
    iid = start(app, people)
    submitter = as_user(app, "submitter")
    assert 'value="withdraw"' in text(submitter.get(f"/instances/{iid}"))
    assert 'value="withdraw"' not in text(as_user(app, "promo1").get(f"/instances/{iid}"))
    response = post(submitter, iid, action="withdraw", opinion="方案调整")
    assert response.status_code == 302
    assert instance(app, iid).status == "withdrawn"
    page = text(submitter.get(f"/instances/{iid}"))
    assert "已撤回" in page and 'value="withdraw"' not in page


def test_withdraw_is_not_offered_once_the_round_acted(app, people):
    iid = at_joint(app, people)
    econ_task = next(t for t in open_tasks(app, iid) if t.branch == "industry")
    act(app, people, "econ", iid, Request("approve", econ_task.id))
    submitter = as_user(app, "submitter")
    assert 'value="withdraw"' not in text(submitter.get(f"/instances/{iid}"))
    response = post(submitter, iid, action="withdraw")  # a stale page: the service refuses
    assert "操作未生效：当前环节已有人处理，不能撤回" in text(submitter.get(response.headers["Location"]))
    assert instance(app, iid).status == "running"


def test_double_decision_shows_the_conflict_message(app, people):
    iid = start(app, people)
    [task] = open_tasks(app, iid)
    promo1 = as_user(app, "promo1")
    post(promo1, iid, action="approve", task_id=task.id)
    response = post(promo1, iid, action="approve", task_id=task.id)  # a double click, a second tab
    assert response.status_code == 302 and response.headers["Location"].endswith(f"/instances/{iid}")
    page = text(promo1.get(response.headers["Location"]))
    assert "操作未生效：" in page and "以下是最新状态" in page
    assert instance(app, iid).trail_count == 2  # start + the one approval


def test_the_slower_of_two_deciders_sees_the_latest_state(app, people):
    iid = start(app, people, key="quick_check", data={"subject": "入驻资料"})  # 或签: promo1 or promo2
    tasks = {t.assignee_id: t.id for t in open_tasks(app, iid)}
    promo1, promo2 = as_user(app, "promo1"), as_user(app, "promo2")
    assert 'value="approve"' in text(promo2.get(f"/instances/{iid}"))  # promo2 opens the page ...
    post(promo1, iid, action="approve", task_id=tasks[people["promo1"]])  # ... promo1 is quicker
    response = post(promo2, iid, action="reject", task_id=tasks[people["promo2"]], opinion="不同意")
    page = text(promo2.get(response.headers["Location"]))
    assert "操作未生效：此申请已结束（已通过）。以下是最新状态。" in page
    assert instance(app, iid).status == "approved"


def test_transfer_hands_the_task_over(app, people):
    iid = start(app, people)
    [task] = open_tasks(app, iid)
    act(app, people, "promo1", iid, Request("claim", task.id))
    promo1 = as_user(app, "promo1")
    page = text(promo1.get(f"/instances/{iid}"))
    assert "转办" in page and f'<option value="{people["promo2"]}">promo2（区投资促进中心）</option>' in page
    assert f'<option value="{people["submitter"]}">' not in page  # never the submitter
    response = post(promo1, iid, action="transfer", task_id=task.id, user=people["promo2"])
    assert response.headers["Location"].endswith("/")  # promo1 no longer sees it
    assert open_tasks(app, iid)[0].assignee_id == people["promo2"]
    page = text(as_user(app, "promo2").get(f"/instances/{iid}"))
    assert 'value="approve"' in page and "转办给 promo2" in page


def test_comment_and_cc(app, people):
    iid = start(app, people)
    submitter = as_user(app, "submitter")
    post(submitter, iid, action="comment", opinion="补充材料已上传")
    post(submitter, iid, action="cc", users=[people["econ"], people["plan1"]], opinion="请关注")
    page = text(submitter.get(f"/instances/{iid}"))
    assert "补充材料已上传" in page and "抄送：econ、plan1" in page
    assert as_user(app, "econ").get(f"/instances/{iid}").status_code == 200


def test_english_action_panel(app, people):
    iid = at_joint(app, people)
    client = as_user(app, "plan1")
    client.post("/locale/en")
    page = text(client.get(f"/instances/{iid}"))
    assert ">Approve</button>" in page and ">Reject</button>" in page and "In progress" in page
    assert "flowchart TD" in page


def test_delegate_then_resolve(app, people):
    iid = start(app, people)
    [task] = open_tasks(app, iid)
    act(app, people, "promo1", iid, Request("claim", task.id))
    promo1, promo2 = as_user(app, "promo1"), as_user(app, "promo2")
    post(promo1, iid, action="delegate", task_id=task.id, user=people["promo2"], opinion="请先核实用地")
    page = text(promo2.get(f"/instances/{iid}"))
    assert "委派给您的意见" in page and 'value="resolve"' in page and 'value="approve"' not in page
    assert 'value="approve"' not in text(promo1.get(f"/instances/{iid}"))  # waits for the delegate
    post(promo2, iid, action="resolve", task_id=task.id, opinion="用地已核实")
    page = text(promo1.get(f"/instances/{iid}"))
    assert 'value="approve"' in page and "用地已核实" in page and "意见交回 promo1" in page


def test_add_and_remove_a_signer(app, people):
    iid = start(app, people)
    [task] = open_tasks(app, iid)
    act(app, people, "promo1", iid, Request("claim", task.id))
    promo1 = as_user(app, "promo1")
    post(promo1, iid, action="add_signer", task_id=task.id, user=people["econ"], position="alongside")
    added = next(t for t in open_tasks(app, iid) if t.assignee_id == people["econ"])
    page = text(promo1.get(f"/instances/{iid}"))
    assert "已加签" in page and 'value="remove_signer"' in page and "econ（并加签）" in page
    assert 'value="approve"' in text(as_user(app, "econ").get(f"/instances/{iid}"))
    post(promo1, iid, action="remove_signer", task_id=added.id)
    assert all(t.assignee_id != people["econ"] for t in open_tasks(app, iid))
    assert "已减签" in text(promo1.get(f"/instances/{iid}"))


def test_unknown_action_is_refused(app, people):
    iid = start(app, people)
    client = as_user(app, "submitter")
    response = post(client, iid, action="void", opinion="x")
    assert "未知操作" in text(client.get(response.headers["Location"]))
    assert instance(app, iid).status == "running"


def test_losing_a_claim_race_goes_back_to_the_page_with_a_conflict(app, people):
    iid = start(app, people)
    [task] = open_tasks(app, iid)
    promo1, promo2 = as_user(app, "promo1"), as_user(app, "promo2")
    assert "认领" in text(promo2.get("/?tab=queue"))            # promo2 sees it in the queue ...
    post(promo1, iid, action="claim", task_id=task.id)             # ... promo1 is quicker
    response = promo2.post(f"/instances/{iid}/act", data={"action": "claim", "task_id": task.id},
                           headers={"Referer": "http://localhost/?tab=queue"})
    assert response.status_code == 302 and response.headers["Location"] == "http://localhost/?tab=queue"
    page = text(promo2.get("/?tab=queue"))
    assert "操作未生效：该任务已被他人认领。以下是最新状态。" in page
    assert open_tasks(app, iid)[0].assignee_id == people["promo1"]
    # a foreign referrer is not followed
    response = promo2.post(f"/instances/{iid}/act", data={"action": "claim", "task_id": task.id},
                           headers={"Referer": "https://evil.example/"})
    assert response.status_code == 302 and "evil" not in response.headers["Location"]


def _last_event(app, iid):
    from workflow_app.models import TrailEvent
    svc = app.extensions["parkflow"]
    with svc.db.read() as s:
        e = s.query(TrailEvent).filter_by(instance_id=iid).order_by(TrailEvent.seq.desc()).first()
        return e.action, e.actor_department, e.actor_role


def test_the_capacity_chosen_when_acting_is_recorded(app, people):
    """sasac_xingyu is 区国资中心 head and 星寓 reviewer: a comment is recorded in the capacity
    picked on its form; a decision in the capacity its task names; a forged choice is ignored."""
    iid = start(app, people)
    client = as_user(app, "sasac_xingyu")
    act(app, people, "submitter", iid, Request("cc", users=(people["sasac_xingyu"],)))
    page = text(client.get(f"/instances/{iid}"))
    assert 'name="capacity"' in page and 'value="xingyu:reviewer"' in page
    post(client, iid, action="comment", opinion="以星寓身份补充说明", capacity="xingyu:reviewer")
    assert _last_event(app, iid) == ("comment", "xingyu", "reviewer")
    post(client, iid, action="comment", opinion="以国资中心身份", capacity="sasac:head")
    assert _last_event(app, iid) == ("comment", "sasac", "head")
    post(client, iid, action="comment", opinion="伪造身份", capacity="econ_it:reviewer")  # not held
    assert _last_event(app, iid)[1:] in (("sasac", "head"), ("xingyu", "reviewer"))  # the header's


def test_demo_has_someone_in_two_departments():
    from workflow_app.demo import PEOPLE
    multi = [p for p in PEOPLE if len({d for d, _r in p.memberships}) > 1]
    assert multi and multi[0].username == "fg_jx"
