"""园区 pages (`/parks`): the 园区资产动态监测 dashboard, the portfolio list with XLSX export and
import, a park's dossier, 产业链精准匹配 for 投促中心, and the evidence shown on an application's
page (the 同质化检查 of a park project, the 匹配 link of an admission).

Who: reading is for anyone holding a membership, the audit administrator, and the system
administrator (who imports); importing is for the system administrator and the head of 区经信局;
matching is for members of 投促中心 (invest_promo). Everyone else gets the 403 page, and the
header hides the link (`parks_nav`). Charts are drawn by the vendored ECharts from JSON blocks
(`<script type="application/json">`, no inline script: CSP `script-src 'self'`), read by
static/js/portfolio.js; every figure a chart shows is also printed as text beside it.
"""
from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

from flask import Blueprint, Response, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required
from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired
from sqlalchemy import func, select
from sqlalchemy.orm import selectinload
from wtforms import DecimalField, IntegerField, SelectChoice, SelectField
from wtforms.validators import DataRequired, NumberRange, Optional

from ..container import services
from ..domain.matching import Floors, Needs, estimated_rent_wan
from ..domain.monitoring import grade_rank
from ..domain.portfolio import whole_percent
from ..domain.portfolio_store import COLUMNS, MAX_XLSX_BYTES, export_xlsx, import_xlsx
from ..engine.errors import DefinitionError, Problem
from ..models import (Building, Park, ParkIndicator, ParkWarning, ProcessDefinition,
                      ProcessInstance, Tenancy, Unit, User)
from ..services import accounts, queries
from ..services.matching import catalogue_or_default, check_homogeneity, industry_labels, match_units
from ..services.monitoring import dashboard_figures
from . import labels
from .current import SignedIn, me
from .pages import tr

bp = Blueprint("portfolio", __name__, url_prefix="/parks")

STAGES = ("operating", "construction", "planned")
STAGE = {"operating": ("已建成运营", "Operating"), "construction": ("在建", "Under construction"),
         "planned": ("拟建", "Planned")}
UNIT = {"vacant": ("空置", "Vacant"), "let": ("出租", "Let"), "sold": ("已售", "Sold")}
GRADE = {"red": ("红色预警", "Red"), "orange": ("橙色预警", "Orange"), "yellow": ("黄色预警", "Yellow")}
GRADE_SHORT = {"red": ("红", "red"), "orange": ("橙", "orange"), "yellow": ("黄", "yellow")}
GRADE_COLOUR = {"red": "#f5222d", "orange": "#fa8c16", "yellow": "#fadb14"}
CLOSED = {"recovered": ("指标恢复", "recovered"), "superseded": ("由后续期次接续", "carried on"),
          "revised": ("数据更正后解除", "revised away")}
READ_ADMINS = ("audit", "system")
MATCH_DEPARTMENT = "invest_promo"
SHOWN_MATCHES = 20


# ---------------------------------------------------------------- who may do what
def may_read(user) -> bool:
    return bool(user.memberships) or user.admin_role in READ_ADMINS


def may_import(user) -> bool:
    return user.admin_role == "system" or user.holds("econ_it", "head")


def may_match(user) -> bool:
    return any(d == MATCH_DEPARTMENT for d, _r in user.memberships)


def _reader() -> SignedIn:
    user = me()
    if not may_read(user):
        abort(403)
    return user


@bp.app_context_processor
def nav_link() -> dict:
    """`parks_nav`: show the header link (base.html) to those who may read the portfolio."""
    user = current_user if current_user and current_user.is_authenticated else None
    return {"parks_nav": bool(user) and may_read(user)}


# ---------------------------------------------------------------- words and numbers
def stage_name(code: str) -> str:
    return labels.pick(STAGE.get(code, (code, code)))


def industry_name(code: str) -> str:
    found = next((i for i in catalogue_or_default(None).industries if i.code == code), None)
    return labels.pick((found.zh, found.en)) if found else code


def builder_name(code: str) -> str:
    """A department (builder, or the department in a chart) by its name; else the data file's label."""
    dept = services().store.organisation.departments.get(code)
    if dept:
        return labels.text(dept.name)
    found = next((b for b in catalogue_or_default(None).other_builders if b.code == code), None)
    return labels.pick((found.zh, found.en)) if found else code


@bp.app_template_filter("pf_wan")
def wan(m2) -> str:
    """An area in 万 m² (2,280,000 -> 228)."""
    return labels.format_number(Decimal(str(m2 or 0)) / 10_000, 1)


@bp.app_template_filter("pf_pct")
def pct(fraction, places: int = 0) -> str:
    """A fraction as a percentage with a fixed number of decimals (0.64 -> 64.0% at places=1)."""
    if fraction is None:
        return ""
    value = (Decimal(str(fraction)) * 100).quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)
    return f"{value}%"


def zh_only(word: str) -> str:
    """A counting word (个, 件) that English does without."""
    return "" if labels.english() else word


def _helpers() -> dict:
    return dict(zh_only=zh_only, stage_name=stage_name, industry_name=industry_name, builder_name=builder_name,
                unit_status=lambda c: labels.pick(UNIT.get(c, (c, c))),
                grade_name=lambda g: labels.pick(GRADE.get(g, (g, g))),
                grade_short=lambda g: labels.pick(GRADE_SHORT.get(g, (g, g))),
                closed_name=lambda c: labels.pick(CLOSED.get(c or "", (c or "", c or ""))),
                may_import=may_import, may_match=may_match)


def _render(template: str, status: int = 200, **context):
    return render_template(template, **_helpers(), **context), status


# ---------------------------------------------------------------- reads
def _open_grades(s) -> dict[int, str]:
    """park id -> the most severe open warning."""
    out: dict[int, str] = {}
    for park_id, grade in s.execute(select(ParkWarning.park_id, ParkWarning.grade)
                                    .where(ParkWarning.status == "open")):
        if grade_rank(grade) > grade_rank(out.get(park_id)):
            out[park_id] = grade
    return out


def _latest_indicators(s) -> dict[int, ParkIndicator]:
    return {i.park_id: i for i in s.scalars(select(ParkIndicator).order_by(ParkIndicator.period_end))}


def _stage_totals(s) -> dict[str, dict]:
    totals = {st: dict(parks=0, floor=Decimal(0), factory=Decimal(0), land=Decimal(0)) for st in STAGES}
    for stage, n, floor, factory, land in s.execute(
            select(Park.stage, func.count(), func.sum(Park.floor_area_m2),
                   func.sum(Park.factory_area_m2), func.sum(Park.land_mu)).group_by(Park.stage)):
        totals[stage] = dict(parks=n, floor=Decimal(floor or 0), factory=Decimal(factory or 0),
                             land=Decimal(land or 0))
    return totals


# ---------------------------------------------------------------- charts (JSON for portfolio.js)
def _pie(shares, label) -> dict:
    return {"kind": "pie", "unit": tr("万平方米", "×10⁴ m²"), "items": [
        {"key": s.key, "name": label(s.key), "value": float(round(s.area_m2 / 10_000, 2)),
         "share": float(s.share), "percent": s.percent} for s in shares]}


def _floor_label(floor: int) -> str:
    return tr(f"{floor}层", f"{floor}F")


def _occupancy_chart(occupancy, combined) -> dict:
    floors = [f.floor for f in combined.floors]
    series = [{"name": o.name, "type": "bar", "values": [
        next((round(float(f.rate) * 100, 1) for f in o.floors if f.floor == fl), None) for fl in floors]}
        for o in occupancy]
    series.append({"name": tr("运营园区合计", "All operating parks"), "type": "line",
                   "values": [round(float(f.rate) * 100, 1) for f in combined.floors]})
    return {"kind": "bar", "unit": "%", "max": 100, "categories": [_floor_label(f) for f in floors],
            "series": series}


def dashboard_charts(f) -> dict[str, dict]:
    grades = ("red", "orange", "yellow")
    return {
        "chart-location": _pie(f.by_location, lambda k: k),
        "chart-industry": _pie(f.by_lead_industry, industry_name),
        "chart-builder": _pie(f.by_builder, builder_name),
        "chart-occupancy": _occupancy_chart(f.occupancy, f.occupancy_all),
        "chart-warnings": {"kind": "bar", "unit": zh_only("个"), "integer": True,
                           "categories": [labels.pick(GRADE[g]) for g in grades],
                           "colours": [GRADE_COLOUR[g] for g in grades],
                           "series": [{"name": tr("未解除预警", "Open warnings"), "type": "bar",
                                       "values": [f.warnings_by_grade.get(g, 0) for g in grades]}]},
        "chart-overdue": {"kind": "bar", "horizontal": True, "unit": zh_only("件"), "integer": True,
                          "categories": [builder_name(c) for c, _n, _k in f.overdue_by_department],
                          "colours": ["#f5222d"],
                          "series": [{"name": tr("逾期待办", "Overdue tasks"), "type": "bar",
                                      "values": [k for _c, _n, k in f.overdue_by_department]}]},
    }


@bp.get("/dashboard")
@login_required
def dashboard():
    _reader()
    svc = services()
    with svc.db.read() as s:
        figures = dashboard_figures(s, now=svc.clock())
        stages = _stage_totals(s)
    (industries, industry_share), (builders, builder_share) = (
        figures.top(figures.by_lead_industry), figures.top(figures.by_builder))
    led = {share.key for share in figures.by_lead_industry}
    return _render("portfolio/dashboard.html", f=figures, stages=stages,
                   unled=[industry_name(i.code) for i in catalogue_or_default(None).industries
                          if i.code not in led],
                   charts=dashboard_charts(figures), reported=catalogue_or_default(None).reported,
                   total_parks=sum(v["parks"] for v in stages.values()),
                   total_floor=sum((v["floor"] for v in stages.values()), Decimal(0)),
                   top_industry=(" + ".join(map(industry_name, industries)), whole_percent(industry_share)),
                   top_builder=(" + ".join(map(builder_name, builders)), whole_percent(builder_share)))


# ---------------------------------------------------------------- the list, export, import
def _filters(s) -> dict[str, list[tuple[str, str]]]:
    catalogue = catalogue_or_default(None)
    owners = sorted(set(s.scalars(select(Park.owner_group).distinct())))
    locations = list(catalogue.locations) + sorted(
        set(s.scalars(select(Park.location).distinct())) - set(catalogue.locations))
    return {"stage": [(st, stage_name(st)) for st in STAGES],
            "location": [(loc, loc) for loc in locations],
            "owner": [(o, builder_name(o)) for o in owners],
            "industry": [(i.code, industry_name(i.code)) for i in catalogue.industries]}


def _chosen(options: dict) -> dict[str, str]:
    """The filters asked for, each one of its options (anything else is ignored)."""
    return {name: request.args[name] for name, choices in options.items()
            if request.args.get(name) in {c for c, _ in choices}}


def _index(import_errors: list[Problem] | None = None, status: int = 200):
    _reader()
    with services().db.read() as s:
        options = _filters(s)
        chosen = _chosen(options)
        q = select(Park).order_by(Park.code)
        for name, column in (("stage", Park.stage), ("location", Park.location),
                             ("owner", Park.owner_group), ("industry", Park.lead_industry)):
            if name in chosen:
                q = q.where(column == chosen[name])
        parks = s.scalars(q).all()
        grades, latest = _open_grades(s), _latest_indicators(s)
    headers = dict(COLUMNS)
    return _render("portfolio/index.html", status, parks=parks, options=options, chosen=chosen,
                   grades=grades, latest=latest, import_form=ImportForm(),
                   import_errors=import_errors, column_name=lambda key: headers.get(key, key),
                   totals={k: sum((getattr(p, k) for p in parks), Decimal(0))
                           for k in ("land_mu", "floor_area_m2", "factory_area_m2")})


@bp.get("")
@login_required
def index():
    return _index()


class ImportForm(FlaskForm):
    file = FileField(validators=[FileRequired()])


def _ip() -> str:
    return (request.remote_addr or "")[:64]


@bp.get("/export.xlsx")
@login_required
def export():
    user = _reader()
    svc = services()
    now = svc.clock()
    with svc.db.read() as s:
        labels_zh = industry_labels()
        data = export_xlsx(s, lambda code: labels_zh.get(code, code))
    with svc.db.write() as s:
        accounts.log(s, "export", now=now, user=s.get(User, user.id), ip=_ip(), kind="parks_xlsx",
                     bytes=len(data))
    response = Response(data, mimetype="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")
    response.headers["Content-Disposition"] = f'attachment; filename="parkflow-parks-{labels.local(now):%Y%m%d%H%M}.xlsx"'
    return response


@bp.post("/import")
@login_required
def import_parks():
    user = _reader()
    if not may_import(user):
        abort(403)
    form = ImportForm()
    if not form.validate_on_submit():
        flash(tr("请选择要导入的 Excel 文件（.xlsx）", "Choose an .xlsx file to import"), "error")
        return redirect(url_for(".index"))
    upload = form.file.data
    name = (upload.filename or "parks.xlsx")[:100]
    content = upload.read(MAX_XLSX_BYTES + 1)
    svc = services()
    now = svc.clock()
    try:
        with svc.db.write() as s:  # import_xlsx validates every row before it writes any
            stats = import_xlsx(s, content, name, catalogue_or_default(None), svc.store.organisation)
            accounts.log(s, "import", now=now, user=s.get(User, user.id), ip=_ip(),
                         kind="parks_xlsx", file=name, created=stats.created["park"],
                         updated=stats.updated["park"])
    except DefinitionError as exc:
        with svc.db.write() as s:
            accounts.log(s, "import", now=now, user=s.get(User, user.id), ip=_ip(), outcome="refused",
                         kind="parks_xlsx", file=name, problems=len(exc.problems))
        flash(tr("导入未生效：文件有误，请按下列行号修改后重新导入（未写入任何数据）",
                 "Nothing was imported: fix the rows listed below and import again"), "error")
        return _index(import_errors=exc.problems, status=422)
    flash(tr("导入完成：新增 %d 个园区，更新 %d 个园区", "Imported: %d parks added, %d updated")
          % (stats.created["park"], stats.updated["park"]), "success")
    return redirect(url_for(".index"))


# ---------------------------------------------------------------- a park's dossier
def _indicator_chart(rows: list[ParkIndicator], floor_areas: dict[int, Decimal]) -> dict:
    """Rates only: the amounts (tax, output) mix quarters and months, so they stay in the table.
    2F+ occupancy weighs each floor's rate by its unit area, when the park has units."""
    upper_area = sum((a for f, a in floor_areas.items() if f >= 2), Decimal(0))

    def upper(r: ParkIndicator) -> float | None:
        taken = sum((Decimal(str(rate)) * floor_areas.get(int(f), Decimal(0))
                     for f, rate in r.occupancy_by_floor.items() if int(f) >= 2), Decimal(0))
        return round(float(taken / upper_area) * 100, 1) if upper_area else None

    series = [{"name": tr("入驻率", "Occupancy"), "type": "line",
               "values": [round(float(r.occupancy_rate) * 100, 1) for r in rows]}]
    if upper_area:
        series.append({"name": tr("二层及以上入驻率", "Occupancy 2F+"), "type": "line",
                       "values": [upper(r) for r in rows]})
    series.append({"name": tr("产业集聚度", "Lead-chain share"), "type": "line",
                   "values": [round(float(r.lead_chain_share) * 100, 1) for r in rows]})
    return {"kind": "line", "unit": "%", "categories": [r.period for r in rows],
            "axes": [{"name": "%", "max": 100}], "series": series}


def _floors(building: Building) -> list[tuple[int, list[Unit]]]:
    """A building's units per floor, top floor first (as a stacking plan reads)."""
    by_floor: dict[int, list[Unit]] = {}
    for unit in building.units:
        by_floor.setdefault(unit.floor, []).append(unit)
    return sorted(by_floor.items(), reverse=True)


@bp.get("/<code>")
@login_required
def dossier(code: str):
    user = _reader()
    svc = services()
    with svc.db.read() as s:
        park = s.scalar(select(Park).where(Park.code == code).options(
            selectinload(Park.buildings).selectinload(Building.units).selectinload(Unit.tenant),
            selectinload(Park.indicators)))
        if park is None:
            abort(404)
        units = [u for b in park.buildings for u in b.units]
        leases = {t.unit_id: t for t in s.scalars(
            select(Tenancy).where(Tenancy.unit_id.in_([u.id for u in units]))
            .order_by(Tenancy.start_date))}
        warnings = s.scalars(select(ParkWarning).where(ParkWarning.park_id == park.id)
                             .order_by(ParkWarning.period_end.desc())).all()
        rows = s.execute(select(ProcessInstance, ProcessDefinition.title_zh, ProcessDefinition.title_en)
                         .join(ProcessDefinition, ProcessDefinition.id == ProcessInstance.definition_id)
                         .where(ProcessInstance.subject_ref == code)
                         .order_by(ProcessInstance.created_at.desc(), ProcessInstance.id.desc())).all()
        instances = [(i, labels.pick((zh, en)), queries.can_view(s, user.id, user.memberships,
                                                                   user.admin_role, i))
                     for i, zh, en in rows]
    area = sum((u.area_m2 for u in units), Decimal(0))
    occupied = sum((u.area_m2 for u in units if u.status != "vacant"), Decimal(0))
    floors = sorted({u.floor for u in units})
    by_floor = [(fl, sum((u.area_m2 for u in units if u.floor == fl), Decimal(0)),
                 sum((u.area_m2 for u in units if u.floor == fl and u.status != "vacant"), Decimal(0)))
                for fl in floors]
    return _render("portfolio/dossier.html", park=park, units=units, leases=leases,
                   warnings=warnings, instances=instances, floors_of=_floors, area=area,
                   visible={i.id for i, _title, ok in instances if ok},
                   occupied=occupied, by_floor=by_floor, indicators=park.indicators,
                   chart=_indicator_chart(park.indicators, {f: a for f, a, _t in by_floor})
                   if park.indicators else None,
                   floor_label=_floor_label)


# ---------------------------------------------------------------- 产业链精准匹配
class MatchForm(FlaskForm):
    class Meta:
        csrf = False  # a GET form: bookmarkable, changes nothing

    industry = SelectField(validate_choice=True, validators=[DataRequired()])
    area_needed_m2 = DecimalField(places=None, validators=[DataRequired(), NumberRange(min=1, max=1_000_000)])
    acceptable_floors = SelectField(validate_choice=True, default=Floors.any.value)
    floor_load_kn_m2 = DecimalField(places=None, validators=[Optional(), NumberRange(min=0, max=1000)])
    ceiling_height_m = DecimalField(places=None, validators=[Optional(), NumberRange(min=0, max=100)])
    budget_wan_per_year = DecimalField(places=None, validators=[Optional(), NumberRange(min=0, max=10_000_000)])
    instance = IntegerField(validators=[Optional(), NumberRange(min=1, max=2**31 - 1)])

    def needs(self) -> Needs:
        return Needs(industry=self.industry.data, area_m2=self.area_needed_m2.data,
                     floors=Floors(self.acceptable_floors.data),
                     floor_load_kn_m2=self.floor_load_kn_m2.data,
                     ceiling_height_m=self.ceiling_height_m.data,
                     budget_wan_per_year=self.budget_wan_per_year.data)


FLOOR_WORDS = {"ground_only": ("仅限首层", "Ground floor only"),
               "ground_or_second": ("首层或二层", "Ground or 2nd floor"),
               "upper_only": ("二层及以上", "2nd floor and above"), "any": ("不限", "Any floor")}
NEEDS_FIELDS = ("industry", "area_needed_m2", "acceptable_floors", "floor_load_kn_m2",
                "ceiling_height_m", "budget_wan_per_year")


def _prefill(form: MatchForm, data: dict) -> None:
    """An enterprise_admission application's needs into the form (labels -> codes)."""
    industry = str(data.get("industry") or "")
    form.industry.data = next((i.code for i in catalogue_or_default(None).industries
                               if industry in (i.code, i.zh)), "other")
    try:
        form.acceptable_floors.data = Floors.from_label(str(data.get("acceptable_floors") or "不限")).value
    except ValueError:
        form.acceptable_floors.data = Floors.any.value
    for name in ("area_needed_m2", "floor_load_kn_m2", "ceiling_height_m", "budget_wan_per_year"):
        value = data.get(name)
        getattr(form, name).data = Decimal(str(value)) if value not in (None, "") else None


@bp.get("/match")
@login_required
def match():
    user = me()
    if not may_match(user):
        abort(403)
    form = MatchForm(request.args)
    form.industry.choices = [SelectChoice(i.code, industry_name(i.code))
                             for i in catalogue_or_default(None).industries] + [
        SelectChoice("other", tr("其他", "Other"))]
    form.acceptable_floors.choices = [SelectChoice(f.value, labels.pick(FLOOR_WORDS[f.value]))
                                      for f in Floors]
    svc = services()
    source, ranking, asked = None, None, any(request.args.get(n) for n in NEEDS_FIELDS)
    with svc.db.read() as s:
        if form.instance.data:
            source = s.get(ProcessInstance, form.instance.data)
            if source is None or source.process_key != "enterprise_admission" or not queries.can_view(
                    s, user.id, user.memberships, user.admin_role, source):
                abort(404)
            if not asked:
                _prefill(form, source.form_data)
        if asked or source is not None:
            if form.validate():
                ranking = match_units(s, form.needs())
    status = 400 if asked and ranking is None else 200
    return _render("portfolio/match.html", status, form=form, source=source, ranking=ranking,
                   shown=SHOWN_MATCHES, rent=estimated_rent_wan, floor_label=_floor_label)


# ---------------------------------------------------------------- on an application's page
def instance_evidence(instance: ProcessInstance, user: SignedIn) -> dict | None:
    """What the application page shows from the portfolio: for a park project, the 同质化检查 (to
    everyone but its submitter: it is evidence for the reviewers); for an admission, the link
    that opens 产业链精准匹配 pre-filled (to 投促中心)."""
    if instance.process_key == "park_project_lifecycle" and user.id != instance.submitter_id:
        data = instance.form_data or {}
        with services().db.read() as s:
            try:
                result = check_homogeneity(s, str(data.get("location") or ""),
                                           str(data.get("lead_industry") or ""),
                                           exclude=instance.subject_ref)
            except ValueError:  # an industry the portfolio does not know: nothing to compare
                return None
        return dict(kind="homogeneity", result=result, industry=industry_name(result.lead_industry),
                    may_read=may_read(user), **_helpers())
    if instance.process_key == "enterprise_admission" and may_match(user):
        return dict(kind="match", url=url_for("portfolio.match", instance=instance.id))
    return None
