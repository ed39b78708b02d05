"""ProcessSpec -> a `transitions` state machine, built once per definition version.

Building a `Machine` costs 60–190 µs and `add_model` grows with every model attached (see
PITFALLS.md), so each spec gets exactly one model-free machine, cached by content hash, and every
action drives a throw-away `_Position` holder through `Event.trigger` without registering it:
nothing accumulates on the shared machine, and concurrent requests share no mutable state.

Several transitions for the same (trigger, source) are tried in file order and the first whose
condition holds wins; that is how decision tables (first match wins) compile.
"""
from __future__ import annotations

import threading

from transitions import Machine, MachineError

from .conditions import ConditionEvalError
from .errors import InvalidAction
from .spec import ProcessSpec, TransitionSpec


class _Position:
    """The only thing the machine mutates: where one instance is, for one call."""

    __slots__ = ("state",)

    def __init__(self, state: str):
        self.state = state


def _guard(transition: TransitionSpec):
    condition = transition.condition

    def holds(event) -> bool:
        return condition.holds(event.kwargs["data"])  # type: ignore[union-attr]

    return holds


class CompiledMachine:
    def __init__(self, spec: ProcessSpec):
        self.spec = spec
        self._machine = Machine(
            model=None, states=list(spec.steps), initial=spec.start_step.id,
            auto_transitions=False, send_event=True, ignore_invalid_triggers=False)
        for t in spec.transitions:
            self._machine.add_transition(
                t.trigger, t.source, t.dest,
                conditions=[_guard(t)] if t.condition is not None else None)

    def next_step(self, current: str, trigger: str, data: dict) -> str:
        """Where `trigger` leads from `current` with this form data; InvalidAction if nowhere."""
        event = self._machine.events.get(trigger)
        if event is None:
            raise InvalidAction(f"action {trigger!r} is not defined in {self.spec.key}")
        position = _Position(current)
        try:
            moved = event.trigger(position, data=data)
        except MachineError:
            raise InvalidAction(f"action {trigger!r} is not possible at step {current!r}") from None
        except ConditionEvalError as exc:
            # A condition that cannot be evaluated on this data (typically an empty optional
            # field) refuses the action with the reason; it must not surface as a server error.
            raise InvalidAction(str(exc), step=current, action=trigger) from None
        if not moved:
            raise InvalidAction(f"no condition of {trigger!r} at step {current!r} matches this data")
        return position.state

    def triggers(self, current: str) -> list[str]:
        return self._machine.get_triggers(current)


_cache: dict[str, CompiledMachine] = {}
_lock = threading.Lock()


def machine_for(spec: ProcessSpec) -> CompiledMachine:
    """The compiled machine of `spec`, built on first use; keyed by content hash."""
    compiled = _cache.get(spec.content_hash)
    if compiled is None:
        with _lock:
            compiled = _cache.get(spec.content_hash)
            if compiled is None:
                compiled = _cache[spec.content_hash] = CompiledMachine(spec)
    return compiled
