"""One park project through the whole lifecycle, driven in headless Chromium as the people would.

陈志远 of 镇投控股集团 applies for 招宝山智能制造小微园二期 (a planned park from the seed: 招宝山街道,
智能制造, 142 亩, 189,000 m², 85,000 万元, operated by 海江公司, no SOE equity). The planning review
runs in parallel (并联): 区经信局's two reviewers both sign (会签), 区投资促进中心 approves (或签),
区发改局's reviewer claims the queue task and returns it to the submitter with everything to fix
at once (一次性告知). He fills in the missing plot ratio and resubmits; the whole group reviews
again and approves. The owner group's head records the land, construction start and completion
milestones, 经信局 accepts the completed park, the head submits a split-sale plan, 区国资中心
(SASAC) and 经信局 approve it in parallel, and 海江公司's operations officer takes the park over:
已投入运营. Finally the compliance reviewer 秦审 finds the application, opens it read-only, verifies
the trail and downloads the decisions as XLSX.

Screenshots of the main pages go to docs/screenshots/ (see conftest.py).
"""
from __future__ import annotations

import re

import pytest

from workflow_app.services import trail

pytestmark = pytest.mark.browser

PROCESS = "park_project_lifecycle"
PROCESS_TITLE = "国资小微园区项目全生命周期"
PARK = "招宝山智能制造小微园二期"
CHAIN = ("以智能装备整机为龙头，集聚伺服电机、精密减速器等核心零部件和工业软件企业，"
         "形成“整机—部件—软件”上下游协同；与蛟川街道新材料园区错位发展，不重复建设。")
APPLICATION = {
    "park_name": PARK, "owner_group": "zhentou", "location": "招宝山街道", "lead_industry": "智能制造",
    "chain_description": CHAIN, "land_mu": "142", "floor_area_m2": "189000",
    "factory_area_m2": "176000", "planned_investment_wan": "85000", "target_enterprises": "120",
    "target_jobs": "3500", "target_tax_wan": "9000",
    "design_file": "招宝山二期规划设计方案-2026-02.pdf", "attraction_plan_file": "招宝山二期招商方案-2026-02.pdf",
    "operator_dept": "haijiang", "soe_equity": False,
}
RETURN_OPINION = ("一次性告知：1. 请补填容积率（总体规划控制指标不高于2.0）；"
                  "2. 产业链说明中请写明与周边智能制造园区的差异。以上补正后重新提交。")
CHAIN_FIXED = CHAIN + "周边3公里内无同类智能制造小微园。"
SASAC_OPINION = "销售均价不低于评估价，受让企业5年内限制转让，符合国有资产交易规定，同意。"

PLANNING = "规划设计并联审查"
ECON_BRANCH = "经信局：产业定位（差异化发展指引）"
INVEST_BRANCH = "投促中心：招商方案"


def test_park_project_from_application_to_operation_and_compliance(live, people):
    from playwright.sync_api import expect

    clock = live.clock

    # ---------------------------------------------------------------- 1. 陈志远 applies
    login = people.anonymous()
    login.go("/login")
    expect(login.page.locator(".auth-card h1")).to_have_text("登录")
    login.snap("01-login")

    clock.set("2026-03-02 09:00")
    zt = people("zt_submit")
    expect(zt.page.locator(".empty")).to_contain_text("当前没有待办")
    with zt.page.expect_navigation():
        zt.page.locator(".mainnav").get_by_role("link", name="发起申请").click()
    card = zt.page.locator(".process-card", has_text=PROCESS_TITLE)
    with zt.page.expect_navigation():
        card.get_by_role("link", name="发起").click()
    expect(zt.page.locator("h1")).to_have_text(PROCESS_TITLE)
    expect(zt.page.locator("#department")).to_have_value("zhentou")
    zt.fill_fields(zt.page.locator("form.form-card"), APPLICATION)
    zt.snap("02-start-form")
    zt.submit(zt.page.get_by_role("button", name="提交", exact=True))
    zt.flash("已提交，等待审批")
    iid = int(re.search(r"/instances/(\d+)$", zt.page.url).group(1))
    expect(zt.page.locator("h1")).to_contain_text(PARK)
    expect(zt.page.locator("h1 .badge")).to_have_text("办理中")
    expect(zt.page.locator(".now-step")).to_have_text(PLANNING)
    expect(zt.page.locator(".data-grid")).to_contain_text("142 亩")
    expect(zt.page.locator(".data-grid")).to_contain_text("85,000 万元")
    waiting = zt.waiting()
    assert len(waiting) == 5, waiting
    for who in ("王建国", "刘敏", "区发改局 · 审核人 待认领", "赵磊", "钱丽"):
        assert any(who in w for w in waiting), (who, waiting)
    # the submitter cannot decide, but may still withdraw until someone acts
    expect(zt.page.locator("form.decide-form")).to_have_count(0)
    expect(zt.page.locator(".notice")).to_contain_text("不能审批自己的申请")
    expect(zt.page.get_by_role("button", name="撤回")).to_be_visible()

    # ---------------------------------------------------------------- 2. parallel planning review
    clock.set("2026-03-03 10:05")
    jx = people("jx_review")
    jx.inbox()
    row = jx.page.locator(".inbox-item", has_text=PARK)
    expect(row).to_contain_text(f"当前环节：{PLANNING}")
    expect(row).to_contain_text("发起人：陈志远")
    jx.snap("03-inbox-todo")
    jx.open_from_inbox(PARK)
    expect(jx.decide_card().locator("h2")).to_contain_text(ECON_BRANCH)
    jx.decide("approve", opinion="产业定位符合区级小微园差异化发展指引，与周边园区无同质化，同意。")
    jx.flash("已同意")
    waiting = jx.waiting()
    assert not any("王建国" in w for w in waiting) and any("刘敏" in w for w in waiting), waiting

    clock.set("2026-03-03 14:40")
    jx2 = people("jx_review2")
    jx2.open_from_inbox(PARK)
    jx2.decide("approve", opinion="会签同意：智能制造方向明确，上下游配套可行。")
    jx2.flash("已同意")

    clock.set("2026-03-04 09:30")
    tc = people("tc_review")
    tc.open_from_inbox(PARK)
    expect(tc.decide_card().locator("h2")).to_contain_text(INVEST_BRANCH)
    tc.decide("approve", opinion="招商方案与园区建设同步规划，目标企业清单明确，同意。")
    tc.flash("已同意")
    # 或签: 赵磊 decided for the centre, so 钱丽 is no longer asked; only 发改局's queue is left
    assert tc.waiting() == ["发改局：总体规划符合性 区发改局 · 审核人 待认领"], tc.waiting()

    clock.set("2026-03-05 10:15")
    fg = people("fg_review")
    fg.inbox()
    expect(fg.page.locator(".empty")).to_contain_text("当前没有待办")  # a queue task, not yet his
    fg.inbox("queue")
    expect(fg.page.locator(".inbox-item", has_text=PARK)).to_contain_text("区发改局 · 审核人")
    fg.snap("12-inbox-queue")
    fg.claim_from_queue(PARK)
    expect(fg.page.locator(".now-card .waiting-list")).to_contain_text("李明")
    history = fg.timeline()
    assert [e.split(" ")[0] for e in history] == ["陈志远", "王建国", "刘敏", "赵磊", "李明"], history
    assert sum(" 同意 " in f" {e} " for e in history) == 3, history
    card = fg.decide_card()
    for label in ("同意", "拒绝", "退回"):
        expect(card.get_by_role("button", name=label, exact=True)).to_be_visible()
    fg.snap("04-instance-parallel")
    fg.return_to("draft", RETURN_OPINION)
    fg.flash("已退回")
    expect(fg.page.locator(".now-step")).to_have_text("项目立项申报")
    assert fg.waiting() == ["陈志远 已退回，待重新提交"], fg.waiting()
    returned = fg.timeline()[-1]
    assert returned.startswith("李明 区发改局 · 审核人 退回"), returned
    assert f"{PLANNING} → 项目立项申报" in returned and RETURN_OPINION in returned, returned

    # ---------------------------------------------------------------- 3. corrected and resubmitted
    clock.set("2026-03-06 09:20")
    zt.inbox()
    row = zt.page.locator(".inbox-item", has_text=PARK)
    expect(row).to_contain_text("已退回，待重新提交")
    expect(row).to_contain_text("当前环节：项目立项申报")
    zt.open_from_inbox(PARK)
    card = zt.decide_card()
    expect(card.locator("h2")).to_have_text("重新提交")
    expect(card.locator("#f-land_mu")).to_have_value("142")      # what he sent is kept
    expect(zt.page.locator(".timeline")).to_contain_text(RETURN_OPINION)
    zt.snap("05-returned")
    zt.decide("submit", fields={"plot_ratio": "2.0", "chain_description": CHAIN_FIXED},
              opinion="已按一次性告知补填容积率2.0，并补充与周边园区的差异说明。")
    zt.flash("已重新提交")
    expect(zt.page.locator(".now-step")).to_have_text(PLANNING)
    expect(zt.page.locator(".data-grid")).to_contain_text("容积率")
    resubmitted = zt.timeline()[-1]
    assert resubmitted.startswith("陈志远 镇投控股集团 · 项目填报人 提交"), resubmitted
    assert "修改了：" in resubmitted and "容积率" in resubmitted, resubmitted
    waiting = zt.waiting()
    assert len(waiting) == 5, waiting  # a new round: every branch is asked again
    zt.snap("06-resubmit")

    clock.set("2026-03-09 10:00")
    jx.open_from_inbox(PARK)
    jx.decide("approve", opinion="补正后产业定位清晰，同意。")
    clock.set("2026-03-09 15:10")
    jx2.open_from_inbox(PARK)
    jx2.decide("approve", opinion="同意。")
    clock.set("2026-03-10 09:00")
    tc2 = people("tc_review2")                     # 或签: this time the other officer decides
    tc2.open_from_inbox(PARK)
    tc2.decide("approve", opinion="招商方案无变化，同意。")
    tc2.flash("已同意")
    clock.set("2026-03-10 11:30")
    fg.claim_from_queue(PARK)
    fg.decide("approve", opinion="容积率符合小微园总体规划控制指标，同意。")
    fg.flash("已同意")
    expect(fg.page.locator(".now-step")).to_have_text("土地出让")
    assert fg.waiting() == ["镇投控股集团 · 负责人 待认领"], fg.waiting()

    # ---------------------------------------------------------------- 4. milestones of the owner group
    clock.set("2026-04-22 10:00")
    head = people("zt_head")
    head.claim_from_queue(PARK)
    head.snap("13-milestone-land")
    head.decide("land_acquired", fields={"land_parcel_no": "ZH2026-07", "land_price_wan": "12780",
                                         "land_contract_date": "2026-04-20"},
                opinion="地块已摘牌，出让合同已于4月20日签订。")
    head.flash("土地已摘牌（合同已签）")
    expect(head.page.locator(".now-step")).to_have_text("开工建设")

    clock.set("2026-05-12 09:30")
    head.claim_from_queue(PARK)
    head.decide("started", fields={"construction_permit_no": "330211202605110101",
                                   "start_date": "2026-05-11"})
    expect(head.page.locator(".now-step")).to_have_text("在建（形象进度报送）")

    clock.set("2027-09-30 16:00")
    head.claim_from_queue(PARK)
    head.decide("completed", fields={"progress_pct": "100", "completion_date": "2027-09-28",
                                     "split_sale_planned": True},
                opinion="主体及配套工程已竣工，拟对部分厂房分割销售。")
    expect(head.page.locator(".now-step")).to_have_text("竣工验收及产业准入核验")
    expect(head.page.locator(".data-grid")).to_contain_text("2027年9月28日")

    clock.set("2027-10-20 10:00")
    jx.claim_from_queue(PARK)
    expect(jx.decide_card().get_by_role("button", name="退回", exact=True)).to_be_visible()
    jx.decide("approve", opinion="竣工验收合格，入驻产业准入条件与规划一致，同意。")
    expect(jx.page.locator(".now-step")).to_have_text("编制分割销售方案")

    clock.set("2027-11-05 14:00")
    head.claim_from_queue(PARK)
    head.decide("plan_submitted", fields={
        "sale_area_m2": "88000", "sale_units": "64", "sale_price_yuan_m2": "4300",
        "buyer_criteria": "智能制造及上下游企业；亩均税收不低于30万元；须在园区内实际生产经营。",
        "resale_lock_years": "5", "sale_plan_file": "招宝山二期分割销售方案-2027-11.pdf"})
    expect(head.page.locator(".now-step")).to_have_text("分割销售方案审批")
    waiting = head.waiting()
    assert len(waiting) == 2 and any("区国资中心 · 审核人" in w for w in waiting), waiting

    # ---------------------------------------------------------------- the split sale: SASAC approves
    clock.set("2027-11-12 09:45")
    gz = people("gz_review")
    gz.claim_from_queue(PARK)
    expect(gz.decide_card().locator("h2")).to_contain_text("国资中心：销售价格与转让限制")
    expect(gz.page.locator(".data-grid")).to_contain_text("4,300 元/m²")
    gz.decide("approve", opinion=SASAC_OPINION, before=lambda: gz.snap("07-sasac-approve"))
    gz.flash("已同意")
    waiting = gz.waiting()
    assert len(waiting) == 1 and "区经信局 · 审核人" in waiting[0], waiting
    assert gz.timeline()[-1].startswith("蒋文 区国资中心 · 审核人 同意"), gz.timeline()[-1]

    clock.set("2027-11-13 10:20")
    jx2.claim_from_queue(PARK)
    jx2.decide("approve", opinion="受让企业准入条件与园区产业定位一致，同意。")
    expect(jx2.page.locator(".now-step")).to_have_text("运营服务移交")

    clock.set("2027-12-01 09:00")
    ops = people("hj_ops")
    ops.claim_from_queue(PARK)
    ops.decide("approve", fields={"operation_start_date": "2027-12-01",
                                  "service_items": "政策申报、金融对接、人才招聘、物业与安全生产管理"},
               opinion="已完成运营服务移交，12月1日起由海江公司专业化运营。")
    ops.flash("已同意")

    clock.set("2027-12-01 10:00")
    zt.inbox("started")
    expect(zt.page.locator(".inbox-item", has_text=PARK)).to_contain_text("已通过")
    zt.open_from_inbox(PARK, tab="started")
    expect(zt.page.locator("h1 .badge")).to_have_text("已通过")
    expect(zt.page.locator(".now-step")).to_contain_text("已通过")
    expect(zt.page.locator("section.action-card")).to_have_count(0)
    last = zt.timeline()[-1]
    assert last.startswith("郑运 海江公司 · 运营专员 同意"), last
    assert "运营服务移交 → 已投入运营" in last and "流程结束：已通过" in last, last
    zt.snap("08-approved")

    # ---------------------------------------------------------------- 5. the compliance reviewer
    clock.set("2027-12-15 14:00")
    qs = people("auditor")
    with qs.page.expect_navigation():
        qs.page.locator(".mainnav").get_by_role("link", name="合规审查").click()
    qs.page.locator("#process_key").select_option(PROCESS)
    with qs.page.expect_navigation():
        qs.page.get_by_role("button", name="查询").click()
    rows = qs.page.locator("table.cx-table tbody tr")
    expect(rows.first).to_be_visible()
    texts = [re.sub(r"\s+", " ", t) for t in rows.all_inner_texts()]
    assert all(f"#{iid} {PARK}" in t for t in texts), texts
    assert any("退回" in t and "李明" in t and "一次性告知" in t for t in texts), texts
    assert any("同意" in t and "蒋文" in t and "区国资中心" in t for t in texts), texts
    qs.snap("09-compliance-search")

    with qs.page.expect_navigation():
        rows.first.get_by_role("link", name=f"#{iid} {PARK}").click()
    expect(qs.page.locator("h1")).to_contain_text("只读")
    expect(qs.page.locator(".cx-verdict.cx-ok")).to_contain_text("本申请的审批记录链核验通过")
    expect(qs.page.locator("form[action$='/act']")).to_have_count(0)   # nothing to act on
    expect(qs.page.locator(".cx-trail")).to_contain_text(SASAC_OPINION)
    qs.snap("11-compliance-instance")

    with qs.page.expect_navigation():
        qs.page.locator("a.back").click()
    qs.submit(qs.page.get_by_role("button", name="核验审批记录链"))
    expect(qs.page.locator(".cx-verdict.cx-ok h2")).to_have_text("核验通过")
    qs.snap("10-compliance-verify")

    qs.go(f"/compliance/?process_key={PROCESS}")
    with qs.page.expect_download() as download:
        qs.page.get_by_role("link", name="导出 Excel").click()
    _check_xlsx(download.value, iid)

    # ---------------------------------------------------------------- and in the database
    svc = live.services
    with svc.db.read() as s:
        result = trail.verify(s)
    assert result.ok, result
    assert result.chains >= 1 and result.checked > 20, result


def _check_xlsx(download, iid: int) -> None:
    import tempfile
    from pathlib import Path

    from openpyxl import load_workbook

    assert download.suggested_filename.startswith("parkflow-decisions-")
    assert download.suggested_filename.endswith(".xlsx")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / download.suggested_filename
        download.save_as(path)
        book = load_workbook(path, read_only=True)
        try:
            sheet = book["决策记录"]
            header, *records = [list(r) for r in sheet.iter_rows(values_only=True)]
        finally:
            book.close()
    col = {name: i for i, name in enumerate(header)}
    rows = [{name: r[i] for name, i in col.items()} for r in records]
    assert rows and all(r["申请编号"] == iid and r["申请标题"] == PARK for r in rows), rows
    returns = [r for r in rows if r["动作"] == "退回"]
    assert len(returns) == 1, returns
    assert returns[0]["办理人"] == "李明" and returns[0]["部门"] == "区发改局"
    assert returns[0]["审批意见"] == RETURN_OPINION
    assert (returns[0]["来自环节"], returns[0]["进入环节"]) == ("planning", "draft")
    sasac = [r for r in rows if r["部门"] == "区国资中心" and r["动作"] == "同意"]
    assert len(sasac) == 1, sasac
    assert sasac[0]["办理人"] == "蒋文" and sasac[0]["审批意见"] == SASAC_OPINION
    assert all(len(r["事件哈希"]) == 64 for r in rows)
