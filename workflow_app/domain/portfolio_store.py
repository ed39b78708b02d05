"""Putting the park portfolio into the database, and the park list in and out of Excel.

`load_portfolio` upserts on natural keys (park code; building name in its park; unit number in
its building; credit code; unit + lease start; park + period), so loading the same data twice
changes nothing. It flushes (later rows need the ids of earlier ones) but never commits: the caller
owns the transaction. Rows no longer in the data are left alone — the database may hold live edits,
and removing a park is a decision for a person, not for a loader.

Excel: `export_xlsx` writes the park list (and, export only, the lists of `portfolio_sheets`) with XlsxWriter, every text cell with `write_string` and
string conversion off, so a name starting with "=" stays text and never becomes a formula.
`import_xlsx` reads such a sheet back with openpyxl, validates every row with the same pydantic
model as the YAML file (`ParkDef`) and writes nothing unless every row is valid.
"""
from __future__ import annotations

import io
import zipfile
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

import openpyxl
import xlsxwriter
from openpyxl.utils import get_column_letter
from openpyxl.utils.exceptions import InvalidFileException
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from workflow_app.engine.errors import DefinitionError, Problem
from workflow_app.engine.organisation import Organisation
from workflow_app.models.park import (Building, Enterprise, Park, ParkIndicator, Tenancy, Unit)

from .portfolio import BUILDER_KINDS, ParkDef, ParkStage, PortfolioDef, UnitStatus

SHEET = "园区"
MAX_XLSX_BYTES = 5 * 1024 * 1024
MAX_ROWS = 2000
# (attribute, header) in sheet order; the import also accepts the attribute name as header
COLUMNS = (
    ("code", "编号"), ("name", "名称"), ("stage", "阶段"), ("owner_group", "建设主体"),
    ("location", "所在街镇"), ("lead_industry", "主导产业"), ("land_mu", "占地面积(亩)"),
    ("floor_area_m2", "建筑面积(m²)"), ("factory_area_m2", "厂房面积(m²)"),
    ("opened_year", "投运年份"), ("illustrative", "示意数据"), ("notes", "备注"),
)
REQUIRED = {"code", "name", "stage", "owner_group", "location", "lead_industry",
            "floor_area_m2", "factory_area_m2"}
NUMBERS = {"land_mu", "floor_area_m2", "factory_area_m2"}
_TRUE = {"true", "1", "是", "yes", "y"}
_FALSE = {"false", "0", "否", "no", "n", ""}


@dataclass
class LoadStats:
    """Rows created and updated, per kind ("park", "unit", ...)."""

    created: Counter = field(default_factory=Counter)
    updated: Counter = field(default_factory=Counter)

    @property
    def changed(self) -> bool:
        return bool(+self.created or +self.updated)


def _apply(obj, values: dict) -> bool:
    """Set the attributes that differ; say whether any did (Decimal 130 == 130.00)."""
    changed = False
    for name, value in values.items():
        if getattr(obj, name) != value:
            setattr(obj, name, value)
            changed = True
    return changed


def _upsert(session: Session, stats: LoadStats, kind: str, existing: dict, key, cls, values: dict):
    obj = existing.get(key)
    if obj is None:
        obj = cls(**values)
        session.add(obj)
        existing[key] = obj
        stats.created[kind] += 1
    elif _apply(obj, values):
        stats.updated[kind] += 1
    return obj


def _park_values(p: ParkDef) -> dict:
    return dict(code=p.code, name=p.name, stage=p.stage.value, owner_group=p.owner_group,
                location=p.location, lead_industry=p.lead_industry, land_mu=p.land_mu,
                floor_area_m2=p.floor_area_m2, factory_area_m2=p.factory_area_m2,
                opened_year=p.opened_year, notes=p.notes, illustrative=p.illustrative)


def _upsert_parks(session: Session, stats: LoadStats, parks: list[ParkDef]) -> dict[str, Park]:
    existing = {p.code: p for p in session.scalars(select(Park))}
    for p in parks:
        _upsert(session, stats, "park", existing, p.code, Park, _park_values(p))
    session.flush()
    return existing


def load_portfolio(session: Session, data: PortfolioDef) -> LoadStats:
    """Upsert everything in `data`; idempotent; flushes, does not commit."""
    stats = LoadStats()
    enterprises = {e.credit_code: e for e in session.scalars(select(Enterprise))}
    for e in data.enterprises:
        _upsert(session, stats, "enterprise", enterprises, e.credit_code, Enterprise,
                dict(credit_code=e.credit_code, name=e.name, industry=e.industry, jobs=e.jobs,
                     illustrative=e.illustrative))
    parks = _upsert_parks(session, stats, data.parks)  # flushes: ids from here on

    buildings = {(b.park_id, b.name): b for b in session.scalars(select(Building))}
    for p in data.parks:
        for b in p.buildings:
            _upsert(session, stats, "building", buildings, (parks[p.code].id, b.name), Building,
                    dict(park_id=parks[p.code].id, name=b.name, floors=b.floors))
    session.flush()

    units = {(u.building_id, u.number): u for u in session.scalars(select(Unit))}
    leases = []  # (unit key, enterprise, UnitDef) of let units, once unit ids exist
    for p in data.parks:
        for b in p.buildings:
            building_id = buildings[(parks[p.code].id, b.name)].id
            for u in b.units:
                tenant = enterprises[u.tenant] if u.tenant else None
                _upsert(session, stats, "unit", units, (building_id, u.number), Unit, dict(
                    building_id=building_id, number=u.number, floor=u.floor, area_m2=u.area_m2,
                    floor_load_kn_m2=u.floor_load_kn_m2, ceiling_height_m=u.ceiling_height_m,
                    status=u.status.value, tenant_id=tenant.id if tenant else None))
                if u.status is UnitStatus.let:
                    leases.append(((building_id, u.number), tenant, u))
    session.flush()

    tenancies = {(t.unit_id, t.start_date): t for t in session.scalars(select(Tenancy))}
    for unit_key, tenant, u in leases:
        unit_id = units[unit_key].id
        _upsert(session, stats, "tenancy", tenancies, (unit_id, u.since), Tenancy,
                dict(unit_id=unit_id, enterprise_id=tenant.id, start_date=u.since,
                     end_date=u.until))

    indicators = {(i.park_id, i.period): i for i in session.scalars(select(ParkIndicator))}
    for ind in data.indicators:
        park_id = parks[ind.park].id
        _upsert(session, stats, "indicator", indicators, (park_id, ind.period), ParkIndicator, dict(
            park_id=park_id, period=ind.period, period_end=ind.period_end,
            occupancy_rate=ind.occupancy_rate,
            # JSON keys are strings; floats are enough for a chart series
            occupancy_by_floor={str(f): float(r) for f, r in sorted(ind.occupancy_by_floor.items())},
            tax_wan=ind.tax_wan, output_wan=ind.output_wan, jobs=ind.jobs,
            enterprises=ind.enterprises, lead_chain_share=ind.lead_chain_share))
    session.flush()
    return stats


# --------------------------------------------------------------------------- Excel

def export_xlsx(session: Session, industry_label=None) -> bytes:
    """The portfolio as an .xlsx workbook: the park list (sheet 园区, ordered by code, the sheet
    `import_xlsx` reads back) and the lists of `portfolio_sheets` (单元, 企业, 指标, 预警)."""
    from .portfolio_sheets import write_lists

    buffer = io.BytesIO()
    book = xlsxwriter.Workbook(buffer, {"in_memory": True, "strings_to_formulas": False,
                                        "strings_to_urls": False, "strings_to_numbers": False})
    sheet = book.add_worksheet(SHEET)
    bold = book.add_format({"bold": True, "bg_color": "#DDEBF7", "border": 1})
    number = book.add_format({"num_format": "#,##0.##"})
    for col, (_, header) in enumerate(COLUMNS):
        sheet.write_string(0, col, header, bold)
        sheet.set_column(col, col, 24 if col in (1, 11) else 14)
    parks = session.scalars(select(Park).order_by(Park.code)).all()
    for row, park in enumerate(parks, start=1):
        for col, (attr, _) in enumerate(COLUMNS):
            value = getattr(park, attr)
            if value is None:
                continue
            if isinstance(value, bool):
                sheet.write_boolean(row, col, value)
            elif isinstance(value, Decimal):
                sheet.write_number(row, col, float(value), number)
            elif isinstance(value, int):
                sheet.write_number(row, col, value)
            else:
                sheet.write_string(row, col, str(value))
    stage_col = next(i for i, (a, _) in enumerate(COLUMNS) if a == "stage")
    sheet.data_validation(1, stage_col, max(len(parks), 1) + 200, stage_col, {
        "validate": "list", "source": [s.value for s in ParkStage]})
    sheet.freeze_panes(1, 1)
    sheet.autofilter(0, 0, max(len(parks), 1), len(COLUMNS) - 1)
    write_lists(book, session, industry_label or (lambda code: code))
    book.close()
    return buffer.getvalue()


def import_xlsx(session: Session, content: bytes, source: str = "parks.xlsx",
                catalogue: PortfolioDef | None = None,
                org: Organisation | None = None) -> LoadStats:
    """Upsert the parks of a sheet written by `export_xlsx` (or edited from one).

    Raises DefinitionError with `FILE:ROW: COLUMN: message` for every bad cell and writes nothing
    then. With `catalogue` (and `org`), locations, industries and builders are checked as well."""
    parks = read_parks_xlsx(content, source, catalogue, org)
    stats = LoadStats()
    _upsert_parks(session, stats, parks)
    return stats


def read_parks_xlsx(content: bytes, source: str = "parks.xlsx",
                    catalogue: PortfolioDef | None = None,
                    org: Organisation | None = None) -> list[ParkDef]:
    """Validate a park sheet without touching the database."""
    if len(content) > MAX_XLSX_BYTES:
        raise DefinitionError([Problem(source, 1, "<file>",
                                       f"larger than {MAX_XLSX_BYTES // (1024 * 1024)} MiB")])
    try:
        book = openpyxl.load_workbook(io.BytesIO(content), read_only=True, data_only=True)
    except (zipfile.BadZipFile, InvalidFileException, KeyError, OSError) as exc:
        raise DefinitionError([Problem(source, 1, "<file>", f"not an .xlsx workbook: {exc}")]) from None
    try:
        sheet = book[SHEET] if SHEET in book.sheetnames else book.worksheets[0]
        rows = sheet.iter_rows(values_only=True)
        header = next(rows, None) or ()
        problems: list[Problem] = []
        by_header = {h: a for a, h in COLUMNS} | {a: a for a, _ in COLUMNS}
        columns: list[str | None] = []
        for i, cell in enumerate(header):
            name = str(cell).strip() if cell is not None else ""
            if name and name not in by_header:
                problems.append(Problem(source, 1, f"{get_column_letter(i + 1)}1",
                                        f"unknown column {name!r}"))
            columns.append(by_header.get(name))
        missing = REQUIRED - set(columns)
        if missing:
            problems.append(Problem(source, 1, "<header>",
                                    f"missing columns: {', '.join(sorted(missing))}"))
        if problems:
            raise DefinitionError(problems)
        parks: list[ParkDef] = []
        seen: dict[str, int] = {}
        for number, values in enumerate(rows, start=2):
            if number > MAX_ROWS + 1:
                raise DefinitionError([Problem(source, number, "<sheet>",
                                               f"more than {MAX_ROWS} rows")])
            if all(v is None or (isinstance(v, str) and not v.strip()) for v in values):
                continue
            park = _row(source, number, columns, values, problems)
            if park is None:
                continue
            if park.code in seen:
                problems.append(Problem(source, number, "code",
                                        f"duplicate park {park.code!r} (row {seen[park.code]})"))
            seen[park.code] = number
            problems.extend(_row_refs(source, number, park, catalogue, org))
            parks.append(park)
    finally:
        book.close()
    if problems:
        raise DefinitionError(problems)
    return parks


def _row(source: str, number: int, columns: list[str | None], values: tuple,
         problems: list[Problem]) -> ParkDef | None:
    raw: dict = {}
    bad = False
    for attr, value in zip(columns, values):
        if attr is None or value is None:
            continue
        if isinstance(value, str):
            value = value.strip()
        try:
            raw[attr] = _cell(attr, value)
        except ValueError as exc:
            problems.append(Problem(source, number, attr, str(exc)))
            bad = True
    if bad:
        return None
    try:
        return ParkDef.model_validate(raw)
    except ValidationError as exc:
        for err in exc.errors():
            key = ".".join(str(p) for p in err["loc"]) or "<row>"
            problems.append(Problem(source, number, key, err["msg"].removeprefix("Value error, ")))
        return None


def _cell(attr: str, value):
    """Spreadsheet cell -> the type ParkDef expects (numbers come back as floats)."""
    if attr in NUMBERS:
        try:
            if isinstance(value, bool):
                raise InvalidOperation
            return Decimal(str(value))
        except InvalidOperation:
            raise ValueError(f"not a number: {value!r}") from None
    if attr == "opened_year":
        if value == "":
            return None
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str) and value.isdigit():
            return int(value)
        return value
    if attr == "illustrative":
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in _TRUE or text in _FALSE:
            return text in _TRUE
        raise ValueError(f"not yes/no: {value!r}")
    if attr == "stage" and isinstance(value, str):
        return next((s.value for s in ParkStage if value in (s.value, s.label_zh)), value)
    return value if isinstance(value, str) else str(value)


def _row_refs(source: str, number: int, park: ParkDef, catalogue: PortfolioDef | None,
              org: Organisation | None) -> list[Problem]:
    problems = []
    if catalogue is not None:
        if park.location not in catalogue.locations:
            problems.append(Problem(source, number, "location",
                                    f"unknown location {park.location!r}"))
        if park.lead_industry not in {i.code for i in catalogue.industries}:
            problems.append(Problem(source, number, "lead_industry",
                                    f"unknown industry {park.lead_industry!r}"))
        if org is not None:
            builders = {b.code for b in catalogue.other_builders} | {
                c for c, d in org.departments.items() if d.kind in BUILDER_KINDS}
            if park.owner_group not in builders:
                problems.append(Problem(source, number, "owner_group",
                                        f"unknown builder {park.owner_group!r}"))
    return problems
