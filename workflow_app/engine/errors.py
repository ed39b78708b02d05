"""Errors raised by the engine.

Definition errors carry where they happened (file, line, key) so that `flask defs validate` can
print `FILE:LINE: KEY: message`. Action errors carry a stable `code` the web layer maps to HTTP
status codes (403 forbidden, 409 conflict, 422 invalid) without the engine knowing about HTTP.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a definition file."""

    file: str
    line: int
    key: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.key}: {self.message}"


class DefinitionError(ValueError):
    """A process definition (or a calendar/rules file) is invalid; holds every problem found."""

    def __init__(self, problems: list[Problem]):
        self.problems = sorted(problems, key=lambda p: (p.file, p.line, p.key))
        super().__init__("\n".join(str(p) for p in self.problems))


class ActionError(Exception):
    """An action that cannot be performed. `code` is stable and machine-readable."""

    code = "invalid"

    def __init__(self, message: str, **details: object):
        super().__init__(message)
        self.message = message
        self.details = details


class Forbidden(ActionError):
    """The actor may not do this (not assigned, own submission, recusal...).

    `reason` is a stable machine code (one of `REASONS`, also in `details['reason']`) for the API,
    the pages and the compliance console, which must not parse the English message."""

    code = "forbidden"

    def __init__(self, message: str, reason: str = "not_allowed", **details: object):
        if reason not in REASONS:
            raise ValueError(f"unknown Forbidden reason {reason!r}")
        super().__init__(message, reason=reason, **details)
        self.reason = reason


# Machine codes of `Forbidden.reason`.
REASONS = frozenset({
    "self_approval",      # the submitter (or their stand-in) would decide their own application
    "recusal",            # 回避: the person belongs to the submitting group
    "same_decider",       # rules.distinct_deciders: already decided another step
    "not_assignee",       # the task is assigned or delegated to someone else
    "no_role",            # not holding the role a queue task or a submission needs
    "not_submitter",      # only the submitter may do this (withdraw, urge...)
    "withdraw_disabled",  # rules.withdraw: false
    "admin_only",         # only an administrator may do this (void)
    "not_head",           # only the department head (延期)
    "not_substitute",     # not standing in for that person now
    "not_allowed",        # anything else
})


class Refusal(str):
    """A reason why someone may not act: the message, with its `Forbidden.reason` code."""

    code: str

    def __new__(cls, message: str, code: str) -> "Refusal":
        self = super().__new__(cls, message)
        self.code = code
        return self

    def forbidden(self, **details: object) -> Forbidden:
        return Forbidden(str(self), self.code, **details)


class Conflict(ActionError):
    """Somebody else acted first: the task or instance is no longer in the state the actor saw."""

    code = "conflict"


class InvalidAction(ActionError):
    """The action does not fit the definition or the data (unknown step, missing opinion...)."""

    code = "invalid"


class NotFound(ActionError):
    code = "not_found"
