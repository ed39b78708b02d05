"""The caller's lists, newest first, paginated by keyset (`before_id` + `limit` ≤ 200): open
tasks (待办), department queues (待认领), decided tasks (已办), instances started or copied."""
from __future__ import annotations

from apiflask import APIBlueprint
from marshmallow import RAISE  # a misspelt filter is an error (422), not silently "no filter"

from ..container import services
from ..services import queries
from .auth import auth, current
from .errors import COMMON
from .reads import page
from .schemas import FilteredPageQuery, InboxPageOut, InstancesQuery

bp = APIBlueprint("api_inbox", __name__, url_prefix="/api/v1", tag="Inbox")


def _filters(query: dict) -> queries.Filters:
    """The list filters of every inbox endpoint (`FilteredPageQuery`)."""
    return queries.Filters(process=query.get("process"), step=query.get("step"),
                           department=query.get("department"), due=query.get("due"),
                           since=query.get("since"), until=query.get("until"), now=services().clock())


@bp.get("/tasks")
@bp.auth_required(auth)
@bp.input(FilteredPageQuery, location="query", unknown=RAISE)
@bp.output(InboxPageOut)
@bp.doc(responses=COMMON)
def my_tasks(query_data: dict):
    """My open tasks

    Open tasks assigned or delegated to me (待办), newest first.
    """
    who = current()
    with services().db.read() as s:
        rows = queries.my_tasks(s, who.user_id, before_id=query_data.get("before_id"),
                                limit=query_data["limit"], search=query_data.get("q"),
                                filters=_filters(query_data))
    return page(rows, query_data["limit"], key="task_id")


@bp.get("/queue")
@bp.auth_required(auth)
@bp.input(FilteredPageQuery, location="query", unknown=RAISE)
@bp.output(InboxPageOut)
@bp.doc(responses=COMMON)
def queue(query_data: dict):
    """My departments' unclaimed tasks

    Tasks queued for a department role I hold and not yet claimed (待认领); take one with the
    `claim` action.
    """
    who = current()
    with services().db.read() as s:
        rows = queries.queue_tasks(s, who.memberships, before_id=query_data.get("before_id"),
                                   limit=query_data["limit"], search=query_data.get("q"),
                                   filters=_filters(query_data))
    return page(rows, query_data["limit"], key="task_id")


@bp.get("/tasks/done")
@bp.auth_required(auth)
@bp.input(FilteredPageQuery, location="query", unknown=RAISE)
@bp.output(InboxPageOut)
@bp.doc(responses=COMMON)
def done(query_data: dict):
    """Tasks I decided

    Tasks I completed (已办), newest first.
    """
    who = current()
    with services().db.read() as s:
        rows = queries.done_tasks(s, who.user_id, before_id=query_data.get("before_id"),
                                  limit=query_data["limit"], search=query_data.get("q"),
                                  filters=_filters(query_data))
    return page(rows, query_data["limit"], key="task_id")


@bp.get("/instances")
@bp.auth_required(auth)
@bp.input(InstancesQuery, location="query", unknown=RAISE)
@bp.output(InboxPageOut)
@bp.doc(responses=COMMON)
def instances(query_data: dict):
    """Instances I started or was copied on

    `mine=1` (the default): instances I submitted; `cc=1`: instances copied to me (抄送).
    """
    who = current()
    lister = queries.cc_instances if query_data["cc"] else queries.started_instances
    with services().db.read() as s:
        rows = lister(s, who.user_id, before_id=query_data.get("before_id"), limit=query_data["limit"],
                      search=query_data.get("q"), filters=_filters(query_data))
    return page(rows, query_data["limit"], key="instance_id")
