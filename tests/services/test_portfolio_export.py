"""The portfolio workbook beyond the park sheet: units with their tenants, enterprises with their
parks, indicators per period and the graded warnings, read back with openpyxl; the park sheet
still imports back unchanged."""
from __future__ import annotations

import io
from datetime import datetime, timezone
from pathlib import Path

import openpyxl
from sqlalchemy import select

from workflow_app.domain.portfolio import load_file
from workflow_app.domain.portfolio_store import export_xlsx, import_xlsx, load_portfolio
from workflow_app.engine.calendar import WorkingCalendar
from workflow_app.models import Enterprise
from workflow_app.services.definitions import DefinitionStore
from workflow_app.services.matching import industry_labels
from workflow_app.services.monitoring import evaluate_period
from workflow_app.services.workflow import Workflow

ROOT = Path(__file__).resolve().parents[2]
NOW = datetime(2026, 11, 5, 2, 0, tzinfo=timezone.utc)


def rows(book, name):
    return [list(r) for r in book[name].iter_rows(values_only=True)]


def test_the_workbook_has_every_key_list(db, clock):
    clock.now = NOW
    store = DefinitionStore(ROOT / "process_defs")
    workflow = Workflow(store, WorkingCalendar.from_directory(ROOT / "process_defs" / "calendars"), clock)
    data = load_file(org=store.organisation)
    with db.write() as s:
        store.sync(s, NOW)
        load_portfolio(s, data)
        s.add(Enterprise(credit_code="DEMO00000000000099", name="=HYPERLINK(\"x\")(示例)",
                         industry="new_materials", jobs=3, illustrative=True))
        evaluate_period(s, workflow, "2026-10", NOW, None)
    labels = industry_labels()
    with db.read() as s:
        content = export_xlsx(s, lambda code: labels.get(code, code))
    book = openpyxl.load_workbook(io.BytesIO(content))
    assert book.sheetnames == ["园区", "单元", "企业", "指标", "预警"]

    units = rows(book, "单元")
    assert len(units) - 1 == sum(len(b.units) for p in data.parks for b in p.buildings)
    by_key = {(r[0], r[3]): r for r in units[1:]}
    assert by_key[("ZH-P01", "8-102")][8] == "空置" and by_key[("ZH-P01", "8-102")][9] is None
    let = by_key[("ZH-P01", "1-101")]
    assert (let[8], let[9], let[11], let[12]) == ("出租", "DEMO00000000000001", "2024-05-01", "2027-04-30")
    assert sum(r[5] for r in units[1:] if r[0] in ("ZH-P01", "ZH-P02", "ZH-P03")) == 220_000  # the seed's 22万 m²

    firms = {r[0]: r for r in rows(book, "企业")[1:]}
    assert len(firms) == len(data.enterprises) + 1
    assert firms["DEMO00000000000001"][2] == "智能制造" and firms["DEMO00000000000001"][4] == "ZH-P01"
    assert firms["DEMO00000000000099"][1] == "=HYPERLINK(\"x\")(示例)"  # text, never a formula
    assert firms["DEMO00000000000099"][4] is None

    indicators = rows(book, "指标")
    assert len(indicators) - 1 == len(data.indicators)
    p01 = next(r for r in indicators if r[:3] == ["ZH-P01", "新材料产业园", "2026-10"])
    assert p01[3] == 69.32 and p01[4].startswith("1层 96.74；2层 52.78")

    warnings = rows(book, "预警")[1:]
    assert [(r[0], r[2], r[3], r[4]) for r in warnings] == [
        ("ZH-P01", "2026-10", "橙色", "未销号"), ("ZH-P02", "2026-10", "橙色", "未销号"),
        ("ZH-P03", "2026-10", "橙色", "未销号")]
    assert "二层及以上入驻率" in warnings[0][6]

    with db.write() as s:  # the park sheet still round-trips
        assert not import_xlsx(s, content).changed
