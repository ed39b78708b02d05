"""The park portfolio: parks, their buildings and units, the enterprises in them, tenancies,
and periodic indicators (入驻率 by floor, tax, output, jobs, 产业集聚度).

Areas and money are `Numeric` so that sums shown to the district (万元, m², 亩) are exact; only
the per-floor occupancy breakdown, which is a chart series, is JSON. Natural keys (park code,
building name in its park, unit number in its building, credit code, park + period) are unique
because `domain.portfolio_store.load_portfolio` upserts on them. Stage and unit status are
stored as their enum values (`domain.portfolio.ParkStage` / `UnitStatus`), checked by the database.
"""
from __future__ import annotations

from datetime import date
from decimal import Decimal

from sqlalchemy import (CheckConstraint, Date, ForeignKey, Index, Numeric, String, Text,
                        UniqueConstraint)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from .base import Base

AREA = Numeric(12, 2)   # m², up to 9,999,999,999.99
MONEY = Numeric(14, 2)  # 万元
RATIO = Numeric(5, 4)   # 0.0000 .. 1.0000

STAGES = ("planned", "construction", "operating")
UNIT_STATUSES = ("vacant", "let", "sold")


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class Park(Base):
    __tablename__ = "park"
    __table_args__ = (
        CheckConstraint(_in("stage", STAGES), name="stage"),
        CheckConstraint("land_mu >= 0 AND floor_area_m2 >= 0 AND factory_area_m2 >= 0",
                        name="areas_non_negative"),
        # dashboard filters: by stage, then by location / builder group / lead industry
        Index("ix_park_stage_location", "stage", "location"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(16), unique=True)  # ZH-P01
    name: Mapped[str] = mapped_column(String(200))
    stage: Mapped[str] = mapped_column(String(20))  # planned | construction | operating
    owner_group: Mapped[str] = mapped_column(String(64), index=True)  # builder, department code
    location: Mapped[str] = mapped_column(String(32))  # 街道 / 镇
    lead_industry: Mapped[str] = mapped_column(String(64), index=True)  # industry code
    land_mu: Mapped[Decimal] = mapped_column(AREA, default=Decimal(0))
    floor_area_m2: Mapped[Decimal] = mapped_column(AREA)  # 建筑面积
    factory_area_m2: Mapped[Decimal] = mapped_column(AREA)  # 厂房建筑面积
    opened_year: Mapped[int | None] = mapped_column()
    notes: Mapped[str] = mapped_column(Text, default="")
    # True when the figures are our split of a total the reply gives (not reported per park)
    illustrative: Mapped[bool] = mapped_column(default=False)

    buildings: Mapped[list[Building]] = relationship(
        back_populates="park", cascade="all, delete-orphan", order_by="Building.name")
    indicators: Mapped[list[ParkIndicator]] = relationship(
        back_populates="park", cascade="all, delete-orphan", order_by="ParkIndicator.period_end")


class Building(Base):
    __tablename__ = "park_building"
    __table_args__ = (
        UniqueConstraint("park_id", "name", name="uq_park_building_park_name"),
        CheckConstraint("floors >= 1", name="floors_positive"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    park_id: Mapped[int] = mapped_column(ForeignKey("park.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(100))  # 3号厂房
    floors: Mapped[int] = mapped_column()

    park: Mapped[Park] = relationship(back_populates="buildings")
    units: Mapped[list[Unit]] = relationship(
        back_populates="building", cascade="all, delete-orphan", order_by="Unit.number")


class Enterprise(Base):
    __tablename__ = "enterprise"

    id: Mapped[int] = mapped_column(primary_key=True)
    credit_code: Mapped[str] = mapped_column(String(18), unique=True)  # 统一社会信用代码
    name: Mapped[str] = mapped_column(String(200))
    industry: Mapped[str] = mapped_column(String(64), index=True)  # for 产业链精准匹配
    jobs: Mapped[int] = mapped_column(default=0)
    illustrative: Mapped[bool] = mapped_column(default=False)  # invented demo enterprise


class Unit(Base):
    """A lettable/saleable factory unit on one floor. `tenant_id` is who occupies it now:
    the tenant of a let unit or the owner of a sold one (分割销售)."""

    __tablename__ = "park_unit"
    __table_args__ = (
        UniqueConstraint("building_id", "number", name="uq_park_unit_building_number"),
        CheckConstraint(_in("status", UNIT_STATUSES), name="status"),
        CheckConstraint("area_m2 > 0", name="area_positive"),
        CheckConstraint("floor >= 1", name="floor_positive"),
        CheckConstraint("(status = 'vacant') = (tenant_id IS NULL)", name="tenant_matches_status"),
        # occupancy by floor: per building, group by floor and status
        Index("ix_park_unit_building_floor", "building_id", "floor", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    building_id: Mapped[int] = mapped_column(ForeignKey("park_building.id", ondelete="CASCADE"))
    number: Mapped[str] = mapped_column(String(20))  # 3-201: building 3, floor 2, unit 01
    floor: Mapped[int] = mapped_column()
    area_m2: Mapped[Decimal] = mapped_column(AREA)
    floor_load_kn_m2: Mapped[Decimal] = mapped_column(Numeric(6, 2))  # 楼面荷载
    ceiling_height_m: Mapped[Decimal] = mapped_column(Numeric(5, 2))  # 层高
    status: Mapped[str] = mapped_column(String(10), default="vacant")  # vacant | let | sold
    tenant_id: Mapped[int | None] = mapped_column(
        ForeignKey("enterprise.id", ondelete="SET NULL"), index=True)

    building: Mapped[Building] = relationship(back_populates="units")
    tenant: Mapped[Enterprise | None] = relationship()


class Tenancy(Base):
    """One lease of a unit; history stays when the tenant changes (a new row, same unit)."""

    __tablename__ = "tenancy"
    __table_args__ = (
        UniqueConstraint("unit_id", "start_date", name="uq_tenancy_unit_start"),
        CheckConstraint("end_date IS NULL OR end_date >= start_date", name="dates_ordered"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    unit_id: Mapped[int] = mapped_column(ForeignKey("park_unit.id", ondelete="CASCADE"))
    enterprise_id: Mapped[int] = mapped_column(
        ForeignKey("enterprise.id", ondelete="CASCADE"), index=True)
    start_date: Mapped[date] = mapped_column(Date)
    end_date: Mapped[date | None] = mapped_column(Date)

    unit: Mapped[Unit] = relationship()
    enterprise: Mapped[Enterprise] = relationship()


class ParkIndicator(Base):
    """Monitoring figures of one park for one period ("2026Q3" or "2026-10"); amounts are for
    that period. `period_end` (last day of the period) orders mixed quarterly/monthly rows."""

    __tablename__ = "park_indicator"
    __table_args__ = (
        UniqueConstraint("park_id", "period", name="uq_park_indicator_park_period"),
        CheckConstraint("occupancy_rate >= 0 AND occupancy_rate <= 1", name="occupancy_ratio"),
        CheckConstraint("lead_chain_share >= 0 AND lead_chain_share <= 1", name="lead_share_ratio"),
        Index("ix_park_indicator_park_end", "park_id", "period_end"),  # latest per park
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    park_id: Mapped[int] = mapped_column(ForeignKey("park.id", ondelete="CASCADE"))
    period: Mapped[str] = mapped_column(String(7))
    period_end: Mapped[date] = mapped_column(Date)
    occupancy_rate: Mapped[Decimal] = mapped_column(RATIO)  # 入驻率, by area
    occupancy_by_floor: Mapped[dict] = mapped_column(default=dict)  # {"1": 0.97, "2": 0.5, ...}
    tax_wan: Mapped[Decimal] = mapped_column(MONEY, default=Decimal(0))
    output_wan: Mapped[Decimal] = mapped_column(MONEY, default=Decimal(0))
    jobs: Mapped[int] = mapped_column(default=0)
    enterprises: Mapped[int] = mapped_column(default=0)
    lead_chain_share: Mapped[Decimal] = mapped_column(RATIO, default=Decimal(0))  # 产业集聚度

    park: Mapped[Park] = relationship(back_populates="indicators")
