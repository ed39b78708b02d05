"""Compiled machines are built once per definition content hash (PITFALLS: a transitions Machine
costs 60-190 µs): two loads of the same text share one machine, whatever object holds the spec;
a changed text compiles a new one; no model stays attached to a shared machine."""
from __future__ import annotations

import uuid

from tests.engine.harness import ORG, Run
from tests.engine.test_loader import BASE, FILE
from workflow_app.engine import machine
from workflow_app.engine.loader import load_text


def counting(monkeypatch) -> list[str]:
    built: list[str] = []
    real = machine.Machine

    def build(*args, **kwargs):
        built.append(kwargs.get("initial"))
        return real(*args, **kwargs)

    monkeypatch.setattr(machine, "Machine", build)
    return built


def test_one_compile_per_content_hash(monkeypatch):
    built = counting(monkeypatch)
    text = f"# {uuid.uuid4()}\n{BASE}"            # a text no other test compiled
    first, second = load_text(text, FILE, ORG), load_text(text, "elsewhere.yaml", ORG)
    assert first is not second and first.content_hash == second.content_hash
    compiled = machine.machine_for(first)
    assert machine.machine_for(second) is compiled and machine.machine_for(first) is compiled
    assert built == ["draft"]                     # one Machine, built on first use
    assert compiled.next_step("check", "approve", {"amount": 5}) == "ok"
    assert compiled.next_step("check", "approve", {"amount": 500}) == "sign"
    assert built == ["draft"]                     # firing builds nothing

    changed = load_text(text.replace("dest: ok}", "dest: refused}", 1), FILE, ORG)
    assert changed.content_hash != first.content_hash
    recompiled = machine.machine_for(changed)
    assert recompiled is not compiled and len(built) == 2
    assert recompiled.next_step("check", "approve", {"amount": 5}) == "refused"
    assert machine.machine_for(changed) is recompiled and len(built) == 2


def test_instances_do_not_stay_attached(monkeypatch):
    run = Run("review", {"project_name": "x", "investment_wan": "100", "industry": "新材料"})
    run.decide(2)
    compiled = machine.machine_for(run.spec)
    assert compiled._machine.models == []         # model-free: attach nothing, leak nothing
