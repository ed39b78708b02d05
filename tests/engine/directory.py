"""An in-memory organisation for engine tests (the service implements the same protocol on SQL)."""
from __future__ import annotations

from workflow_app.engine.organisation import load_organisation
from workflow_app.engine.state import Actor

ORG = load_organisation("process_defs/organisation.yaml")


class MemoryDirectory:
    def __init__(self, memberships: dict[int, list[tuple[str, str]]], names: dict[int, str] | None = None):
        self.memberships = memberships
        self.names = names or {u: f"user{u}" for u in memberships}

    def members(self, department, role):
        return [u for u, ms in sorted(self.memberships.items()) if (department, role) in ms]

    def group_of(self, department):
        return ORG.group_of(department)

    def user_groups(self, user_id):
        return frozenset(ORG.group_of(d) for d, _ in self.memberships.get(user_id, ()))

    def actor(self, user_id, **kw) -> Actor:
        return Actor(user_id=user_id, name=self.names[user_id],
                     memberships=frozenset(self.memberships.get(user_id, ())), **kw)


# Demo-like people: 1 submits for zhentou; 2,3 invest_promo reviewers; 4 econ_it; 5,6 dev_reform;
# 7 sasac head; 8 a zhentou subsidiary reviewer placed in sasac too (recusal cases); 9 outsider.
PEOPLE = {
    1: [("zhentou", "submitter")],
    2: [("invest_promo", "reviewer")],
    3: [("invest_promo", "reviewer")],
    4: [("econ_it", "reviewer")],
    5: [("dev_reform", "reviewer")],
    6: [("dev_reform", "reviewer")],
    7: [("sasac", "head")],
    8: [("sasac", "head"), ("xingyu", "reviewer")],
    9: [("haijiang", "submitter")],
}
