"""Time-limit compliance (时限监督) figures for the coordinating bodies: per department and per
process, the tasks finished within their limit, finished late, overdue now (red card), due within
N working days (yellow card), and the average working days a step takes; plus the XLSX export.

Counted: tasks with a time limit (`due_at` set), not the submitter's own (resubmissions, 补正),
that are open now or were finished in the period. Working days follow the service's calendar;
"days taken" is counted from when the task's clock started (its creation, or its turn in line)
to when it was finished, without the working days its clock stood still (补正, expert review),
read from the trail like a recomputed due date (`deadlines.history`). Deemed consent (逾期视为同意,
a system decision at or after the due date) is never "within the limit": it counts as late, and
apart as `deemed`. A paused task is neither overdue nor on a yellow card while its clock is stopped.
Who may see it: `may_view` (the coordinating body's members, department heads, compliance
reviewers, the audit administrator).
"""
from __future__ import annotations

import io
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from ..engine.calendar import WorkingCalendar
from ..engine.clock import EPSILON
from ..engine.clock_actions import DEEMED_CONSENT_OPINION
from ..engine.organisation import Organisation
from ..models import ProcessDefinition, ProcessInstance, Task, TrailEvent, User
from .deadlines import history

SHANGHAI = ZoneInfo("Asia/Shanghai")
VIEW_ROLES = frozenset({"head", "compliance"})
VIEW_ADMINS = frozenset({"audit"})
LIST_LIMIT = 500


def may_view(memberships, admin_role: str | None, org: Organisation) -> bool:
    coordinators = set(org.coordinators())
    return admin_role in VIEW_ADMINS or any(d in coordinators or r in VIEW_ROLES for d, r in memberships)


@dataclass
class Figures:
    key: str
    label: str
    on_time: int = 0
    late: int = 0
    overdue: int = 0      # red: open and past its due date
    due_soon: int = 0     # yellow: open, due within N working days
    running: int = 0      # open, on track (paused ones included)
    paused: int = 0
    deemed: int = 0       # finished by 逾期视为同意 (counted late too)
    days_total: int = 0

    @property
    def finished(self) -> int:
        return self.on_time + self.late

    @property
    def open(self) -> int:
        return self.overdue + self.due_soon + self.running

    @property
    def on_time_rate(self) -> float | None:
        return self.on_time / self.finished if self.finished else None

    @property
    def average_days(self) -> float | None:
        return self.days_total / self.finished if self.finished else None


@dataclass
class StepFigure:
    process: str
    process_title: str
    step: str
    step_title: str
    finished: int = 0
    on_time: int = 0
    days_total: int = 0
    days_max: int = 0

    @property
    def average_days(self) -> float | None:
        return self.days_total / self.finished if self.finished else None


@dataclass
class Card:
    """An open task on a red (overdue) or yellow (due soon) card."""

    instance_id: int
    title: str
    process_title: str
    step_title: str
    department: str
    assignee: str
    due_at: datetime
    days: int             # working days overdue (red) or left (yellow)
    provisional: bool


@dataclass
class Report:
    date_from: date
    date_to: date
    yellow_days: int
    now: datetime
    totals: Figures
    departments: list[Figures] = field(default_factory=list)
    processes: list[Figures] = field(default_factory=list)
    steps: list[StepFigure] = field(default_factory=list)
    red: list[Card] = field(default_factory=list)
    yellow: list[Card] = field(default_factory=list)


def _local_start(day: date) -> datetime:
    return datetime.combine(day, time(), tzinfo=SHANGHAI)


def build(session: Session, *, calendar: WorkingCalendar, org: Organisation, specs, now: datetime,
          date_from: date, date_to: date, yellow_days: int = 3, process_key: str | None = None) -> Report:
    """`specs(definition_id)` gives the spec of a stored definition (for step titles)."""
    start, end = _local_start(date_from), _local_start(date_to + timedelta(days=1))
    q = (select(Task.id, Task.step, Task.department, Task.status, Task.due_at, Task.due_provisional,
                Task.paused_at, Task.created_at, Task.completed_at, Task.assignee_id, Task.decision,
                Task.acted_by_id, Task.opinion,
                ProcessInstance.id.label("instance_id"), ProcessInstance.title, ProcessInstance.process_key,
                ProcessInstance.definition_id)
         .join(ProcessInstance, ProcessInstance.id == Task.instance_id)
         .where(Task.due_at.is_not(None), Task.origin != "start",
                or_(Task.status == "open",
                    and_(Task.status == "done", Task.completed_at >= start, Task.completed_at < end))))
    if process_key:
        q = q.where(ProcessInstance.process_key == process_key)
    rows = list(session.execute(q.order_by(Task.due_at, Task.id)))
    titles = dict(session.execute(select(ProcessDefinition.key, ProcessDefinition.title_zh)
                                  .where(ProcessDefinition.is_latest.is_(True))).all())
    assignees = {r.assignee_id for r in rows if r.assignee_id}
    names = dict(session.execute(select(User.id, User.display_name).where(User.id.in_(assignees))).all()) \
        if assignees else {}

    def dept_label(code: str) -> str:
        d = org.departments.get(code)
        return d.name.zh if d else code

    trails = _trails(session, {r.instance_id for r in rows if r.status == "done"})
    report = Report(date_from, date_to, yellow_days, now, Figures("", "合计"))
    by_dept: dict[str, Figures] = {}
    by_process: dict[str, Figures] = {}
    by_step: dict[tuple[str, str], StepFigure] = {}
    for r in rows:
        spec = specs(r.definition_id)
        step = spec.steps.get(r.step) if spec else None
        step_title = step.title.zh if step else r.step
        process_title = titles.get(r.process_key, r.process_key)
        groups = (report.totals,
                  by_dept.setdefault(r.department, Figures(r.department, dept_label(r.department))),
                  by_process.setdefault(r.process_key, Figures(r.process_key, process_title)))
        if r.status == "done":
            deemed = r.acted_by_id is None and r.decision == "approve" and r.opinion == DEEMED_CONSENT_OPINION
            on_time = r.completed_at <= r.due_at and not deemed
            taken = days_taken(calendar, r, trails.get(r.instance_id, []))
            for g in groups:
                g.on_time += on_time
                g.late += not on_time
                g.deemed += deemed
                g.days_total += taken
            s = by_step.setdefault((r.process_key, r.step),
                                   StepFigure(r.process_key, process_title, r.step, step_title))
            s.finished += 1
            s.on_time += on_time
            s.days_total += taken
            s.days_max = max(s.days_max, taken)
            continue
        card = None
        if r.paused_at is not None:
            bucket = "running"
        elif now >= r.due_at:
            bucket = "overdue"
            card = report.red, -calendar.working_days_between(r.due_at - EPSILON, now)
        else:
            left = calendar.working_days_between(now, r.due_at)
            bucket = "due_soon" if left <= yellow_days else "running"
            card = (report.yellow, left) if bucket == "due_soon" else None
        for g in groups:
            setattr(g, bucket, getattr(g, bucket) + 1)
            g.paused += r.paused_at is not None
        if card is not None and len(card[0]) < LIST_LIMIT:
            card[0].append(Card(r.instance_id, r.title, process_title, step_title, dept_label(r.department),
                                names.get(r.assignee_id, "部门队列" if r.assignee_id is None else ""),
                                r.due_at, card[1], r.due_provisional))
    report.departments = sorted(by_dept.values(), key=lambda f: (-f.overdue, -f.due_soon, f.key))
    report.processes = sorted(by_process.values(), key=lambda f: (-f.overdue, -f.due_soon, f.key))
    report.steps = sorted(by_step.values(), key=lambda s: (s.process, -(s.average_days or 0), s.step))
    report.red.sort(key=lambda c: c.days)
    return report


def _trails(session: Session, instance_ids: set[int]) -> dict[int, list]:
    """The trail events of these instances (what `deadlines.history` reads), in order."""
    out: dict[int, list] = {}
    ids = sorted(instance_ids)
    for i in range(0, len(ids), 500):
        for e in session.execute(select(TrailEvent.instance_id, TrailEvent.action, TrailEvent.task_id,
                                        TrailEvent.details, TrailEvent.created_at)
                                 .where(TrailEvent.instance_id.in_(ids[i:i + 500]))
                                 .order_by(TrailEvent.instance_id, TrailEvent.seq)):
            out.setdefault(e.instance_id, []).append(e)
    return out


def days_taken(calendar: WorkingCalendar, task, events: list) -> int:
    """Working days from the task's clock starting to its end, less the days it stood still."""
    h = history(calendar, task.id, task.created_at, events)
    stopped = h.stopped_days
    if h.paused_at is not None and h.paused_at < task.completed_at:  # decided while stopped
        stopped += max(calendar.working_days_between(h.paused_at, task.completed_at), 0)
    return max(calendar.working_days_between(h.opened_at, task.completed_at) - stopped, 0)


def charts(report: Report) -> dict:
    """Chart data for the page (ECharts options are built by static/js/sla.js from this)."""
    depts = report.departments
    return {
        "departments": {
            "labels": [f.label for f in depts],
            "series": {"on_time": [f.on_time for f in depts], "late": [f.late for f in depts],
                       "overdue": [f.overdue for f in depts], "due_soon": [f.due_soon for f in depts],
                       "running": [f.running for f in depts]},
        },
        "steps": {
            "labels": [f"{s.process_title} · {s.step_title}" for s in report.steps],
            "average": [round(s.average_days or 0, 1) for s in report.steps],
            "max": [s.days_max for s in report.steps],
        },
    }


# ---------------------------------------------------------------- XLSX
_FIGURE_COLUMNS = (("按期办结", "on_time"), ("逾期办结", "late"), ("其中逾期视为同意", "deemed"),
                   ("已逾期（红牌）", "overdue"),
                   ("即将到期（黄牌）", "due_soon"), ("办理中", "running"), ("其中暂停计时", "paused"))


def to_xlsx(report: Report, *, exported_by: str, exported_at: datetime) -> bytes:
    import xlsxwriter

    out = io.BytesIO()
    book = xlsxwriter.Workbook(out, {"in_memory": True, "strings_to_formulas": False,
                                     "strings_to_urls": False, "strings_to_numbers": False})
    head = book.add_format({"bold": True, "bg_color": "#E6F4FF", "border": 1, "text_wrap": True})
    pct = book.add_format({"num_format": "0.0%"})
    one = book.add_format({"num_format": "0.0"})
    red = book.add_format({"font_color": "#CF1322", "bold": True})

    def figures_sheet(name: str, first: str, items: list[Figures]) -> None:
        sheet = book.add_worksheet(name)
        headers = [first] + [h for h, _ in _FIGURE_COLUMNS] + ["按期率", "平均用时（工作日）"]
        sheet.write_row(0, 0, headers, head)
        for i, f in enumerate(items + [report.totals], start=1):
            sheet.write_string(i, 0, f.label)
            for j, (_h, attr) in enumerate(_FIGURE_COLUMNS, start=1):
                sheet.write_number(i, j, getattr(f, attr), red if attr == "overdue" and f.overdue else None)
            if f.on_time_rate is not None:
                sheet.write_number(i, len(headers) - 2, f.on_time_rate, pct)
            if f.average_days is not None:
                sheet.write_number(i, len(headers) - 1, f.average_days, one)
        sheet.set_column(0, 0, 22)
        sheet.set_column(1, len(headers) - 1, 12)
        sheet.freeze_panes(1, 1)

    figures_sheet("按部门", "部门", report.departments)
    figures_sheet("按流程", "流程", report.processes)
    steps = book.add_worksheet("环节用时")
    steps.write_row(0, 0, ["流程", "环节", "办结数", "按期数", "平均用时（工作日）", "最长用时（工作日）"], head)
    for i, s in enumerate(report.steps, start=1):
        steps.write_row(i, 0, [s.process_title, s.step_title, s.finished, s.on_time])
        steps.write_number(i, 4, s.average_days or 0, one)
        steps.write_number(i, 5, s.days_max)
    steps.set_column(0, 1, 24)
    for name, cards, what in (("逾期清单（红牌）", report.red, "逾期工作日"),
                              ("即将到期（黄牌）", report.yellow, "剩余工作日")):
        sheet = book.add_worksheet(name)
        sheet.write_row(0, 0, ["申请编号", "申请标题", "流程", "环节", "部门", "办理人",
                               "截止时间（北京时间）", what, "暂定"], head)
        for i, c in enumerate(cards, start=1):
            sheet.write_row(i, 0, [c.instance_id, c.title, c.process_title, c.step_title, c.department,
                                   c.assignee, c.due_at.astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M"),
                                   abs(c.days), "是" if c.provisional else ""])
        sheet.set_column(1, 1, 30)
        sheet.set_column(2, 6, 16)
    about = book.add_worksheet("说明")
    for i, (k, v) in enumerate((
            ("统计期间", f"{report.date_from.isoformat()} 至 {report.date_to.isoformat()}（北京时间自然日）"),
            ("口径", "有时限的审批任务（不含申请人补正、重新提交）；办中任务按导出时刻计"),
            ("黄牌", f"{report.yellow_days} 个工作日内到期"), ("红牌", "已超过办理期限仍未办结"),
            ("导出人", exported_by),
            ("导出时间", exported_at.astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M:%S")))):
        about.write_string(i, 0, k, head)
        about.write_string(i, 1, v)
    about.set_column(0, 0, 12)
    about.set_column(1, 1, 60)
    book.close()
    return out.getvalue()
