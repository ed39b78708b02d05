"""The notification centre (`/notifications`): my notifications, newest first, unread ones marked;
opening one marks it read and goes to its application; "mark all read".

`register(app)` also registers the time-limit compliance page (`web/sla.py`), the header's unread
count (`unread_notifications`, every template) and the `days_left(task, now)` helper for pages
(date + working days left of a task, `engine.clock.DaysLeft`, None without a time limit).
Everyone sees only their own notifications; another person's id is a 404.
"""
from __future__ import annotations

from flask import Blueprint, Flask, abort, redirect, render_template, request, url_for
from flask_login import current_user, login_required
from sqlalchemy import func, select, update

from ..container import services
from ..models import Notification, ProcessInstance
from ..services.notify import KIND_LABELS, in_english
from .current import me
from .labels import english

bp = Blueprint("notifications", __name__)
PAGE = 50


def register(app: Flask) -> None:
    from . import sla

    app.register_blueprint(bp)
    app.register_blueprint(sla.bp)

    @app.context_processor
    def unread_badge() -> dict:
        user = current_user if current_user and current_user.is_authenticated else None
        if user is None:
            return {"unread_notifications": 0}
        with services().db.read() as s:
            count = s.scalar(select(func.count()).select_from(Notification).where(
                Notification.user_id == user.id, Notification.read_at.is_(None)))
        return {"unread_notifications": count or 0}

    @app.context_processor
    def sla_link() -> dict:
        """`sla_console`: the header links /sla (时限监督) for those who may see it."""
        from ..services.sla_report import may_view
        user = current_user if current_user and current_user.is_authenticated else None
        return {"sla_console": bool(user) and may_view(user.memberships, user.admin_role,
                                                        services().store.organisation)}

    def days_left(task, now=None):
        svc = services()
        return svc.workflow.days_left(task, now or svc.clock())

    app.jinja_env.globals.update(days_left=days_left, notification_kind=_kind_label)


def _kind_label(kind: str) -> str:
    from .labels import pick
    return pick(KIND_LABELS.get(kind, (kind, kind)))


@bp.get("/notifications")
@login_required
def index():
    user = me()
    unread_only = request.args.get("show") == "unread"
    before = request.args.get("before", type=int)
    with services().db.read() as s:
        q = select(Notification).where(Notification.user_id == user.id)
        if unread_only:
            q = q.where(Notification.read_at.is_(None))
        if before:
            q = q.where(Notification.id < before)
        rows = list(s.scalars(q.order_by(Notification.id.desc()).limit(PAGE + 1)))
        more = len(rows) > PAGE
        rows = rows[:PAGE]
        texts = _texts(s, rows)
    return render_template("notifications/index.html", rows=rows, texts=texts, unread_only=unread_only,
                           next_before=rows[-1].id if more else None)


def _texts(s, rows: list[Notification]) -> dict[int, tuple[str, str]]:
    """Each notice's (title, body) in the page's language; in English, step names come from the
    English titles of the application's own definition version."""
    if not english():
        return {n.id: (n.title, n.body or "") for n in rows}
    store = services().store
    steps: dict[str, str] = {}
    ids = {n.instance_id for n in rows if n.instance_id}
    for definition_id in set(s.scalars(select(ProcessInstance.definition_id).where(ProcessInstance.id.in_(ids)))):
        for step in store.spec(s, definition_id).steps.values():
            if step.title.en:
                steps.setdefault(step.title.zh, step.title.en)
    return {n.id: in_english(n.kind, n.title, n.body or "", steps) for n in rows}


def _mine(s, notification_id: int, user_id: int) -> Notification:
    row = s.get(Notification, notification_id)
    if row is None or row.user_id != user_id:
        abort(404)
    return row


@bp.get("/notifications/<int:notification_id>")
@login_required
def open_one(notification_id: int):
    """Open a notification: mark it read, go to its application (or back to the list)."""
    user = me()
    svc = services()
    with svc.db.write() as s:
        row = _mine(s, notification_id, user.id)
        if row.read_at is None:
            row.read_at = svc.clock()
        instance_id = row.instance_id
    return redirect(url_for("instances.detail", iid=instance_id) if instance_id else url_for(".index"))


@bp.post("/notifications/<int:notification_id>/read")
@login_required
def mark_read(notification_id: int):
    user = me()
    svc = services()
    with svc.db.write() as s:
        row = _mine(s, notification_id, user.id)
        if row.read_at is None:
            row.read_at = svc.clock()
    return redirect(url_for(".index", show=request.args.get("show")))


@bp.post("/notifications/read-all")
@login_required
def mark_all_read():
    user = me()
    svc = services()
    with svc.db.write() as s:
        s.execute(update(Notification).where(Notification.user_id == user.id, Notification.read_at.is_(None))
                  .values(read_at=svc.clock()))
    return redirect(url_for(".index"))
