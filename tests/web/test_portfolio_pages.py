"""The 园区 pages (/parks) over the shipped process definitions and the demo portfolio: who may
read, import and match; the dashboard's JSON blocks carry the seed's shares; list filters; the
XLSX export -> import round trip through the page (CSRF, errors by row, nothing written on error);
a park's dossier with its applications; the 产业链精准匹配 ranking and its pre-fill from an
admission; the 同质化检查 panel on a park project. Runs on SQLite and, with TEST_DATABASE_URL,
on PostgreSQL."""
from __future__ import annotations

import io
import json
import re
from datetime import timedelta
from pathlib import Path

import openpyxl
import pytest
from sqlalchemy import select

from tests.factories import PEOPLE, create_people
from tests.web.helpers import as_user, csrf_token, text
from workflow_app.domain import portfolio
from workflow_app.domain.portfolio_store import load_portfolio
from workflow_app.models import Park, SecurityEvent, User
from workflow_app.services.monitoring import evaluate_period

ROOT = Path(__file__).resolve().parents[2]
MORE = {"jx_head": [("econ_it", "head")], "auditadmin": [], "nobody": []}
LIFECYCLE = {  # as the demo's planning application (招宝山街道 + 智能制造)
    "park_name": "招宝山智能制造小微园二期", "owner_group": "zhentou", "location": "招宝山街道",
    "lead_industry": "智能制造", "chain_description": "智能装备整机—核心零部件—工业软件上下游协同",
    "land_mu": "142", "floor_area_m2": "189000", "factory_area_m2": "176000",
    "planned_investment_wan": "85000", "target_enterprises": 120, "design_file": "规划设计方案.pdf",
    "attraction_plan_file": "招商方案.pdf", "operator_dept": "haijiang", "soe_equity": False,
}
ADMISSION = {  # a new-materials firm needing 1,500 m² on the ground floor
    "enterprise_name": "宁波甬材新材料科技有限公司", "credit_code": "91330211MA2TEST001",
    "industry": "新材料", "main_products": "特种工程塑料改性材料", "preferred_park": "新材料产业园",
    "area_needed_m2": "1500", "floor_load_kn_m2": "8", "ceiling_height_m": "7.5",
    "acceptable_floors": "仅限首层", "budget_wan_per_year": "45", "jobs": 60,
    "expected_tax_wan": "300", "business_licence": "营业执照.pdf",
}


@pytest.fixture
def site(make_app, clock):
    """The app with the shipped definitions, the factory people (plus 经信局's head, the audit
    administrator and someone with no membership) and the demo portfolio."""
    return _site(make_app(defs=ROOT / "process_defs"), clock)


def _site(app, clock):
    svc = app.extensions["parkflow"]
    with svc.db.write() as s:
        svc.store.sync(s, clock())
        people = create_people(s, {**PEOPLE, **MORE})
        s.get(User, people["auditadmin"]).admin_role = "audit"
        load_portfolio(s, portfolio.load_file())
    app.people = people
    return app


def start(app, key: str, data: dict, *, subject_ref: str | None = None, who: str = "submitter") -> int:
    svc = app.extensions["parkflow"]
    with svc.db.write() as s:
        return svc.workflow.start(s, app.people[who], key, dict(data), department="zhentou",
                                  subject_ref=subject_ref).instance_id


def chart(html: str, block: str) -> dict:
    match = re.search(rf'<script type="application/json" id="{block}">(.*?)</script>', html, re.S)
    assert match, f"no JSON block {block}"
    return json.loads(match.group(1))


def listed(html: str) -> list[str]:
    return re.findall(r'<a href="/parks/(ZH-P\d+)">', html)


def park_names(app) -> dict[str, str]:
    with app.extensions["parkflow"].db.read() as s:
        return dict(s.execute(select(Park.code, Park.name)).all())


# ---------------------------------------------------------------- who may do what
def test_reading_needs_a_membership_or_an_oversight_admin(site):
    for name in ("econ", "submitter", "auditadmin", "sysadmin", "jx_head"):
        client = as_user(site, name)
        for url in ("/parks/dashboard", "/parks", "/parks/ZH-P01", "/parks/export.xlsx"):
            assert client.get(url).status_code == 200, (name, url)
        assert 'href="/parks/dashboard"' in text(client.get("/"))  # the header link
    nobody = as_user(site, "nobody")
    for url in ("/parks/dashboard", "/parks", "/parks/ZH-P01", "/parks/export.xlsx", "/parks/match"):
        response = nobody.get(url)
        assert response.status_code == 403, url
        assert "新材料产业园" not in text(response)
    assert 'href="/parks/dashboard"' not in text(nobody.get("/"))
    assert site.test_client().get("/parks").status_code == 302  # to the sign-in page
    assert as_user(site, "econ").get("/parks/ZH-P99").status_code == 404


def test_matching_is_for_investment_promotion_only(site):
    url = "/parks/match?industry=new_materials&area_needed_m2=1500"
    for name in ("econ", "jx_head", "sasac", "submitter", "sysadmin", "auditadmin"):
        client = as_user(site, name)
        assert client.get(url).status_code == 403, name
        assert 'href="/parks/match"' not in text(client.get("/parks"))  # no tab either
    promo = as_user(site, "promo1")
    assert promo.get(url).status_code == 200
    assert 'href="/parks/match"' in text(promo.get("/parks"))


# ---------------------------------------------------------------- dashboard
def test_dashboard_shows_the_seed_figures_and_shares(site, clock):
    svc = site.extensions["parkflow"]
    with svc.db.write() as s:
        evaluate_period(s, svc.workflow, "2026-10", clock(), None)  # 3 orange warnings
    start(site, "enterprise_admission", ADMISSION)
    clock.now += timedelta(days=30)  # 投促中心's review is now overdue
    page = as_user(site, "econ").get("/parks/dashboard")
    assert page.status_code == 200
    html = text(page)
    for figure in ("18<small>", "228<small>", "330<small>", "69.9%", "合计 <b>81%</b>", "合计 <b>68%</b>"):
        assert figure in html, figure
    assert "echarts.min.js" in html and "js/portfolio.js" in html and "<script>" not in html

    location = {i["name"]: i["percent"] for i in chart(html, "chart-location")["items"]}
    assert (location["招宝山街道"], location["蛟川街道"], location["澥浦镇"]) == (25, 23, 17)
    industry = {i["key"]: i for i in chart(html, "chart-industry")["items"]}
    both = industry["smart_manufacturing"]["share"] + industry["new_materials"]["share"]
    assert round(both * 100) == 81 and industry["new_materials"]["name"] == "新材料"
    builder = {i["key"]: i["share"] for i in chart(html, "chart-builder")["items"]}
    assert round((builder["zhentou"] + builder["haijiang"]) * 100) == 68
    assert sum(i["value"] for i in chart(html, "chart-location")["items"]) == pytest.approx(234.0)

    occupancy = chart(html, "chart-occupancy")
    assert occupancy["categories"][:2] == ["1层", "2层"]
    for series in occupancy["series"]:
        ground, *upper = series["values"]
        assert ground > 95 and all(v < 55 for v in upper), series  # the upper floors stand empty
    assert chart(html, "chart-warnings")["series"][0]["values"] == [0, 3, 0]  # red, orange, yellow
    overdue = chart(html, "chart-overdue")
    assert overdue["categories"] == ["区投资促进中心"]
    assert overdue["series"][0]["values"] == [1]  # one approval, although 或签 opened a task per reviewer

    english = as_user(site, "econ")
    english.post("/locale/en")
    html = text(english.get("/parks/dashboard"))
    assert "New materials" in {i["name"] for i in chart(html, "chart-industry")["items"]}


# ---------------------------------------------------------------- list, export, import
def test_list_filters(site):
    client = as_user(site, "econ")
    everything = listed(text(client.get("/parks")))
    assert len(everything) == 18 and everything[0] == "ZH-P01"
    assert listed(text(client.get("/parks?stage=operating"))) == ["ZH-P01", "ZH-P02", "ZH-P03"]
    assert listed(text(client.get("/parks?location=澥浦镇&industry=new_materials"))) == ["ZH-P11"]
    haijiang = listed(text(client.get("/parks?owner=haijiang")))
    assert haijiang == ["ZH-P01", "ZH-P05", "ZH-P09", "ZH-P10", "ZH-P16"]
    assert listed(text(client.get("/parks?stage=construction&location=招宝山街道"))) == ["ZH-P04"]
    assert len(listed(text(client.get("/parks?stage=nonsense")))) == 18  # unknown values are ignored
    assert "没有符合条件的园区" in text(client.get("/parks?stage=planned&industry=pharmaceutical"))


def _sheet(content: bytes):
    book = openpyxl.load_workbook(io.BytesIO(content))
    sheet = book.active
    header = [c.value for c in sheet[1]]
    rows = {row[0].value: row for row in sheet.iter_rows(min_row=2)}
    return book, header, rows


def _save(book) -> bytes:
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def test_export_then_import_round_trip_through_the_page(make_app, clock):
    app = _site(make_app(defs=ROOT / "process_defs", csrf=True), clock)
    head = as_user(app, "jx_head")
    listing = text(head.get("/parks"))
    token = csrf_token(listing)
    assert 'action="/parks/import"' in listing and token

    exported = head.get("/parks/export.xlsx")
    assert exported.status_code == 200 and exported.mimetype.endswith("spreadsheetml.sheet")

    def upload(content: bytes, with_token: bool = True):
        data = {"file": (io.BytesIO(content), "parks.xlsx")}
        if with_token:
            data["csrf_token"] = token
        return head.post("/parks/import", data=data, content_type="multipart/form-data")

    unchanged = upload(exported.data)
    assert unchanged.status_code == 302
    assert "新增 0 个园区，更新 0 个园区" in text(head.get("/parks"))

    book, header, rows = _sheet(exported.data)
    rows["ZH-P07"][header.index("名称")].value = "招宝山智能制造小微园二期（已更名）"
    rows["ZH-P07"][header.index("占地面积(亩)")].value = 150
    edited = _save(book)
    assert upload(edited, with_token=False).status_code == 400  # every POST needs its CSRF token
    assert park_names(app)["ZH-P07"] == "招宝山智能制造小微园二期(示意)"
    assert upload(edited).status_code == 302
    assert park_names(app)["ZH-P07"] == "招宝山智能制造小微园二期（已更名）"
    assert "更新 1 个园区" in text(head.get("/parks"))

    # one good change and two bad rows: nothing is written, the bad rows are named
    book, header, rows = _sheet(edited)
    rows["ZH-P01"][header.index("名称")].value = "不应写入"
    rows["ZH-P03"][header.index("阶段")].value = "bogus"
    rows["ZH-P05"][header.index("厂房面积(m²)")].value = "很多"
    refused = upload(_save(book))
    assert refused.status_code == 422
    html = text(refused)
    assert "导入未生效" in html and "<td>4</td>" in html and "<td>6</td>" in html  # sheet rows
    assert "厂房面积(m²)" in html and "阶段" in html
    assert park_names(app)["ZH-P01"] == "新材料产业园"
    assert upload(b"not a workbook").status_code == 422
    with app.extensions["parkflow"].db.read() as s:
        events = s.scalars(select(SecurityEvent).where(SecurityEvent.event.in_(("export", "import")))).all()
    assert [(e.event, e.outcome) for e in events].count(("import", "refused")) == 2

    for name in ("econ", "sysadmin"):  # 经信局's reviewer may not import; the system admin may
        client = as_user(app, name)
        page = text(client.get("/parks"))
        assert ('action="/parks/import"' in page) == (name == "sysadmin")
        response = client.post("/parks/import", data={"csrf_token": csrf_token(page),
                                                      "file": (io.BytesIO(edited), "parks.xlsx")},
                               content_type="multipart/form-data")
        assert response.status_code == (302 if name == "sysadmin" else 403)


# ---------------------------------------------------------------- a park's dossier
def test_dossier_lists_the_park_and_its_applications(site, clock):
    svc = site.extensions["parkflow"]
    with svc.db.write() as s:
        evaluate_period(s, svc.workflow, "2026-10", clock(), None)
    project = start(site, "park_project_lifecycle", LIFECYCLE, subject_ref="ZH-P07")
    other = start(site, "park_project_lifecycle", {**LIFECYCLE, "park_name": "别的园区"}, subject_ref="ZH-P08")

    econ = text(as_user(site, "econ").get("/parks/ZH-P07"))  # 经信局 reviews the planning
    assert "项目编号 <code>ZH-P07</code>" in econ
    assert f'href="/instances/{project}"' in econ and "国资小微园区项目全生命周期" in econ
    assert f"#{other}" not in econ
    sasac = text(as_user(site, "sasac").get("/parks/ZH-P07"))  # not involved: listed, no link
    assert f"#{project}" in sasac and f'href="/instances/{project}"' not in sasac and "无查看权限" in sasac

    page = text(as_user(site, "econ").get("/parks/ZH-P01"))
    assert "新材料产业园" in page and "8-102" in page and "汇擎智能科技有限公司(示例)" in page
    assert "pf-unit-vacant" in page and "橙色预警" in page and "2026-10" in page
    indicators = chart(page, "chart-indicators")
    assert indicators["categories"] == ["2025Q4", "2026Q1", "2026Q2", "2026Q3", "2026-10"]
    assert indicators["series"][0]["values"][-1] == 69.3


# ---------------------------------------------------------------- matching
def _ranked(html: str) -> list[str]:
    """'park building · unit · floor' of each ranked unit, best first."""
    return [f"{park} {where}" for park, where in re.findall(
        r'class="pf-match-park"[^>]*>([^<]+)</a>.*?<div class="pf-match-where">([^<]+)</div>', html, re.S)]


def test_match_ranks_new_materials_ground_floor_units_first(site):
    promo = as_user(site, "promo1")
    page = promo.get("/parks/match?industry=new_materials&area_needed_m2=1500&acceptable_floors=ground_only")
    assert page.status_code == 200
    ranked = _ranked(text(page))
    assert ranked[0] == "新材料产业园 8号厂房 · 8-102 · 1层"
    assert all(r.endswith("· 1层") for r in ranked)
    html = text(page)
    assert "园区主导产业（新材料）与企业产业一致" in html and "40/40" in html
    assert "不符合可接受楼层" in html  # the upper floors, with the reason they are not offered
    assert promo.get("/parks/match?industry=new_materials&area_needed_m2=abc").status_code == 400


def test_admission_page_links_to_prefilled_matching(site):
    iid = start(site, "enterprise_admission", ADMISSION)
    promo = as_user(site, "promo1")
    page = text(promo.get(f"/instances/{iid}"))
    assert f'href="/parks/match?instance={iid}"' in page and "同质化检查" not in page
    matched = promo.get(f"/parks/match?instance={iid}")
    html = text(matched)
    assert matched.status_code == 200
    assert '<option selected value="new_materials">' in html and 'value="1500"' in html
    assert '<option selected value="ground_only">' in html
    assert _ranked(html)[0] == "新材料产业园 8号厂房 · 8-102 · 1层"
    project = start(site, "park_project_lifecycle", LIFECYCLE)
    assert promo.get(f"/parks/match?instance={project}").status_code == 404  # not an admission
    assert promo.get("/parks/match?instance=999999").status_code == 404


# ---------------------------------------------------------------- homogeneity on a park project
def test_homogeneity_panel_on_a_lifecycle_instance(site):
    iid = start(site, "park_project_lifecycle", LIFECYCLE, subject_ref="ZH-P07")
    page = as_user(site, "econ").get(f"/instances/{iid}")
    assert page.status_code == 200
    html = text(page)
    panel = html[html.index('id="pf-homogeneity"'):]
    panel = panel[:panel.index("</section>")]
    assert "发现 2 个同址同产业园区" in panel
    assert "招宝智造谷" in panel and "ZH-P04" in panel and "ZH-P07" not in panel  # not itself
    assert 'href="/parks/ZH-P02"' in panel
    assert "/parks/match" not in html
    assert "同质化检查" not in text(as_user(site, "submitter").get(f"/instances/{iid}"))

    clear = start(site, "park_project_lifecycle", {**LIFECYCLE, "lead_industry": "医药制造"})
    html = text(as_user(site, "econ").get(f"/instances/{clear}"))
    assert "未发现同址同产业园区" in html and "尚无以该产业为主导的园区" in html
