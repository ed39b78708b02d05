"""合规审查 console (`/compliance`): search and sample every decision, verify the trail, open any
instance read-only with the definition revision in force at each decision, diff two revisions,
and export (XLSX list, PDF dossier). Every export is written to the security log.

Who: members holding the `compliance` role and the audit administrator; everyone else gets the
403 page, and the header hides the link (`compliance_console` in every template's context).
The console only reads; the one POST (verify) changes nothing but the security log.
"""
from __future__ import annotations

import secrets

from flask import Blueprint, Response, abort, current_app, render_template, request
from flask_login import current_user, login_required
from flask_wtf import FlaskForm
from wtforms import DateField, IntegerField, SelectChoice, SelectField, SelectMultipleField, StringField
from wtforms.validators import Length, NumberRange, Optional, ValidationError
from wtforms.widgets import CheckboxInput, ListWidget

from ..container import services
from ..engine.errors import NotFound
from ..models import User
from ..services import accounts, compliance, exports, trail
from . import labels
from .current import SignedIn, me
from .pages import tr
from .timeline import form_rows

bp = Blueprint("compliance", __name__, url_prefix="/compliance")

EXPORT_LIMIT = 50_000
ACTIONS = ("start", "submit", "approve", "reject", "return", "withdraw", "void", "transfer",
           "delegate", "resolve", "add_signer", "remove_signer", "claim", "release", "comment",
           "cc", "urge", "timeout", "deemed_consent", "subprocess_end", "subprocess_resume",
           "migrate")
FLAG_LABELS = {"late": ("逾期办理", "Decided late"), "return": ("退回", "Returns"),
               "withdraw": ("撤回", "Withdrawals"), "substitute": ("代办", "Substitutions"),
               "definition_mismatch": ("定义哈希不符", "Definition hash mismatch")}
BREAK_REASONS = (  # engine wording (prefix) -> what a reviewer reads
    ("sequence jumps", ("事件序号不连续（有事件被删除、插入或调换）", "Sequence gap (an event was removed, inserted or reordered)")),
    ("link to the previous", ("与前一事件的哈希链接不符", "Link to the previous event does not match")),
    ("content does not match", ("事件内容与其哈希不符（被修改）", "Content does not match its hash (edited)")),
    ("event beyond the recorded head", ("链头之后出现多余事件（在系统外添加）", "Event beyond the recorded head (added outside the application)")),
    ("chain ends after", ("链尾事件缺失（最新的事件被删除）", "Events missing at the end of the chain")),
    ("the newest event does not match", ("最新事件与记录的链头不符", "Newest event does not match the recorded head")),
    ("all ", ("该申请的全部事件缺失", "All events of the application are missing")),
    ("events belong to no known instance", ("事件不属于任何已知申请", "Events belong to no known application")),
)


@bp.app_context_processor
def console_link() -> dict:
    """`compliance_console`: show the header link (base.html) to those who may use the console."""
    user = current_user if current_user and current_user.is_authenticated else None
    return {"compliance_console": bool(user) and compliance.may_review(user.memberships, user.admin_role)}


def _reviewer() -> SignedIn:
    user = me()
    if not compliance.may_review(user.memberships, user.admin_role):
        abort(403)
    return user


def _ip() -> str:
    return (request.remote_addr or "")[:64]


def _filter(name: str):
    return current_app.jinja_env.filters[name]


# ---------------------------------------------------------------- the search form
class SearchForm(FlaskForm):
    class Meta:
        csrf = False  # a GET form: bookmarkable, changes nothing

    process_key = SelectField(choices=[], validate_choice=True, validators=[Optional()])
    department = SelectField(choices=[], validate_choice=True, validators=[Optional()])
    person = StringField(validators=[Optional(), Length(max=100)])
    action = SelectField(choices=[], validate_choice=True, validators=[Optional()])
    date_from = DateField(validators=[Optional()])
    date_to = DateField(validators=[Optional()])
    instance = IntegerField(validators=[Optional(), NumberRange(min=1, max=compliance.INT32 - 1)])
    text = StringField(validators=[Optional(), Length(max=100)])
    flags = SelectMultipleField(choices=[SelectChoice(f, f) for f in compliance.FLAGS],
                                widget=ListWidget(prefix_label=False), option_widget=CheckboxInput())
    sample = IntegerField(validators=[Optional(), NumberRange(min=1, max=compliance.MAX_SAMPLE)])
    seed = IntegerField(validators=[Optional(), NumberRange(min=0, max=2**31)])

    def validate_date_to(self, field):
        if field.data and self.date_from.data and field.data < self.date_from.data:
            raise ValidationError(tr("结束日期早于开始日期", "The end date is before the start date"))

    def criteria(self) -> compliance.Criteria:
        return compliance.Criteria(
            process_key=self.process_key.data or None, department=self.department.data or None,
            person=(self.person.data or "").strip() or None, action=self.action.data or None,
            date_from=self.date_from.data, date_to=self.date_to.data,
            instance_id=self.instance.data, text=self.text.data or None,
            flags=frozenset(self.flags.data or ()))

    def described(self) -> list[tuple[str, str]]:
        """The criteria in words (the export's criteria sheet)."""
        def chosen(field) -> str:
            return next((c.label for c in field.choices if c.value == field.data and c.value), "")
        pairs = [("流程", chosen(self.process_key)), ("部门", chosen(self.department)),
                 ("人员", self.person.data or ""), ("动作", chosen(self.action)),
                 ("开始日期", self.date_from.data.isoformat() if self.date_from.data else ""),
                 ("结束日期", self.date_to.data.isoformat() if self.date_to.data else ""),
                 ("申请编号", str(self.instance.data or "")), ("意见包含", self.text.data or ""),
                 ("只看", "、".join(FLAG_LABELS[f][0] for f in self.flags.data or ())),
                 ("随机抽样", f"{self.sample.data} 条，种子 {self.seed.data}" if self.sample.data else "")]
        return [(k, v) for k, v in pairs if v] + [("时间口径", "北京时间（Asia/Shanghai）自然日")]


def _form(session) -> SearchForm:
    form = SearchForm(request.args)
    org = services().store.organisation
    any_ = SelectChoice("", tr("全部", "All"))
    form.titles = {k: labels.pick((zh, en)) for k, zh, en in compliance.process_keys(session)}
    form.process_key.choices = [any_] + [SelectChoice(k, t) for k, t in form.titles.items()]
    form.department.choices = [any_] + [SelectChoice(code, labels.text(d.name))
                                        for code, d in org.departments.items()]
    form.action.choices = [any_] + [SelectChoice(a, labels.action_label(a)) for a in ACTIONS]
    form.flags.choices = [SelectChoice(f, labels.pick(FLAG_LABELS[f])) for f in compliance.FLAGS]
    return form


def _run(session, form: SearchForm, before: int | None) -> compliance.Page:
    criteria = form.criteria()
    if form.sample.data:
        if form.seed.data is None:  # a fresh draw: the seed is shown so it can be redrawn
            form.seed.data = secrets.randbelow(1_000_000)
        return compliance.sample(session, criteria, form.sample.data, form.seed.data)
    return compliance.search(session, criteria, before=before)


@bp.get("/")
@login_required
def search():
    _reviewer()
    svc = services()
    before = request.args.get("before", type=int)
    with svc.db.read() as s:
        form = _form(s)
        valid = form.validate()  # no arguments at all: the newest decisions
        page = _run(s, form, before) if valid else None
        steps = _step_titles(s, page.rows if page else [])
    return render_template("compliance/search.html", form=form, page=page, steps=steps,
                           link_args=_link_args(form, page), flag_labels=FLAG_LABELS), \
        200 if valid else 400


def _step_titles(s, rows) -> dict[tuple[int | None, str | None], str]:
    """(definition id, step id) -> the step's title in the revision that was in force."""
    store = services().store
    out: dict[tuple[int | None, str | None], str] = {}
    for d in rows:
        e = d.event
        for step in (e.from_step, e.to_step):
            if step and (e.definition_id, step) not in out:
                try:
                    spec = store.spec(s, e.definition_id) if e.definition_id else None
                except NotFound:
                    spec = None
                out[(e.definition_id, step)] = _step_title(spec, step) if spec else step
    return out


def _link_args(form: SearchForm, page) -> dict:
    """The current criteria as query arguments (for the next page and the XLSX link)."""
    out: dict[str, object] = {}
    for name in ("process_key", "department", "person", "action", "text"):
        value = getattr(form, name).data
        if value:
            out[name] = value
    for name in ("date_from", "date_to"):
        value = getattr(form, name).data
        if value:
            out[name] = value.isoformat()
    if form.instance.data:
        out["instance"] = form.instance.data
    if form.flags.data:
        out["flags"] = list(form.flags.data)
    if form.sample.data:
        out["sample"] = form.sample.data
        out["seed"] = page.sample_seed if page and page.sample_seed is not None else form.seed.data
    return out


# ---------------------------------------------------------------- verify
def break_reason(reason: str) -> str:
    for prefix, words in BREAK_REASONS:
        if reason.startswith(prefix):
            return labels.pick(words)
    return reason


@bp.post("/verify")
@login_required
def verify():
    """Verify every chain (instances and the system chain); the result names the first break."""
    user = _reviewer()
    svc = services()
    from ..services import security_log

    with svc.db.read() as s:
        result = trail.verify(s)
    with svc.db.read() as s:
        log_rows, log_break = security_log.verify(s)
    instance_id = None
    if result.chain and result.chain.startswith("instance "):
        instance_id = int(result.chain.split()[1])
    with svc.db.write() as s:
        accounts.log(s, "trail_verify", now=svc.clock(), user=s.get(User, user.id), ip=_ip(),
                     outcome="ok" if result.ok else "error", checked=result.checked,
                     chains=result.chains, chain=result.chain,
                     event_id=result.broken.event_id if result.broken else None,
                     security_rows=log_rows, security_log_ok=log_break is None)
    return render_template("compliance/verify.html", result=result, instance_id=instance_id,
                           log_rows=log_rows, log_break=log_break,
                           reason=break_reason(result.broken.reason) if result.broken else "",
                           checked_at=svc.clock())


# ---------------------------------------------------------------- refused decisions
@bp.get("/refusals")
@login_required
def refusals():
    """Attempted self-approvals, recusals and second decisions, all refused (from the security
    log's `action_refused` records with the engine's reason codes)."""
    from ..services import refusals as refused

    _reviewer()
    reason = request.args.get("reason") or None
    if reason is not None and reason not in refused.REASONS:
        abort(400)
    before = request.args.get("before", type=int)
    svc = services()
    with svc.db.read() as s:
        rows = refused.refused(s, reason=reason, before_id=before)
        totals = refused.counts(s)
    labels_ = {code: labels.pick(pair) for code, pair in refused.REASONS.items()}
    return render_template("compliance/refusals.html", rows=rows, totals=totals, reason=reason,
                           reasons=labels_, more=len(rows) == refused.PAGE)


# ---------------------------------------------------------------- one instance
def _dossier(s, iid: int, user: SignedIn) -> compliance.Dossier:
    try:
        return compliance.dossier(s, services().store, iid, user_id=user.id,
                                  memberships=user.memberships, admin_role=user.admin_role)
    except NotFound:
        abort(404)


def _step_title(spec, step_id: str | None) -> str:
    step = spec.steps.get(step_id) if step_id else None
    return labels.text(step.title) if step else (step_id or "")


def _context(d: compliance.Dossier) -> dict:
    svc = services()
    view = d.view
    return dict(d=d, view=view, inst=view.instance, spec=view.spec,
                data_rows=form_rows(view.spec, view.instance.form_data, svc.store.organisation),
                step_title=lambda sid: _step_title(view.spec, sid),
                reason=break_reason(d.check.broken.reason) if d.check.broken else "")


@bp.get("/instances/<int:iid>")
@login_required
def instance(iid: int):
    user = _reviewer()
    with services().db.read() as s:
        d = _dossier(s, iid, user)
        return render_template("compliance/instance.html", **_context(d))


@bp.get("/instances/<int:iid>/dossier.pdf")
@login_required
def dossier_pdf(iid: int):
    user = _reviewer()
    svc = services()
    now = svc.clock()
    # Without a CJK font every Chinese character would print as a blank box ("tofu"): evidence
    # nobody can read. Refuse loudly (503, logged) unless the operator chose the explicit
    # fallback (PDF_FONT_FALLBACK), which prints a warning at the top of the document instead.
    font_missing = exports.cjk_font() is None
    if font_missing and not current_app.config.get("PDF_FONT_FALLBACK", False):
        with svc.db.write() as s:
            accounts.log(s, "export", now=now, user=s.get(User, user.id), ip=_ip(), outcome="error",
                         kind="dossier_pdf", instance_id=iid, reason="no_cjk_font")
        current_app.logger.error("PDF dossier refused: no CJK font installed (Debian: fonts-noto-cjk)")
        return render_template("errors/error.html", code=503, title=tr("无法生成 PDF", "PDF not available"),
                               message=tr("服务器未安装中文字体（Debian 软件包 fonts-noto-cjk），生成的 PDF 将无法显示中文。请联系系统运维安装后重试。",
                                          "The server has no Chinese font installed (Debian package fonts-noto-cjk); "
                                          "a PDF would print Chinese as blank boxes. Ask the operators to install it.")), 503
    with svc.db.read() as s:
        d = _dossier(s, iid, user)
        html = render_template("compliance/dossier_pdf.html", font_face=exports.font_face_css(),
                               font_family=exports.FONT_FAMILY, printed_at=now, font_missing=font_missing,
                               printed_by=user.display_name, **_context(d))
        record = compliance.trail_record(d.view.events, d.check)
    pdf = exports.dossier_pdf(html, trail=record, instance_id=iid)
    with svc.db.write() as s:
        accounts.log(s, "export", now=now, user=s.get(User, user.id), ip=_ip(), kind="dossier_pdf",
                     instance_id=iid, events=d.check.recorded, head=d.check.head,
                     verified=d.check.ok, bytes=len(pdf), cjk_font=not font_missing)
    return _download(pdf, "application/pdf", f"parkflow-dossier-{iid}-{labels.local(now):%Y%m%d%H%M}.pdf")


# ---------------------------------------------------------------- XLSX
@bp.get("/export.xlsx")
@login_required
def export_xlsx():
    user = _reviewer()
    svc = services()
    now = svc.clock()
    with svc.db.read() as s:
        form = _form(s)
        if not form.validate():
            abort(400)
        criteria = form.criteria()
        if form.sample.data:
            if form.seed.data is None:
                form.seed.data = secrets.randbelow(1_000_000)
            rows = compliance.sample(s, criteria, form.sample.data, form.seed.data).rows
        else:
            rows = compliance.iter_decisions(s, criteria, limit=EXPORT_LIMIT)
        words = exports.Words(action=labels.action_label, department=_filter("department"),
                              role=_filter("role"))
        data, count = exports.decisions_xlsx(
            rows, words=words, criteria=form.described(), exported_by=f"{user.display_name}（{user.username}）",
            exported_at=now, limit=None if form.sample.data else EXPORT_LIMIT)
    record = criteria.record()
    if form.sample.data:
        record.update(sample=form.sample.data, seed=form.seed.data)
    with svc.db.write() as s:
        accounts.log(s, "export", now=now, user=s.get(User, user.id), ip=_ip(),
                     kind="decisions_xlsx", criteria=record, rows=count, bytes=len(data))
    return _download(data, "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                     f"parkflow-decisions-{labels.local(now):%Y%m%d%H%M}.xlsx")


def _download(data: bytes, mimetype: str, filename: str) -> Response:
    response = Response(data, mimetype=mimetype)
    response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    response.headers["Cache-Control"] = "no-store"
    return response


# ---------------------------------------------------------------- definition diff
@bp.get("/definitions/<key>/diff")
@login_required
def definition_diff(key: str):
    _reviewer()
    with services().db.read() as s:
        revs = compliance.revisions(s, key)
        if not revs:
            abort(404)
        numbers = [r.revision for r in revs]
        new = request.args.get("new", type=int) or numbers[-1]
        if new not in numbers:
            abort(404)
        # without `old`: the revision just before `new` (what changed when `new` came in)
        old = request.args.get("old", type=int) or numbers[max(numbers.index(new) - 1, 0)]
        if old not in numbers:
            abort(404)
        try:
            diff = compliance.definition_diff(s, key, old, new)
        except NotFound:
            abort(404)
    return render_template("compliance/diff.html", key=key, revs=revs, diff=diff)

