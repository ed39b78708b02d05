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
    """The actor may not do this (not assigned, own submission, recusal...)."""

    code = "forbidden"


class Conflict(ActionError):
    """Somebody else acted first: the task or instance is no longer in the state the actor saw."""

    code = "conflict"


class InvalidAction(ActionError):
    """The action does not fit the definition or the data (unknown step, missing opinion...)."""

    code = "invalid"


class NotFound(ActionError):
    code = "not_found"
