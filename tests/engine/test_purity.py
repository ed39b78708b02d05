"""The engine is pure: importing every module of `workflow_app.engine` pulls in neither Flask nor
SQLAlchemy (STYLE.md: the engine imports no framework). Checked in a fresh interpreter, because
this test process has long since imported both.

`workflow_app/__init__.py` (the app factory) is not part of the engine, so the child interpreter
registers the package without running it and imports the engine modules themselves; a second check
makes sure no engine module reaches back up into `workflow_app.<anything else>`.
"""
from __future__ import annotations

import json
import pkgutil
import subprocess
import sys
from pathlib import Path

import workflow_app.engine

ROOT = Path(__file__).resolve().parents[2]
ENGINE = Path(workflow_app.engine.__file__).parent
FORBIDDEN = ("flask", "sqlalchemy", "werkzeug", "apiflask", "alembic", "psycopg")

PROBE = """
import importlib, json, sys, types
pkg = types.ModuleType("workflow_app")
pkg.__path__ = [{package!r}]
sys.modules["workflow_app"] = pkg
for name in {modules!r}:
    importlib.import_module(name)
print(json.dumps(sorted(sys.modules)))
"""


def engine_modules() -> list[str]:
    names = ["workflow_app.engine"]
    names += [f"workflow_app.engine.{m.name}" for m in pkgutil.iter_modules([str(ENGINE)])]
    return names


def test_every_engine_module_is_found():
    names = engine_modules()
    assert {"workflow_app.engine.runtime", "workflow_app.engine.loader",
            "workflow_app.engine.machine", "workflow_app.engine.conditions"} <= set(names)


def test_engine_imports_no_framework():
    code = PROBE.format(package=str(ENGINE.parent), modules=engine_modules())
    out = subprocess.run([sys.executable, "-I", "-c", code], capture_output=True, text=True,
                         cwd=ROOT, check=True)
    loaded = json.loads(out.stdout)
    offenders = sorted(m for m in loaded if m.split(".")[0] in FORBIDDEN)
    assert offenders == [], f"the engine pulled in {offenders}"
    outside = sorted(m for m in loaded if m.startswith("workflow_app.")
                     and not m.startswith("workflow_app.engine"))
    assert outside == [], f"the engine reaches up into {outside}"
