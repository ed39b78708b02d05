"""Driving one instance through the pure `Runtime` the way the service does, without a database.

`Run` gives new tasks ids, keeps every task ever made (the service's task table), emulates the
service's rollback when an action is refused, and can `reload()` the instance from its stored form
(JSON-able rows, the definition re-read from its text, decided steps recomputed from the task
rows) — the round trip STYLE.md rule 10 asks for.
"""
from __future__ import annotations

import itertools
import json
from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path

from tests.engine.directory import MemoryDirectory
from workflow_app.engine.effects import Effect, Request
from workflow_app.engine.loader import load_file, load_text
from workflow_app.engine.organisation import load_organisation
from workflow_app.engine.permissions import counts_as_decision
from workflow_app.engine.runtime import Runtime
from workflow_app.engine.state import Actor, InstanceState, InstanceStatus, Origin, TaskState, TaskStatus

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures"
ORG = load_organisation(ROOT / "process_defs" / "organisation.yaml")
NOW = datetime(2026, 3, 2, 1, 0, tzinfo=timezone.utc)


def spec(name: str):
    return load_file(FIXTURES / f"{name}.yaml", ORG)


# Everyone the fixtures route to. 1 submits for 镇投 (zhentou); 11 for its subsidiary 星寓
# (xingyu); 9 for 海江 (haijiang); 12 submits for zhentou but is also an invest_promo reviewer
# (self-approval). 2, 3 invest_promo reviewers; 4 econ_it; 5, 6 dev_reform; 7 sasac head; 8 sasac
# head who also works for 星寓 (recusal); 21 zhentou head; 22 haijiang head; 30-32 audit compliance
# (a committee of three), 30 also a sasac head (distinct deciders); 40 an econ_it operator (holds
# no reviewing role); 99 the system administrator.
PEOPLE = {
    1: [("zhentou", "submitter")],
    11: [("xingyu", "submitter")],
    9: [("haijiang", "submitter")],
    12: [("zhentou", "submitter"), ("invest_promo", "reviewer")],
    2: [("invest_promo", "reviewer")],
    3: [("invest_promo", "reviewer")],
    4: [("econ_it", "reviewer")],
    5: [("dev_reform", "reviewer")],
    6: [("dev_reform", "reviewer")],
    7: [("sasac", "head")],
    8: [("sasac", "head"), ("xingyu", "reviewer")],
    21: [("zhentou", "head")],
    22: [("haijiang", "head")],
    30: [("audit", "compliance"), ("sasac", "head")],
    31: [("audit", "compliance")],
    32: [("audit", "compliance")],
    40: [("econ_it", "operator")],
    99: [],
}
ADMINS = {99: "system"}


class Run:
    def __init__(self, spec_or_name, data: dict, *, submitter: int = 1, department: str = "zhentou",
                 people: dict | None = None):
        self.spec = spec(spec_or_name) if isinstance(spec_or_name, str) else spec_or_name
        self.directory = MemoryDirectory(people or PEOPLE)
        self.runtime = Runtime(self.directory)
        self.ids = itertools.count(1)
        self.history: dict[int, TaskState] = {}
        self.effects: list[Effect] = []
        self.inst, effect = self.runtime.start(self.spec, data, self.actor(submitter), department, NOW)
        self._settle(effect)

    # -- people -----------------------------------------------------------------------------
    def actor(self, user: int, on_behalf_of: int | None = None) -> Actor:
        extra = {}
        if on_behalf_of is not None:
            extra = dict(on_behalf_of=on_behalf_of,
                         on_behalf_memberships=frozenset(self.directory.memberships.get(on_behalf_of, ())))
        return self.directory.actor(user, admin_role=ADMINS.get(user), **extra)

    # -- acting -----------------------------------------------------------------------------
    def act(self, who: int, action: str, task: TaskState | int | None = None, *,
            on_behalf_of: int | None = None, **kw) -> Effect:
        task_id = task.id if isinstance(task, TaskState) else task
        tasks = list(self.inst.tasks)
        fields = [dict(vars(t)) for t in tasks]
        saved = (dict(self.inst.data), self.inst.round, self.inst.current_step, self.inst.status,
                 dict(self.inst.decided_steps), self.inst.spec)
        try:
            effect = self.runtime.act(self.inst, Request(action, task_id, **kw),
                                      self.actor(who, on_behalf_of), NOW)
        except Exception:  # the service rolls the transaction back: so do we, in place
            self.inst.tasks = tasks
            for t, before in zip(tasks, fields):
                vars(t).update(before)
            (self.inst.data, self.inst.round, self.inst.current_step, self.inst.status,
             self.inst.decided_steps, self.inst.spec) = saved
            raise
        self._settle(effect)
        return effect

    def _settle(self, effect: Effect) -> None:
        for t in effect.added:
            t.id = next(self.ids)
        for t in effect.changed + effect.added:
            self.history[t.id] = t
        self.effects.append(effect)

    # -- looking ----------------------------------------------------------------------------
    @property
    def step(self) -> str:
        return self.inst.current_step

    @property
    def status(self) -> InstanceStatus:
        return self.inst.status

    def open(self, step: str | None = None) -> list[TaskState]:
        return [t for t in self.inst.tasks if t.status is TaskStatus.open and (step is None or t.step == step)]

    def task_of(self, user: int) -> TaskState:
        """The open task `user` may act on (their own, or a queue task of their role)."""
        for t in self.open():
            if self.runtime.may_decide(self.inst, t, self.actor(user)) is None:
                return t
        raise LookupError(f"user {user} has no open task; open: {self.open()}")

    def decide(self, user: int, action: str = "approve", **kw) -> Effect:
        return self.act(user, action, self.task_of(user), **kw)

    # -- the stored form ----------------------------------------------------------------------
    def reload(self) -> None:
        """Rebuild the instance from what the service stores (rows as JSON, the definition from
        its source text), as a new request in another process would see it."""
        inst = self.inst
        row = json.loads(json.dumps({
            "status": inst.status.value, "current_step": inst.current_step, "round": inst.round,
            "form_data": inst.data, "submitter": inst.submitter,
            "submitter_department": inst.submitter_department, "parent_id": inst.parent_id}))
        tasks = json.loads(json.dumps([{**asdict(t), "completed_at": None}
                                       for t in self.history.values()], default=str))
        fresh = load_text(self.spec.source_text, self.spec.source)
        assert fresh.content_hash == self.spec.content_hash
        decided: dict[int, set[str]] = {}
        for t in tasks:
            if t["status"] == "done" and counts_as_decision(t["decision"]):
                for user in {t["assignee"], t["acted_by"]} - {None}:
                    decided.setdefault(user, set()).add(t["step"])
        current = [TaskState(**{**t, "origin": Origin(t["origin"]), "status": TaskStatus(t["status"])})
                   for t in tasks if t["round"] == row["round"]]
        self.spec = fresh
        self.inst = InstanceState(
            spec=fresh, status=InstanceStatus(row["status"]), current_step=row["current_step"],
            round=row["round"], data=row["form_data"], submitter=row["submitter"],
            submitter_department=row["submitter_department"], tasks=current,
            parent_id=row["parent_id"], decided_steps={u: frozenset(s) for u, s in decided.items()})
        self.history.update({t.id: t for t in current})
