"""Graded warnings for low-efficiency parks (低效载体分级预警): the rules file's format, the
metrics computed from a park's indicators for one period, and the grade with its reasons.

Pure: no Flask, no database. `services.monitoring` feeds it rows and records what it answers.

- `load_rules` reads `process_defs/rules/warning_rules.yaml` with the engine's safe YAML loader,
  validates it with pydantic and compiles every condition once with the engine's safe condition
  compiler over the metric names below (never `eval`); every problem is reported as
  `FILE:LINE: KEY: message` in one `DefinitionError`.
- `compute_metrics` turns a period's raw figures into the names the conditions use. Amounts of a
  quarter or a month are annualised (×4, ×12), so thresholds are per year whatever the period.
  Values are rounded to 0.01 before comparison: what a reviewer reads in a reason is exactly what
  was compared.
- `RuleSet.assess` grades one park: within an indicator family the most severe matching rule
  counts; the park's grade is the most severe family result.
"""
from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from enum import Enum
from pathlib import Path
from typing import Annotated, Mapping

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from workflow_app.engine import safe_yaml
from workflow_app.engine.conditions import (Condition, ConditionEvalError, ConditionSyntaxError,
                                            compile_condition)
from workflow_app.engine.errors import DefinitionError, Problem

from .portfolio import period_end

RULES_FILE = Path("rules") / "warning_rules.yaml"  # relative to the process_defs directory
DEFAULT_RULES = Path(__file__).resolve().parents[2] / "process_defs" / RULES_FILE
_CENT = Decimal("0.01")


class Grade(str, Enum):
    """Warning grades, least severe first (`rank` orders them)."""

    yellow = "yellow"
    orange = "orange"
    red = "red"

    @property
    def rank(self) -> int:
        return {"yellow": 1, "orange": 2, "red": 3}[self.value]

    @property
    def label_zh(self) -> str:
        return {"yellow": "黄色", "orange": "橙色", "red": "红色"}[self.value]


def grade_rank(grade: Grade | str | None) -> int:
    """0 for no warning, then yellow < orange < red."""
    return Grade(grade).rank if grade else 0


# name -> (label, unit). These are the only names a condition or a reason may use.
METRICS: dict[str, tuple[str, str]] = {
    "occupancy_pct": ("入驻率", "%"),
    "ground_floor_occupancy_pct": ("首层入驻率", "%"),
    "upper_floor_occupancy_pct": ("二层及以上入驻率", "%"),
    "tax_per_mu_wan": ("亩均税收", "万元/亩·年"),
    "output_per_mu_wan": ("亩均产出", "万元/亩·年"),
    "jobs": ("就业人数", "人"),
    "jobs_per_10k_m2": ("就业密度", "人/万m²"),
    "enterprises": ("入驻企业", "家"),
    "enterprises_per_10k_m2": ("企业密度", "家/万m²"),
    "lead_chain_share_pct": ("产业集聚度", "%"),
    "years_open": ("投运年数", "年"),
}


# --------------------------------------------------------------------------- the file format

class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Text(_Strict):
    zh: str = Field(min_length=1, max_length=300)
    en: str = Field(default="", max_length=300)


class RuleDef(_Strict):
    id: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,62}$")]
    indicator: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,62}$",
                                    description="family: the most severe matching rule counts")]
    grade: Grade
    when: str = Field(min_length=1, max_length=500, description="safe condition over METRICS")
    reason: Text = Field(description="may quote metrics as {name}")


class RulesDef(_Strict):
    version: int = Field(ge=1)
    title: Text
    source: str = Field(default="", max_length=2000)
    rules: list[RuleDef] = Field(min_length=1)


# --------------------------------------------------------------------------- compiled rules

@dataclass(frozen=True)
class Rule:
    id: str
    indicator: str
    grade: Grade
    condition: Condition
    reason: Text


@dataclass(frozen=True)
class ParkFacts:
    """What the metrics need to know about the park itself. `floor_areas` (unit area per floor)
    weights the upper-floor occupancy; without it floors count equally."""

    code: str
    name: str
    land_mu: Decimal
    factory_area_m2: Decimal
    opened_year: int | None = None
    floor_areas: Mapping[int, Decimal] = field(default_factory=dict)


@dataclass(frozen=True)
class PeriodFigures:
    """A park's indicators for one period, as `ParkIndicator` holds them."""

    period: str
    occupancy_rate: Decimal
    occupancy_by_floor: Mapping[int, Decimal] = field(default_factory=dict)
    tax_wan: Decimal = Decimal(0)
    output_wan: Decimal = Decimal(0)
    jobs: int = 0
    enterprises: int = 0
    lead_chain_share: Decimal = Decimal(0)


@dataclass(frozen=True)
class Hit:
    rule_id: str
    indicator: str
    grade: Grade
    reason_zh: str
    reason_en: str

    def as_dict(self) -> dict:
        return {"rule": self.rule_id, "indicator": self.indicator, "grade": self.grade.value,
                "zh": self.reason_zh, "en": self.reason_en}


@dataclass(frozen=True)
class Assessment:
    park: str
    period: str
    grade: Grade | None
    hits: tuple[Hit, ...]
    metrics: Mapping[str, Decimal | int | None]
    skipped: tuple[tuple[str, str], ...] = ()  # (rule id, why it could not be evaluated)

    @property
    def rule_ids(self) -> list[str]:
        return [h.rule_id for h in self.hits]

    @property
    def reasons(self) -> list[dict]:
        return [h.as_dict() for h in self.hits]

    def metrics_json(self) -> dict[str, str | int | None]:
        """Metrics as JSON-safe values (decimals as text, so hashes and stored rows are stable)."""
        return {k: (str(v) if isinstance(v, Decimal) else v) for k, v in sorted(self.metrics.items())}


@dataclass(frozen=True)
class RuleSet:
    version: int
    title: Text
    rules: tuple[Rule, ...]
    source: str
    content_hash: str  # SHA-256 of the file: recorded with every warning

    def assess(self, park: ParkFacts, figures: PeriodFigures) -> Assessment:
        metrics = compute_metrics(park, figures)
        best: dict[str, Rule] = {}
        skipped: list[tuple[str, str]] = []
        for rule in self.rules:
            try:
                fired = rule.condition.holds(metrics)
            except ConditionEvalError as exc:
                skipped.append((rule.id, str(exc)))
                continue
            current = best.get(rule.indicator)
            if fired and (current is None or rule.grade.rank > current.grade.rank):
                best[rule.indicator] = rule
        order = {r.indicator: i for i, r in reversed(list(enumerate(self.rules)))}
        hits = tuple(Hit(r.id, r.indicator, r.grade, render(r.reason.zh, metrics),
                         render(r.reason.en, metrics))
                     for r in sorted(best.values(), key=lambda r: (-r.grade.rank, order[r.indicator])))
        grade = hits[0].grade if hits else None
        return Assessment(park.code, figures.period, grade, hits, metrics, tuple(skipped))


# --------------------------------------------------------------------------- metrics

def _cents(value: Decimal) -> Decimal:
    return value.quantize(_CENT, rounding=ROUND_HALF_UP)


def annual_factor(period: str) -> int:
    """How many such periods make a year: 4 for "2026Q3", 12 for "2026-10"."""
    return 4 if "Q" in period else 12


def compute_metrics(park: ParkFacts, f: PeriodFigures) -> dict[str, Decimal | int | None]:
    """The names conditions use; None where the park has no such value (no land, no 2F+...)."""
    year = annual_factor(f.period)
    land = Decimal(park.land_mu)
    factory_10k = Decimal(park.factory_area_m2) / 10_000
    floors = {int(k): Decimal(str(v)) for k, v in f.occupancy_by_floor.items()}
    upper = sorted(fl for fl in floors if fl >= 2)
    upper_rate: Decimal | None = None
    if upper:
        weights = [Decimal(park.floor_areas.get(fl, 0)) for fl in upper]
        if all(w > 0 for w in weights):
            upper_rate = sum((floors[fl] * w for fl, w in zip(upper, weights)), Decimal(0)) / sum(weights)
        else:
            upper_rate = sum((floors[fl] for fl in upper), Decimal(0)) / len(upper)
    return {
        "occupancy_pct": _cents(Decimal(f.occupancy_rate) * 100),
        "ground_floor_occupancy_pct": _cents(floors[1] * 100) if 1 in floors else None,
        "upper_floor_occupancy_pct": _cents(upper_rate * 100) if upper_rate is not None else None,
        "tax_per_mu_wan": _cents(Decimal(f.tax_wan) * year / land) if land > 0 else None,
        "output_per_mu_wan": _cents(Decimal(f.output_wan) * year / land) if land > 0 else None,
        "jobs": int(f.jobs),
        "jobs_per_10k_m2": _cents(f.jobs / factory_10k) if factory_10k > 0 else None,
        "enterprises": int(f.enterprises),
        "enterprises_per_10k_m2": _cents(f.enterprises / factory_10k) if factory_10k > 0 else None,
        "lead_chain_share_pct": _cents(Decimal(f.lead_chain_share) * 100),
        "years_open": (period_end(f.period).year - park.opened_year
                       if park.opened_year is not None else None),
    }


_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


def render(template: str, metrics: Mapping[str, object]) -> str:
    """Fill `{name}` with a metric (no format specs, no attribute access: not str.format)."""
    def value(match: re.Match) -> str:
        v = metrics.get(match.group(1))
        if v is None:
            return "—"
        return f"{v:f}" if isinstance(v, Decimal) else str(v)
    return _PLACEHOLDER.sub(value, template)


# --------------------------------------------------------------------------- loading

def load_rules(path: str | Path = DEFAULT_RULES) -> RuleSet:
    path = Path(path)
    return load_rules_text(path.read_bytes(), str(path))


def load_rules_text(text: str | bytes, source: str = "<string>") -> RuleSet:
    """Parse, validate and compile; raise DefinitionError listing every problem with its line."""
    raw = text.encode("utf-8") if isinstance(text, str) else text
    located = safe_yaml.load(raw, source)
    try:
        parsed = RulesDef.model_validate(located.data)
    except ValidationError as exc:
        raise DefinitionError([_pydantic_problem(located, e) for e in exc.errors()]) from None
    problems: list[Problem] = []

    def problem(path: tuple, message: str) -> None:
        problems.append(Problem(located.source, located.line_of(path), safe_yaml.key_path(path),
                                message))

    rules: list[Rule] = []
    seen: set[str] = set()
    grades: set[tuple[str, Grade]] = set()
    for i, r in enumerate(parsed.rules):
        at = ("rules", i)
        if r.id in seen:
            problem(at + ("id",), f"duplicate rule {r.id!r}")
        seen.add(r.id)
        if (r.indicator, r.grade) in grades:
            problem(at + ("grade",), f"indicator {r.indicator!r} already has a {r.grade.value} rule")
        grades.add((r.indicator, r.grade))
        for lang in ("zh", "en"):
            for name in _PLACEHOLDER.findall(getattr(r.reason, lang)):
                if name not in METRICS:
                    problem(at + ("reason", lang), f"unknown metric {{{name}}}")
        try:
            condition = compile_condition(r.when, frozenset(METRICS))
        except ConditionSyntaxError as exc:
            problem(at + ("when",), str(exc))
            continue
        rules.append(Rule(r.id, r.indicator, r.grade, condition, r.reason))
    if problems:
        raise DefinitionError(problems)
    return RuleSet(parsed.version, parsed.title, tuple(rules), source,
                   hashlib.sha256(raw).hexdigest())


def rules_files(targets: list[Path]) -> tuple[list[Path], list[Path]]:
    """Split `flask defs validate` targets: (rules files to check here, the rest for the process
    loader). A directory contributes its `rules/*.yaml`; a file inside a `rules` folder is one."""
    rules, rest = [], []
    for target in targets:
        if target.is_dir():
            rules.extend(sorted((target / RULES_FILE.parent).glob("*.yaml")))
            rest.append(target)
        elif target.parent.name == RULES_FILE.parent.name:
            rules.append(target)
        else:
            rest.append(target)
    return rules, rest


def validate_rules_files(paths: list[Path]) -> list[Problem]:
    """Every problem of every rules file (empty when all are valid)."""
    problems: list[Problem] = []
    for path in paths:
        try:
            load_rules(path)
        except FileNotFoundError:
            problems.append(Problem(str(path), 1, "<file>", "file not found"))
        except DefinitionError as exc:
            problems.extend(exc.problems)
    return problems


def _pydantic_problem(located: safe_yaml.Located, err: dict) -> Problem:
    loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and p.startswith("function-")))
    message = err["msg"].removeprefix("Value error, ")
    if err["type"] == "extra_forbidden":
        message = "unknown key"
    return Problem(located.source, located.line_of(loc), safe_yaml.key_path(loc), message)
