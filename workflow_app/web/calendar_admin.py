"""工作日历 (`/calendar`): the system administrator's page to see where each year's working days come
from and to import a year's State Council holiday schedule (holidays and 调休 make-up working days).

The same validation as `flask calendar load` (`calendars.load_year` → `parse_year_schedule`: year,
source, holiday and workday dates inside that year, no day both off and working) and the same
follow-up: the due dates that were provisional (暂定) because the year was unknown are recomputed
right away, each with a `deadline_recomputed` trail event; the load itself is a `calendar_load`
system event and a security-log entry. A year nobody has loaded is shown as missing together with
what that means for due dates — the page never offers a made-up schedule.
"""
from __future__ import annotations

from pathlib import Path

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask_login import login_required
from flask_wtf import FlaskForm
from flask_wtf.file import FileField
from sqlalchemy import func, select
from wtforms import IntegerField, TextAreaField
from wtforms.validators import NumberRange, Optional

from ..container import services
from ..engine.calendar import CalendarError
from ..models import Task, User
from ..services import accounts, calendars, sla
from .current import SignedIn, me
from .pages import tr

bp = Blueprint("calendar_admin", __name__, url_prefix="/calendar")
MAX_FILE = 64 * 1024  # a year's schedule is a few hundred bytes


class YearQuery(FlaskForm):
    class Meta:
        csrf = False  # GET: which year to show

    year = IntegerField(validators=[Optional(), NumberRange(2004, 2100)])


class LoadForm(FlaskForm):
    file = FileField()
    text = TextAreaField(validators=[Optional()])


def _admin() -> SignedIn:
    user = me()
    if user.admin_role != "system":
        abort(403)
    return user


def _files() -> Path | None:
    folder = current_app.config.get("CALENDARS")
    return Path(folder) if folder else None


@bp.get("/")
@login_required
def index():
    _admin()
    svc = services()
    query = YearQuery(request.args)
    with svc.db.read() as s:
        calendar = svc.workflow.working_calendar(s, force=True) or svc.calendar
        today = calendar.local_date(svc.clock())
        year = query.year.data if query.validate() and query.year.data else today.year
        rows = calendars.stored_years(s)
        view = calendars.describe_year(calendar, year, calendars.stored_year(s, year), _files())
        provisional = s.scalar(select(func.count()).select_from(Task).where(
            Task.status == "open", Task.due_provisional.is_(True))) or 0
        # the next years someone must watch: this year, the next, the one after
        horizon = [calendars.describe_year(calendar, y, calendars.stored_year(s, y), _files())
                   for y in range(today.year, today.year + 3)]
    return render_template("calendar/index.html", view=view, rows=rows, horizon=horizon, form=LoadForm(),
                           provisional=provisional, ranges=calendars.date_ranges)


@bp.post("/load")
@login_required
def load():
    user = _admin()
    svc = services()
    form = LoadForm()
    if not form.validate_on_submit():
        abort(400)
    upload = form.file.data
    if upload and getattr(upload, "filename", ""):
        raw, name = upload.read(MAX_FILE + 1), upload.filename
    else:
        raw, name = (form.text.data or "").encode("utf-8"), "<pasted>"
    if not raw.strip():
        flash(tr("请选择日历文件或粘贴其内容", "Choose a calendar file or paste its content"), "error")
        return redirect(url_for(".index"))
    if len(raw) > MAX_FILE:
        flash(tr("文件过大", "The file is too large"), "error")
        return redirect(url_for(".index"))
    now = svc.clock()
    by = f"{user.display_name}（{user.username}）"
    try:
        text = raw.decode("utf-8")
        with svc.db.write() as s:
            result = calendars.load_year(s, text, now=now, by=by, source_name=name[:200])
            accounts.log(s, "calendar_load", now=now, user=s.get(User, user.id),
                         ip=(request.remote_addr or "")[:64], year=result.year, hash=result.hash,
                         changed=result.changed)
    except (CalendarError, UnicodeDecodeError) as exc:
        flash(tr("日历文件有误，未载入：", "The calendar file is not valid and was not loaded: ") + str(exc), "error")
        return redirect(url_for(".index"))
    moved = sla.recompute_provisional(svc.db, svc.workflow, now)
    if result.changed:
        flash(tr(f"已载入 {result.year} 年日历；重算了 {moved} 个暂定截止日期",
                 f"{result.year} loaded; {moved} provisional due dates recomputed"), "success")
    else:
        flash(tr(f"{result.year} 年日历内容未变化", f"{result.year}: unchanged (same content)"), "info")
    return redirect(url_for(".index", year=result.year))
