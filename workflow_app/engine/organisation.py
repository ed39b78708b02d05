"""The organisation catalogue: departments (with the group/subsidiary tree) and roles.

Definitions name departments and roles by code; `process_defs/organisation.yaml` says which codes
exist, what they are called in Chinese and English, and which company belongs to which SOE group
(needed for recusal: a reviewer may not belong to the submitter's group). People and their
memberships live in the database; this file is the structure they hang on.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from . import safe_yaml
from .errors import DefinitionError, Problem
from .schema import Text

DepartmentKind = Literal["bureau", "centre", "soe_group", "subsidiary", "office"]


class _DepartmentDef(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    code: str = Field(pattern=r"^[a-z][a-z0-9_]{0,62}$")
    name: Text
    kind: DepartmentKind
    parent: str | None = None
    coordinator: bool = Field(default=False, description="coordinating body for escalations")


class _RoleDef(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    code: str = Field(pattern=r"^[a-z][a-z0-9_]{0,62}$")
    name: Text


class _OrganisationDef(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    departments: list[_DepartmentDef]
    roles: list[_RoleDef]


@dataclass(frozen=True)
class Department:
    code: str
    name: Text
    kind: str
    parent: str | None
    coordinator: bool


@dataclass(frozen=True)
class Organisation:
    departments: dict[str, Department] = field(default_factory=dict)
    roles: dict[str, Text] = field(default_factory=dict)

    def group_of(self, code: str) -> str:
        """The top of `code`'s tree: the SOE group a subsidiary belongs to (or itself)."""
        seen = set()
        while (dept := self.departments.get(code)) and dept.parent and code not in seen:
            seen.add(code)
            code = dept.parent
        return code

    def same_group(self, a: str, b: str) -> bool:
        return self.group_of(a) == self.group_of(b)

    def coordinators(self) -> list[str]:
        return [d.code for d in self.departments.values() if d.coordinator]


def load_organisation(path: str | Path) -> Organisation:
    path = Path(path)
    located = safe_yaml.load(path.read_bytes(), str(path))
    return parse_organisation(located)


def parse_organisation(located: safe_yaml.Located) -> Organisation:
    try:
        parsed = _OrganisationDef.model_validate(located.data)
    except ValidationError as exc:
        raise DefinitionError([
            Problem(located.source, located.line_of(tuple(err["loc"])),
                    safe_yaml.key_path(tuple(err["loc"])), err["msg"])
            for err in exc.errors()]) from None
    problems = []
    depts: dict[str, Department] = {}
    for i, d in enumerate(parsed.departments):
        if d.code in depts:
            problems.append(Problem(located.source, located.line_of(("departments", i, "code")),
                                    f"departments[{i}].code", f"duplicate department {d.code!r}"))
        depts[d.code] = Department(d.code, d.name, d.kind, d.parent, d.coordinator)
    for i, d in enumerate(parsed.departments):
        if d.parent and d.parent not in depts:
            problems.append(Problem(located.source, located.line_of(("departments", i, "parent")),
                                    f"departments[{i}].parent", f"unknown department {d.parent!r}"))
    roles: dict[str, Text] = {}
    for i, r in enumerate(parsed.roles):
        if r.code in roles:
            problems.append(Problem(located.source, located.line_of(("roles", i, "code")),
                                    f"roles[{i}].code", f"duplicate role {r.code!r}"))
        roles[r.code] = r.name
    if problems:
        raise DefinitionError(problems)
    return Organisation(depts, roles)
