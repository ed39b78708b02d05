"""Forms generated from a definition's fields (the start form, and the fields editable at a step).

WTForms renders and reads the inputs; the engine (`engine/forms.clean`) is the one validator, so
the same rules hold for the pages, the API and imports. Its per-field messages come back in
`InvalidAction.details['fields']` and are shown beside each input (`errors_from`).
"""
from __future__ import annotations

from dataclasses import dataclass

from flask import current_app, request
from flask_wtf import FlaskForm
from wtforms import FileField, RadioField, SelectChoice, SelectField, StringField, TextAreaField

from ..engine.organisation import Organisation
from ..engine.schema import FieldType
from ..engine.spec import FieldSpec, ProcessSpec
from ..services import park_links
from ..services.attachments import Policy, Upload
from . import labels
from .messages import field_message

PREFIX = "f"
GROUP_KINDS = ("soe_group", "subsidiary")  # department fields name a park's SOE group or company


@dataclass(frozen=True)
class Shown:
    """One field as the template needs it: spec (type, unit, required), input, label, error."""

    spec: FieldSpec
    input: object
    label: str
    error: str | None


def department_choices(org: Organisation) -> list[SelectChoice]:
    return [SelectChoice(d.code, labels.text(d.name)) for d in org.departments.values()
            if d.kind in GROUP_KINDS]


def _input(f: FieldSpec, label: str, org: Organisation):
    required = {"aria-required": "true"} if f.required else {}
    choose = SelectChoice("", labels.pick(("— 请选择 —", "— choose —")))
    t = f.type
    if t is FieldType.enum:
        return SelectField(label, choices=[choose] + [SelectChoice(c) for c in f.choices],
                           validate_choice=False, render_kw=required)
    if t is FieldType.department:
        return SelectField(label, choices=[choose] + department_choices(org),
                           validate_choice=False, render_kw=required)
    if t is FieldType.boolean:
        return RadioField(label, choices=[SelectChoice("true", labels.pick(("是", "Yes"))),
                                          SelectChoice("false", labels.pick(("否", "No")))],
                          validate_choice=False)
    if t in (FieldType.integer, FieldType.decimal):
        mode = "numeric" if t is FieldType.integer else "decimal"
        return StringField(label, render_kw={"inputmode": mode, "autocomplete": "off", **required})
    if t is FieldType.date:
        return StringField(label, render_kw={"type": "date", **required})
    if t is FieldType.attachment:  # the file itself: read from request.files (`uploads`)
        policy = Policy.from_config(current_app.config)
        return FileField(label, render_kw={**required, "accept": ",".join("." + e for e in policy.extensions),
                                           "data-max-bytes": policy.max_bytes})
    if f.max_length > 200:
        return TextAreaField(label, render_kw={"maxlength": f.max_length, "rows": 3, **required})
    return StringField(label, render_kw={"maxlength": f.max_length, **required})


def _park_inputs(spec: ProcessSpec, names: list[str], data: dict | None) -> dict:
    """A park that must already be in the portfolio (an admission's park) is chosen from it, not
    typed: a select of the portfolio's parks of the allowed stages, read when the form is made."""
    from ..container import services  # the web layer's service objects (not at import time)

    wanted = {name: stages for name, stages in park_links.park_fields(spec.key).items()
              if stages is not None and name in names}
    if not wanted:
        return {}
    out = {}
    with services().db.read() as s:
        for f in spec.fields:
            if f.name not in wanted:
                continue
            options = park_links.park_choices(s, wanted[f.name])
            if f.name == "preferred_park":
                options.append((park_links.NO_PREFERENCE, park_links.NO_PREFERENCE))
            current = str((data or {}).get(f.name) or "")
            if current and current not in {v for v, _l in options}:
                options.append((current, current))  # an older value stays visible
            choose = SelectChoice("", labels.pick(("— 请选择 —", "— choose —")))
            out[f.name] = SelectField(labels.text(f.label), validate_choice=False,
                                      choices=[choose] + [SelectChoice(v, l) for v, l in options],
                                      render_kw={"aria-required": "true"} if f.required else {})
    return out


def _display(f: FieldSpec, value) -> object:
    if value is None:
        return None
    if f.type is FieldType.boolean:
        return "true" if value else "false"
    return str(value)


def field_form(spec: ProcessSpec, names: list[str], org: Organisation, data: dict | None = None,
               *, csrf: bool = False) -> FlaskForm:
    """A form with one input per field in `names` (prefixed `f-`), filled from stored `data` on
    GET and from the request on POST. CSRF is off by default: the action form around it has it."""
    derived = {name for key, name in park_links.DERIVED_FIELDS if key == spec.key}
    attrs = {f.name: _input(f, labels.text(f.label), org)
             for f in spec.fields if f.name in names and f.name not in derived}
    attrs.update(_park_inputs(spec, [n for n in attrs], data))
    cls = type("FieldsForm", (FlaskForm,), attrs)
    initial = {f.name: _display(f, (data or {}).get(f.name)) for f in spec.fields if f.name in names}
    return cls(prefix=PREFIX, data=initial, meta={"csrf": csrf})


def submitted(form: FlaskForm, names: list[str]) -> dict:
    """What was typed, as raw values for the engine (empty inputs mean 'no value')."""
    out = {}
    for name in names:
        if name in form and not isinstance(form[name], FileField):  # files: `uploads()`
            value = form[name].data
            out[name] = value.strip() if isinstance(value, str) else value
    return out


def errors_from(details: dict) -> dict[str, str]:
    return {name: field_message(msg) for name, msg in (details.get("fields") or {}).items()}


def shown(form: FlaskForm, spec: ProcessSpec, names: list[str],
          errors: dict[str, str] | None = None) -> list[Shown]:
    errors = errors or {}
    return [Shown(f, form[f.name], labels.text(f.label), errors.get(f.name))
            for f in spec.fields if f.name in names and f.name in form]


def editable_at(spec: ProcessSpec, step_id: str, *, resubmit: bool = False) -> list[str]:
    """Fields a person may change at `step_id`: all of them when resubmitting after 退回."""
    if resubmit:
        return [f.name for f in spec.fields]
    return [f.name for f in spec.fields if step_id in f.editable_at]


def uploads(spec: ProcessSpec, names: list[str]) -> list[Upload]:
    """Files chosen for the attachment fields among `names` (an empty file input is no upload)."""
    out = []
    for f in spec.fields:
        if f.name in names and f.type is FieldType.attachment:
            storage = request.files.get(f"{PREFIX}-{f.name}")
            if storage is not None and storage.filename:
                try:
                    out.append(Upload(f.name, storage.filename, storage.read()))
                finally:
                    storage.close()  # a large upload is spooled to a temporary file
    return out


def has_files(spec: ProcessSpec, names: list[str]) -> bool:
    return any(f.type is FieldType.attachment for f in spec.fields if f.name in names)


def upload_rules() -> str:
    """What may be uploaded, in the page language (shown under forms with attachment fields)."""
    policy = Policy.from_config(current_app.config)
    size = f"{policy.max_bytes / (1024 * 1024):g} MB"
    kinds = ", ".join(policy.extensions)
    return labels.pick((f"附件：每个文件不超过 {size}，格式 {kinds}。", f"Files: at most {size} each; {kinds}."))
