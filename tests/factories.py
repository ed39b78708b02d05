"""Building people and organisations in the database for tests."""
from __future__ import annotations

from sqlalchemy.orm import Session
from werkzeug.security import generate_password_hash

from workflow_app.models import Membership, User

_HASH = generate_password_hash("Parkflow#2026", method="pbkdf2:sha256:1000")  # fast for tests

# name -> memberships. Mirrors tests/engine/directory.py PEOPLE.
PEOPLE = {
    "submitter": [("zhentou", "submitter")],
    "promo1": [("invest_promo", "reviewer")],
    "promo2": [("invest_promo", "reviewer")],
    "econ": [("econ_it", "reviewer")],
    "plan1": [("dev_reform", "reviewer")],
    "plan2": [("dev_reform", "reviewer")],
    "sasac": [("sasac", "head")],
    "sasac_xingyu": [("sasac", "head"), ("xingyu", "reviewer")],
    "haijiang": [("haijiang", "submitter")],
    "sysadmin": [],
}


def create_people(session: Session, people: dict[str, list[tuple[str, str]]] | None = None) -> dict[str, int]:
    ids = {}
    for rank, (name, memberships) in enumerate((people or PEOPLE).items()):
        user = User(username=name, display_name=name, password_hash=_HASH,
                    admin_role="system" if name == "sysadmin" else None)
        user.memberships = [Membership(department_code=d, role=r, rank=rank) for d, r in memberships]
        session.add(user)
        session.flush()
        ids[name] = user.id
    return ids
