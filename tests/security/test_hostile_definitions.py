"""Hostile process definitions (they are written by users): YAML alias bombs, custom tags, huge
files, deep nesting, and condition expressions that try attribute access, imports, huge powers or
string multiplication. `flask defs sync` refuses with FILE:LINE and stores nothing; a condition
that blows up only when evaluated refuses the action and writes nothing."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.cli.runner import Cli
from tests.security.conftest import add_crowd, snapshot
from tests.web.helpers import act, open_tasks, start
from workflow_app.engine.errors import InvalidAction
from workflow_app.engine.runtime import Request

ROOT = Path(__file__).resolve().parents[2]
REVIEW = (ROOT / "tests" / "fixtures" / "review.yaml").read_text(encoding="utf-8")

BOMB = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, "
    f"*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}]\n" for i in range(20))
DEEP = "key: deep\nx: " + "[" * 200 + "]" * 200 + "\n"
HUGE = REVIEW + "\n# " + "填" * 200_000 + "\n"


def condition(expression: str) -> str:
    return REVIEW.replace("investment_wan >= 5000 and industry in ['新材料', '集成电路']", expression)


HOSTILE_FILES = {
    "alias_bomb": (BOMB, "aliases"),
    "python_tag": ("key: x\nobj: !!python/object/apply:os.system ['echo pwned']\n", "tag"),
    "custom_tag": ("key: x\nobj: !include /etc/passwd\n", "tag"),
    "huge_file": (HUGE, "larger than"),
    "deep_nesting": (DEEP, "nesting deeper"),
    "attribute_access": (condition("project_name.__class__.__mro__"), "attribute access"),
    "dunder_name": (condition("__import__('os').system('id') == 0"), "not allowed"),
    "import_call": (condition("open('/etc/passwd') == 1"), "only these functions"),
    "huge_power": (condition("investment_wan ** 999999999 > 1"), "power operator"),
    "lambda": (condition("(lambda: 1)() == 1"), "lambda"),
    "comprehension": (condition("[x for x in industry] == []"), "comprehensions"),
    "subscript": (condition("industry[0] == '新'"), "subscripts"),
}


@pytest.mark.parametrize("name", list(HOSTILE_FILES))
def test_hostile_definition_is_refused_and_nothing_stored(app, people, database_url, defs_dir, tmp_path, name):
    content, expected = HOSTILE_FILES[name]
    folder = tmp_path / "defs"
    folder.mkdir()
    shutil.copy(defs_dir / "organisation.yaml", folder)
    (folder / f"{name}.yaml").write_text(content, encoding="utf-8")
    before = snapshot(app)
    cli = Cli(database_url, folder)
    try:
        result = cli("defs", "sync")
    finally:
        cli.close()
    assert result.exit_code == 1
    assert f"{name}.yaml:" in result.output and expected in result.output, result.output[-600:]
    assert "pwned" not in result.output
    assert snapshot(app) == before


def test_string_multiplication_in_a_condition_refuses_the_action(make_app, clock, tmp_path, sec_defs):
    """`len(project_name * 100000000)` compiles (the loader cannot know the length) but simpleeval
    refuses to build a 100-million-character string: the approval is refused, nothing written."""
    folder = tmp_path / "defs"
    shutil.copytree(sec_defs, folder)
    (folder / "review.yaml").write_text(condition("len(project_name * 100000000) > 0"), encoding="utf-8")
    app = make_app(PROCESS_DEFS=str(folder))
    people = add_crowd(app, clock())
    iid = start(app, people)
    [task] = open_tasks(app, iid)
    act(app, people, "promo1", iid, Request("claim", task.id))
    before = snapshot(app)
    with pytest.raises(InvalidAction) as refused:
        act(app, people, "promo1", iid, Request("approve", task.id, opinion="同意"))
    assert "cannot evaluate" in refused.value.message
    assert snapshot(app) == before
