"""Demo organisation and people for `make run` (refused in production: see cli.py).

The bodies are those of the reply to suggestion No. 61 (shared/DOMAIN.md); the people are
invented and marked so. Loading is idempotent: running `make run` again keeps existing data.
"""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select

from .container import Services
from .engine.runtime import Request
from .engine.schema import FieldType
from .models import Membership, ProcessInstance, Task, User
from .services import attachments
from .services.accounts import hash_password

DEMO_PASSWORD = "Zhenhai@2026"


@dataclass(frozen=True)
class Person:
    username: str
    name: str
    title: str
    memberships: tuple[tuple[str, str], ...] = ()
    admin_role: str | None = None


PEOPLE: tuple[Person, ...] = (
    Person("zt_submit", "陈志远", "镇投控股集团 项目填报人", (("zhentou", "submitter"),)),
    Person("zt_head", "周国华", "镇投控股集团 负责人", (("zhentou", "head"),)),
    Person("zt_ops", "沈运达", "镇投控股集团 运营专员", (("zhentou", "operator"),)),
    Person("xy_submit", "林晓", "星寓公司 项目填报人", (("xingyu", "submitter"),)),
    Person("hj_submit", "何海峰", "海江公司 项目填报人", (("haijiang", "submitter"),)),
    Person("hj_head", "徐江明", "海江公司 负责人", (("haijiang", "head"),)),
    Person("hj_ops", "郑运", "海江公司 运营专员", (("haijiang", "operator"),)),
    Person("jx_review", "王建国", "区经信局 审核人", (("econ_it", "reviewer"),)),
    Person("jx_review2", "刘敏", "区经信局 审核人", (("econ_it", "reviewer"),)),
    Person("jx_head", "张立新", "区经信局 负责人", (("econ_it", "head"),)),
    Person("fg_review", "李明", "区发改局 审核人", (("dev_reform", "reviewer"),)),
    Person("fg_review2", "吴芳", "区发改局 审核人", (("dev_reform", "reviewer"),)),
    Person("fg_head", "孙卫东", "区发改局 负责人", (("dev_reform", "head"),)),
    Person("tc_review", "赵磊", "区投资促进中心 审核人", (("invest_promo", "reviewer"),)),
    Person("tc_review2", "钱丽", "区投资促进中心 审核人", (("invest_promo", "reviewer"),)),
    Person("tc_head", "冯强", "区投资促进中心 负责人", (("invest_promo", "head"),)),
    Person("gz_review", "蒋文", "区国资中心 审核人", (("sasac", "reviewer"),)),
    Person("gz_review2", "韩雪", "区国资中心 审核人", (("sasac", "reviewer"),)),
    Person("gz_review3", "杨帆", "区国资中心 审核人", (("sasac", "reviewer"),)),
    Person("gz_head", "朱振华", "区国资中心 负责人", (("sasac", "head"),)),
    # Two units at once: a 区发改局 reviewer seconded (挂职) to 区经信局 as its head. Switches capacity
    # in the header; each action records the capacity it was taken in. Both are department-queue
    # roles in the demo processes, so no 会签 step waits for an extra signature.
    Person("fg_jx", "陶然", "区发改局 审核人 / 区经信局 负责人（挂职）", (("dev_reform", "reviewer"), ("econ_it", "head"))),
    Person("auditor", "秦审", "审计合规室 合规审查员", (("audit", "compliance"),)),
    Person("sysadmin", "系统管理员", "系统管理员（管理用户与流程定义）", admin_role="system"),
    Person("secadmin", "安全管理员", "安全管理员（角色、策略、锁定）", admin_role="security"),
    Person("auditadmin", "审计管理员", "审计管理员（只读安全与决策日志）", admin_role="audit"),
)


def load_people(session, now) -> int:
    existing = set(session.scalars(select(User.username)))
    created = 0
    password = hash_password(DEMO_PASSWORD)
    for rank, p in enumerate(PEOPLE):
        if p.username in existing:
            continue
        user = User(username=p.username, display_name=p.name, password_hash=password,
                    admin_role=p.admin_role, password_changed_at=now)
        user.memberships = [Membership(department_code=d, role=r, rank=rank) for d, r in p.memberships]
        session.add(user)
        created += 1
    session.flush()
    return created


def _ids(session) -> dict[str, int]:
    return dict(session.execute(select(User.username, User.id)).all())


def _open_task(session, instance_id: int, *, assignee: int | None = None, step: str | None = None) -> int:
    q = select(Task.id).where(Task.instance_id == instance_id, Task.status == "open")
    if assignee is not None:
        q = q.where((Task.assignee_id == assignee) | Task.assignee_id.is_(None))
    if step is not None:
        q = q.where(Task.step == step)
    return session.scalars(q.order_by(Task.id)).first()


def _sample_pdf(name: str) -> bytes:
    """A small one-page PDF standing in for a demo document (its name in the page and metadata)."""
    title = name.encode("utf-16-be").hex().upper()
    body = (b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n"
            b"2 0 obj<</Type/Pages/Kids[3 0 R]/Count 1>>endobj\n"
            b"3 0 obj<</Type/Page/Parent 2 0 R/MediaBox[0 0 595 842]>>endobj\n"
            b"4 0 obj<</Title<FEFF" + title.encode() + b">/Producer(ParkFlow demo)>>endobj\n"
            b"trailer<</Root 1 0 R/Info 4 0 R>>\n%%EOF\n")
    return body


def load_applications(svc: Services) -> int:
    """A few applications in different states, so every demo role finds work in its inbox.
    Figures come from the seed (新材料, 招宝山街道, 万元); project names are illustrative."""
    wf = svc.workflow
    with svc.db.write() as s:
        if s.scalar(select(ProcessInstance.id).limit(1)) is not None:
            return 0
        u = _ids(s)

        def act(user: str, iid: int, action: str, step: str | None = None, **kw):
            task = _open_task(s, iid, assignee=u[user], step=step)
            return wf.act(s, u[user], iid, Request(action, task, **kw))

        def start(user_id: int, key: str, data: dict, **kw):
            """Start with the attachment fields' file names turned into uploaded sample PDFs, as
            the start form would (stored with the start event, sha256 in the form)."""
            _definition_id, spec = svc.store.latest(s, key)
            policy = attachments.Policy(1 << 20, ("pdf",))
            files = [policy.check(attachments.Upload(f.name, data[f.name], _sample_pdf(data[f.name])))
                     for f in spec.fields if f.type is FieldType.attachment and isinstance(data.get(f.name), str)]
            result = wf.start(s, user_id, key, attachments.with_files(data, files),
                              trail_details=attachments.trail_details(files), **kw)
            attachments.save(s, result.instance_id, result.trail_event_id, user_id, files, wf.clock())
            return result

        # 1. 以投代招: a new-materials equity investment, past 投促中心, waiting at 经信局's queue.
        inv = start(u["zt_submit"], "investment_review", {
            "project_name": "高性能复合材料中试基地股权投资(示例)", "investing_entity": "zhentou_fund",
            "investment_type": "股权投资", "investment_wan": "6000", "equity_ratio_pct": "20",
            "lead_industry": "新材料", "location": "澥浦镇", "park_name": "新材料产业园",
            "expected_output_wan": "30000", "expected_tax_wan": "1200", "expected_jobs": 180,
            "holding_years": 5, "exit_path": "股权回购", "proposal_file": "投资建议书-复合材料.pdf",
        }, department="zhentou").instance_id
        act("tc_review", inv, "approve", opinion="项目符合新材料产业链招引方向，建议推进。")

        # 2. A planning application for a planned park: 并联 planning review under way.
        park = start(u["zt_submit"], "park_project_lifecycle", {
            "park_name": "招宝山智能制造小微园二期(示意)", "owner_group": "zhentou", "location": "招宝山街道",
            "lead_industry": "智能制造", "chain_description": "智能装备整机—核心零部件—工业软件上下游协同",
            "land_mu": "142", "floor_area_m2": "189000", "factory_area_m2": "176000",
            "planned_investment_wan": "85000", "target_enterprises": 120, "target_jobs": 3500,
            "target_tax_wan": "9000", "design_file": "规划设计方案-二期.pdf",
            "attraction_plan_file": "招商方案-二期.pdf", "operator_dept": "haijiang", "soe_equity": False,
        }, department="zhentou", subject_ref="ZH-P07").instance_id
        act("jx_review", park, "approve", opinion="产业定位符合差异化发展指引，同意。")

        # 3. Haijiang's investment proposal, returned by 投促中心 for supplements (in the submitter's 待办).
        hj = start(u["hj_submit"], "investment_review", {
            "project_name": "新能源电池材料产业基金出资(示例)", "investing_entity": "haijiang",
            "investment_type": "产业基金出资", "investment_wan": "3000", "lead_industry": "新材料",
            "location": "蛟川街道", "proposal_file": "基金出资方案.pdf",
        }, department="haijiang").instance_id
        act("tc_review2", hj, "return", target="proposal",
            opinion="请补充基金管理人资质、投资期限及退出安排，一次性告知如上。")

        # 4. An enterprise admitted into 新材料产业园 end to end (for the compliance reviewer).
        adm = start(u["zt_submit"], "enterprise_admission", {
            "enterprise_name": "宁波甬材新材料科技有限公司(示例)", "credit_code": "91330211MA2DEMO001",
            "industry": "新材料", "main_products": "特种工程塑料改性材料", "preferred_park": "新材料产业园",
            "area_needed_m2": "1500", "floor_load_kn_m2": "8", "ceiling_height_m": "7.5",
            "acceptable_floors": "仅限首层", "budget_wan_per_year": "45", "jobs": 60,
            "expected_tax_wan": "300", "business_licence": "营业执照.pdf",
        }, department="zhentou").instance_id
        act("tc_review", adm, "approve", data={"park_name": "新材料产业园", "owner_group": "zhentou"},
            opinion="属新材料产业链补链项目，匹配新材料产业园首层厂房。")
        act("zt_ops", adm, "approve", data={"offered_units": "A1-101", "offered_area_m2": "1500",
                                             "offered_floor": 1, "rent_yuan_m2_day": "0.8"},
            opinion="拟提供A1栋首层101单元。")
        act("zt_head", adm, "approve", opinion="同意入驻。")
    return 4


def load_demo(svc: Services) -> str:
    from .domain.portfolio import load_file
    from .domain.portfolio_store import load_portfolio

    now = svc.clock()
    portfolio = load_file(org=svc.store.organisation)
    with svc.db.write() as s:
        svc.store.sync_departments(s)
        people = load_people(s, now)
        stats = load_portfolio(s, portfolio)
    applications = load_applications(svc)
    created = ", ".join(f"{n} {k}" for k, n in sorted(stats.created.items())) or "no new rows"
    return (f"demo: {people} new people ({len(PEOPLE)} in all); portfolio: {created}; "
            f"{applications} new applications")
