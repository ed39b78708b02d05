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


def load_people(session, now, secret_key: str | None = None) -> int:
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
    if secret_key:
        enrol_second_factors(session, now, secret_key)
    return created


def enrol_second_factors(session, now, secret_key: str) -> list[str]:
    """Pre-enrol the demo people who must use a second factor (administrators, 国资中心, the
    compliance reviewer), so `make run` needs no authenticator app: `flask demo otp USER`
    prints the current code. A secret sealed with another SECRET_KEY is replaced."""
    from .services import second_factor
    from .services.security import needs_second_factor

    demo = {p.username for p in PEOPLE}
    done = []
    for user in session.scalars(select(User).where(User.username.in_(demo)).order_by(User.id)):
        if not needs_second_factor(user):
            continue
        if user.totp_secret:
            try:
                second_factor.unseal(user.totp_secret, user.id, secret_key)
                continue
            except second_factor.SealError:
                pass
        user.totp_secret = second_factor.seal(second_factor.new_secret(), user.id, secret_key)
        done.append(user.username)
    return done


def current_code(session, username: str, now, secret_key: str) -> str:
    """The demo person's current TOTP code (what their authenticator app would show)."""
    import pyotp

    from .services import second_factor

    user = session.scalar(select(User).where(User.username == username))
    if user is None or username not in {p.username for p in PEOPLE}:
        raise LookupError(f"no demo person {username!r}")
    if not user.totp_secret:
        raise LookupError(f"{username} has no second factor: sign in with the password only")
    raw = second_factor.unseal(user.totp_secret, user.id, secret_key)
    return pyotp.TOTP(second_factor.as_text(raw)).at(now)


def _ids(session) -> dict[str, int]:
    return dict(session.execute(select(User.username, User.id)).all())


def _open_task(session, instance_id: int, *, assignee: int | None = None, step: str | None = None) -> int:
    q = select(Task.id).where(Task.instance_id == instance_id, Task.status == "open")
    if assignee is not None:
        q = q.where((Task.assignee_id == assignee) | Task.assignee_id.is_(None))
    if step is not None:
        q = q.where(Task.step == step)
    return session.scalars(q.order_by(Task.id)).first()


# The demo applications' forms. Each figure is the portfolio's (workflow_app/domain/
# portfolio_data.yaml, itself the seed's totals split as marked there); tests/domain/
# test_demo_data.py cross-checks them: park names, locations, owners, areas, units.
# 以投代招: a new-materials equity investment landing in 新材料产业园 (蛟川街道 in the portfolio).
INVESTMENT_ZHENTOU = {
    "project_name": "高性能复合材料中试基地股权投资(示例)", "investing_entity": "zhentou_fund",
    "investment_type": "股权投资", "investment_wan": "6000", "equity_ratio_pct": "20",
    "lead_industry": "新材料", "location": "蛟川街道", "park_name": "新材料产业园",
    "expected_output_wan": "30000", "expected_tax_wan": "1200", "expected_jobs": 180,
    "holding_years": 5, "exit_path": "股权回购", "proposal_file": "投资建议书-复合材料.pdf",
}
# 规划设计 of the planned park ZH-P07 with the portfolio's figures (its factory area exceeds its
# floor area: the source conflict explained in portfolio_data.yaml's header).
LIFECYCLE_P07 = {
    "park_name": "招宝山智能制造小微园二期(示意)", "owner_group": "zhentou", "location": "招宝山街道",
    "lead_industry": "智能制造", "chain_description": "智能装备整机—核心零部件—工业软件上下游协同",
    "land_mu": "142", "floor_area_m2": "189000", "factory_area_m2": "200000",
    "planned_investment_wan": "85000", "target_enterprises": 120, "target_jobs": 3500,
    "target_tax_wan": "9000", "design_file": "规划设计方案-二期.pdf",
    "attraction_plan_file": "招商方案-二期.pdf", "operator_dept": "haijiang", "soe_equity": False,
}
INVESTMENT_HAIJIANG = {
    "project_name": "新能源电池材料产业基金出资(示例)", "investing_entity": "haijiang",
    "investment_type": "产业基金出资", "investment_wan": "3000", "lead_industry": "新材料",
    "location": "蛟川街道", "proposal_file": "基金出资方案.pdf",
}
# 入园: an invented new-materials firm (DEMO credit code, as the portfolio's) needing 1,500 m² on
# a ground floor; 新材料产业园 belongs to 海江公司 in the portfolio and unit 8-102 (8号厂房, 1F,
# 1,500 m², 30 kN/m², 8 m) is vacant there. Rent 0.8 元/m²·天 × 1,500 m² × 365 = 43.8 万元/年,
# within the 45 万元 budget.
ADMISSION = {
    "enterprise_name": "宁波甬材新材料科技有限公司(示例)", "credit_code": "DEMO00000000000061",
    "industry": "新材料", "main_products": "特种工程塑料改性材料", "preferred_park": "新材料产业园",
    "area_needed_m2": "1500", "floor_load_kn_m2": "8", "ceiling_height_m": "7.5",
    "acceptable_floors": "仅限首层", "budget_wan_per_year": "45", "jobs": 60,
    "expected_tax_wan": "300", "business_licence": "营业执照.pdf",
}
ADMISSION_MATCH = {"park_name": "新材料产业园"}
ADMISSION_OFFER = {"offered_units": "8-102", "offered_area_m2": "1500", "offered_floor": 1,
                   "rent_yuan_m2_day": "0.8"}
ADMISSION_PARK = "ZH-P01"


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
    Project names are illustrative; parks, places and figures are the portfolio's."""
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

        # 1. 以投代招: past 投促中心, waiting at 经信局's queue.
        inv = start(u["zt_submit"], "investment_review", INVESTMENT_ZHENTOU,
                    department="zhentou").instance_id
        act("tc_review", inv, "approve", opinion="项目符合新材料产业链招引方向，建议推进。")

        # 2. A planning application for a planned park: 并联 planning review under way.
        park = start(u["zt_submit"], "park_project_lifecycle", LIFECYCLE_P07,
                     department="zhentou").instance_id
        act("jx_review", park, "approve", opinion="产业定位符合差异化发展指引，同意。")

        # 3. Haijiang's investment proposal, returned by 投促中心 for supplements (in the submitter's 待办).
        hj = start(u["hj_submit"], "investment_review", INVESTMENT_HAIJIANG,
                   department="haijiang").instance_id
        act("tc_review2", hj, "return", target="proposal",
            opinion="请补充基金管理人资质、投资期限及退出安排，一次性告知如上。")

        # 4. An enterprise admitted into 新材料产业园 end to end (for the compliance reviewer); the
        #    approval records the tenancy of unit 8-102 in the portfolio.
        adm = start(u["hj_submit"], "enterprise_admission", ADMISSION,
                    department="haijiang").instance_id
        act("tc_review", adm, "approve", data=ADMISSION_MATCH,
            opinion="属新材料产业链补链项目，匹配新材料产业园首层厂房。")
        act("hj_ops", adm, "approve", data=ADMISSION_OFFER, opinion="拟提供8号厂房首层8-102单元。")
        act("hj_head", adm, "approve", opinion="同意入驻。")
    return 4


def load_demo(svc: Services, secret_key: str | None = None) -> str:
    from .domain.portfolio import load_file
    from .domain.portfolio_store import load_portfolio

    now = svc.clock()
    portfolio = load_file(org=svc.store.organisation)
    with svc.db.write() as s:
        svc.store.sync_departments(s)
        people = load_people(s, now, secret_key)
        stats = load_portfolio(s, portfolio)
    applications = load_applications(svc)
    evaluations = evaluate_indicators(svc)
    created = ", ".join(f"{n} {k}" for k, n in sorted(stats.created.items())) or "no new rows"
    graded = "; ".join(f"{e.period} " + "/".join(f"{n} {g}" for g, n in e.by_grade().items() if n)
                       for e in evaluations if any(e.by_grade().values())) or "no warnings"
    raised = sum(1 for e in evaluations for p in e.parks if p.action == "raised")
    return (f"demo: {people} new people ({len(PEOPLE)} in all); portfolio: {created}; "
            f"{applications} new applications; monitoring: {graded} ({raised} warnings newly raised)")


def evaluate_indicators(svc: Services) -> list:
    """园区资产动态监测 over the portfolio's indicator periods, oldest first, as the scheduled
    evaluation would have run them: the dashboard's warnings come from the data, each one in the
    trail. Idempotent: an unchanged period records nothing new."""
    from sqlalchemy import func

    from .models import ParkIndicator
    from .services.monitoring import evaluate_period

    with svc.db.read() as s:
        periods = s.scalars(select(ParkIndicator.period).group_by(ParkIndicator.period)
                            .order_by(func.max(ParkIndicator.period_end))).all()
    results = []
    for period in periods:
        with svc.db.write() as s:
            results.append(evaluate_period(s, svc.workflow, period, svc.clock(), None))
    return results
