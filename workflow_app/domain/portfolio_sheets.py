"""The portfolio's other lists in the Excel export, beside the park sheet (`portfolio_store`):
单元 (every unit with its tenant and lease), 企业 (enterprises and where they are), 指标 (the
monitoring figures per park and period) and 预警 (graded warnings with their handling).

Export only: the park sheet is the one that is imported back. Every text cell is written with
`write_string` (string conversion to formulas is off for the workbook), so an enterprise name
beginning with "=" stays text.
"""
from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Iterable, Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from workflow_app.models.monitoring import ParkWarning
from workflow_app.models.park import Building, Enterprise, Park, ParkIndicator, Tenancy, Unit

from .portfolio import UnitStatus

GRADE_ZH = {"red": "红色", "orange": "橙色", "yellow": "黄色"}
WARNING_STATUS_ZH = {"open": "未销号", "closed": "已关闭"}
CLOSE_REASON_ZH = {"recovered": "指标恢复", "superseded": "后续期次接续", "revised": "数据更正后不再预警"}
UNIT_STATUS_ZH = {s.value: s.label_zh for s in UnitStatus}

UNIT_HEADERS = ("园区编号", "园区名称", "楼栋", "单元", "楼层", "面积(m²)", "楼面荷载(kN/m²)",
                "层高(m)", "状态", "使用企业统一社会信用代码", "使用企业", "租期起", "租期止")
ENTERPRISE_HEADERS = ("统一社会信用代码", "企业名称", "所属产业", "就业人数", "所在园区", "使用面积(m²)",
                      "示意数据")
INDICATOR_HEADERS = ("园区编号", "园区名称", "期次", "入驻率(%)", "各层入驻率(%)", "税收(万元)",
                     "产值(万元)", "就业人数", "入驻企业", "产业集聚度(%)")
WARNING_HEADERS = ("园区编号", "园区名称", "期次", "预警等级", "状态", "触发规则", "预警原因",
                   "整改流程编号", "关闭原因", "关闭期次", "预警时间(UTC)", "关闭时间(UTC)")


def _write(book, name: str, headers: Sequence[str], rows: Iterable[Sequence[object]], widths=None) -> int:
    sheet = book.add_worksheet(name)
    bold = book.add_format({"bold": True, "bg_color": "#DDEBF7", "border": 1})
    number = book.add_format({"num_format": "#,##0.####"})
    for col, header in enumerate(headers):
        sheet.write_string(0, col, header, bold)
        sheet.set_column(col, col, (widths or {}).get(col, 14))
    count = 0
    for row, values in enumerate(rows, start=1):
        count = row
        for col, value in enumerate(values):
            if value is None:
                continue
            if isinstance(value, bool):
                sheet.write_boolean(row, col, value)
            elif isinstance(value, (int, float, Decimal)):
                sheet.write_number(row, col, float(value), number)
            elif isinstance(value, (date, datetime)):
                sheet.write_string(row, col, value.isoformat(sep=" ", timespec="minutes")
                                   if isinstance(value, datetime) else value.isoformat())
            else:
                sheet.write_string(row, col, str(value))
    sheet.freeze_panes(1, 2)
    sheet.autofilter(0, 0, max(count, 1), len(headers) - 1)
    return count


def _pct(ratio: Decimal | float) -> Decimal:
    return (Decimal(str(ratio)) * 100).quantize(Decimal("0.01"))


def write_lists(book, session: Session, industry_label=lambda code: code) -> dict[str, int]:
    """Add the four sheets to an open XlsxWriter workbook; rows written per sheet."""
    counts = {}
    leases = {}
    for t in session.scalars(select(Tenancy).order_by(Tenancy.start_date)):
        leases[(t.unit_id, t.enterprise_id)] = t  # the latest lease of the unit's current tenant
    units = session.execute(
        select(Park.code, Park.name, Building.name, Unit, Enterprise)
        .join(Building, Building.park_id == Park.id).join(Unit, Unit.building_id == Building.id)
        .outerjoin(Enterprise, Enterprise.id == Unit.tenant_id)
        .order_by(Park.code, Building.name, Unit.number)).all()

    def unit_row(code, name, building, unit, firm):
        lease = leases.get((unit.id, firm.id)) if firm else None
        return (code, name, building, unit.number, unit.floor, unit.area_m2, unit.floor_load_kn_m2,
                unit.ceiling_height_m, UNIT_STATUS_ZH.get(unit.status, unit.status),
                firm.credit_code if firm else None, firm.name if firm else None,
                lease.start_date if lease else None, lease.end_date if lease else None)

    counts["单元"] = _write(book, "单元", UNIT_HEADERS, (unit_row(*r) for r in units), {1: 22, 10: 30})

    where: dict[int, list[str]] = {}
    area: dict[int, Decimal] = {}
    for code, _name, _building, unit, firm in units:
        if firm is not None:
            if code not in where.setdefault(firm.id, []):
                where[firm.id].append(code)
            area[firm.id] = area.get(firm.id, Decimal(0)) + unit.area_m2
    firms = session.scalars(select(Enterprise).order_by(Enterprise.credit_code)).all()
    counts["企业"] = _write(book, "企业", ENTERPRISE_HEADERS, (
        (f.credit_code, f.name, industry_label(f.industry), f.jobs, "、".join(where.get(f.id, [])) or None,
         area.get(f.id), f.illustrative) for f in firms), {0: 22, 1: 30})

    indicators = session.execute(select(Park.code, Park.name, ParkIndicator)
                                 .join(ParkIndicator, ParkIndicator.park_id == Park.id)
                                 .order_by(Park.code, ParkIndicator.period_end)).all()
    counts["指标"] = _write(book, "指标", INDICATOR_HEADERS, (
        (code, name, i.period, _pct(i.occupancy_rate),
         "；".join(f"{k}层 {_pct(v)}" for k, v in sorted(i.occupancy_by_floor.items(), key=lambda kv: int(kv[0]))),
         i.tax_wan, i.output_wan, i.jobs, i.enterprises, _pct(i.lead_chain_share))
        for code, name, i in indicators), {1: 22, 4: 36})

    warnings = session.execute(select(Park.code, Park.name, ParkWarning)
                               .join(ParkWarning, ParkWarning.park_id == Park.id)
                               .order_by(Park.code, ParkWarning.period_end)).all()
    counts["预警"] = _write(book, "预警", WARNING_HEADERS, (
        (code, name, w.period, GRADE_ZH.get(w.grade, w.grade), WARNING_STATUS_ZH.get(w.status, w.status),
         "、".join(w.rule_ids), "；".join(r.get("zh", "") for r in w.reasons), w.rectification_instance_id,
         CLOSE_REASON_ZH.get(w.closed_reason or "", w.closed_reason), w.closed_by_period,
         w.raised_at, w.closed_at) for code, name, w in warnings), {1: 22, 6: 60})
    return counts
