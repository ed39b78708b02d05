"""Form data: checking what people type against the definition's fields.

Stored form data is JSON (decimals as strings, dates as ISO text) so its hash is stable across
databases; `typed()` turns it back into Decimal/int/date/bool for conditions.
"""
from __future__ import annotations

from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Iterable

from .errors import InvalidAction
from .schema import FieldType
from .spec import FieldSpec, ProcessSpec

MAX_DECIMAL_DIGITS = 18


def clean(spec: ProcessSpec, raw: dict, editable: Iterable[str], current: dict | None = None,
          *, require: bool = True) -> dict:
    """Merge the editable fields of `raw` into `current`; raise InvalidAction listing every bad
    field (`details['fields']` maps field name to message)."""
    result = dict(current or {})
    errors: dict[str, str] = {}
    allowed = set(editable)
    fields = spec.field_map
    for name in raw:
        if name not in fields:
            errors[name] = "unknown field"
        elif name not in allowed and _stored(raw[name]) != result.get(name):
            errors[name] = "this field cannot be changed at this step"
    for name in allowed:
        f = fields[name]
        if name not in raw:
            continue
        try:
            value = _convert(f, raw[name])
        except ValueError as exc:
            errors[name] = str(exc)
            continue
        if value is None:
            result.pop(name, None)
        else:
            result[name] = value
    if require:
        for f in spec.fields:
            if f.required and f.name in allowed and result.get(f.name) in (None, "", []):
                errors.setdefault(f.name, "required")
    if errors:
        listing = "; ".join(f"{k}: {v}" for k, v in sorted(errors.items()))
        raise InvalidAction(f"form has errors — {listing}", fields=errors)
    return result


def require_at(spec: ProcessSpec, step: str, data: dict) -> None:
    """Fields with `required_at: [step]` must be filled before `step` is approved or left by a
    custom action (e.g. the meeting date of a collective decision); raise InvalidAction naming
    them (`details['fields']`, the same shape as `clean`)."""
    errors = {f.name: "required" for f in spec.fields
              if step in f.required_at and data.get(f.name) in (None, "", [])}
    if errors:
        listing = "; ".join(f"{k}: {v}" for k, v in sorted(errors.items()))
        raise InvalidAction(f"form has errors — {listing}", fields=errors, step=step)


def _stored(value: object) -> object:
    return str(value) if isinstance(value, (Decimal, date)) else value


def _convert(f: FieldSpec, value: object) -> object:
    """Validate one value; return its JSON-storable form (None = empty)."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    t = f.type
    if t in (FieldType.text, FieldType.attachment, FieldType.department):
        text = str(value).strip()
        if len(text) > f.max_length:
            raise ValueError(f"longer than {f.max_length} characters")
        if "\x00" in text:
            raise ValueError("contains a NUL character")
        return text
    if t is FieldType.enum:
        if str(value) not in f.choices:
            raise ValueError(f"must be one of {', '.join(f.choices)}")
        return str(value)
    if t is FieldType.boolean:
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in ("true", "1", "yes", "on", "是"):
            return True
        if text in ("false", "0", "no", "off", "否"):
            return False
        raise ValueError("must be yes or no")
    if t is FieldType.date:
        try:
            return (value if isinstance(value, date) else date.fromisoformat(str(value).strip())).isoformat()
        except ValueError:
            raise ValueError("must be a date like 2026-11-25") from None
    number = _number(value, integer=t is FieldType.integer)
    unit = f" {f.unit}" if f.unit else ""
    if f.min is not None and number < Decimal(str(f.min)):
        raise ValueError(f"must be at least {f.min:g}{unit}")
    if f.max is not None and number > Decimal(str(f.max)):
        raise ValueError(f"must be at most {f.max:g}{unit}")
    return int(number) if t is FieldType.integer else str(number)


def _number(value: object, *, integer: bool) -> Decimal:
    if isinstance(value, bool):
        raise ValueError("must be a number")
    text = str(value).strip().replace(",", "").replace("，", "")
    if len(text) > 40:
        raise ValueError("number too long")
    try:
        number = Decimal(text)
    except InvalidOperation:
        raise ValueError("must be a number") from None
    if not number.is_finite():
        raise ValueError("must be a finite number")
    digits = len(number.as_tuple().digits)
    if digits > MAX_DECIMAL_DIGITS or abs(number.as_tuple().exponent) > MAX_DECIMAL_DIGITS:
        raise ValueError("number out of range")
    if integer and number != number.to_integral_value():
        raise ValueError("must be a whole number")
    return number


def typed(spec: ProcessSpec, stored: dict) -> dict:
    """Stored JSON values -> Python values for conditions (Decimal, int, date, bool, str)."""
    out: dict = {}
    fields = spec.field_map
    for name, value in stored.items():
        f = fields.get(name)
        if f is None or value is None:
            out[name] = value
        elif f.type is FieldType.decimal:
            out[name] = Decimal(str(value))
        elif f.type is FieldType.integer:
            out[name] = int(value)
        elif f.type is FieldType.date:
            out[name] = value  # ISO text compares correctly as a string
        else:
            out[name] = value
    return out
