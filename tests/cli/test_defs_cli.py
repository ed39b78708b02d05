"""`flask defs validate | schema | sync` through the real app factory and Flask's CLI runner."""
from __future__ import annotations

import json
import re
import shutil

import pytest

from tests.cli.runner import ROOT, Cli

LINE = re.compile(r"^(?P<file>[^:]+\.ya?ml):(?P<line>\d+): (?P<key>\S+): (?P<message>.+)$")


@pytest.fixture
def cli(database_url, defs_dir):
    runner = Cli(database_url, defs_dir)
    yield runner
    runner.close()


@pytest.fixture
def invalid_dir(tmp_path):
    shutil.copy(ROOT / "process_defs" / "organisation.yaml", tmp_path)
    for f in (ROOT / "tests" / "fixtures" / "invalid").iterdir():
        shutil.copy(f, tmp_path)
    shutil.copy(ROOT / "tests" / "fixtures" / "review.yaml", tmp_path)  # one valid file among them
    return tmp_path


def test_validate_prints_file_line_key_message_and_exits_1(cli, invalid_dir):
    result = cli("defs", "validate", str(invalid_dir))
    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    parsed = [LINE.match(line) for line in lines]
    assert all(parsed), lines
    found = {(m["file"].rsplit("/", 1)[-1], int(m["line"]), m["key"]) for m in parsed}
    assert found == {
        ("bad_condition.yaml", 9, "steps[1].assign.department"),
        ("bad_condition.yaml", 13, "transitions[1].when"),
        ("broken_syntax.yaml", 5, "<yaml>"),
        ("unknown_step.yaml", 11, "transitions[1].dest"),
        # every reference error of one file, not only the first
        ("several_errors.yml", 7, "fields[0].required_at[0]"),
        ("several_errors.yml", 10, "steps[1].assign.department"),
        ("several_errors.yml", 10, "steps[1].return_to[0]"),
        ("several_errors.yml", 11, "steps[2].id"),
        ("several_errors.yml", 15, "transitions[1].when"),
        ("several_errors.yml", 16, "transitions[2].dest"),
    }
    assert "unknown step 'finished'" in result.stdout and "attribute access" in result.stdout
    assert "no way out" in result.stdout and "unknown step 'drafts'" in result.stdout
    assert "10 problem(s)" in result.stderr


@pytest.mark.parametrize("content", [None, "organisation_only", "text"])
def test_validate_refuses_a_path_without_definitions(cli, tmp_path, content):
    if content == "organisation_only":
        shutil.copy(ROOT / "process_defs" / "organisation.yaml", tmp_path)
    elif content == "text":
        (tmp_path / "notes.txt").write_text("not a definition", encoding="utf-8")
    result = cli("defs", "validate", str(tmp_path))
    assert result.exit_code == 1
    assert f"{tmp_path}:1: <file>: no process definitions (*.yaml, *.yml) found" in result.stdout


def test_validate_a_single_file(cli, invalid_dir):
    result = cli("defs", "validate", str(invalid_dir / "unknown_step.yaml"))
    assert result.exit_code == 1
    assert [line for line in result.stdout.splitlines() if "unknown_step.yaml:11:" in line]


def test_validate_the_shipped_definitions(cli):
    result = cli("defs", "validate", str(ROOT / "process_defs"))
    assert result.exit_code == 0, result.output
    assert "definition(s) valid" in result.stdout and "investment_review" in result.stdout


def test_validate_defaults_to_the_configured_directory(cli):
    result = cli("defs", "validate")
    assert result.exit_code == 0, result.output
    assert "child, modes, parent, review, routing" in result.stdout


def test_schema_is_json(cli):
    result = cli("defs", "schema")
    assert result.exit_code == 0
    schema = json.loads(result.stdout)
    assert {"key", "version", "steps", "transitions"} <= set(schema["properties"])
    assert "required_at" in schema["$defs"]["FieldDef"]["properties"]
    assert "resume_at" in schema["$defs"]["StepDef"]["properties"]


def test_sync_stores_each_definition_once(cli, db):
    first = cli("defs", "sync")
    assert first.exit_code == 0, first.output
    assert re.search(r"^review: revision 1 \(version 1, [0-9a-f]{12}\) new$", first.stdout, re.M)
    again = cli("defs", "sync")
    assert again.exit_code == 0 and " new" not in again.stdout


def test_validate_checks_the_warning_rules_beside_the_definitions(cli, tmp_path):
    shutil.copytree(ROOT / "process_defs", tmp_path / "defs")
    good = cli("defs", "validate", str(tmp_path / "defs"))
    assert good.exit_code == 0, good.output
    assert "1 rules file(s) valid: warning_rules.yaml" in good.stdout
    rules = tmp_path / "defs" / "rules" / "warning_rules.yaml"
    text = rules.read_text(encoding="utf-8")
    rules.write_text(text.replace('when: "occupancy_pct < 60"', 'when: "occupancy_pct < sixty"', 1),
                     encoding="utf-8")
    bad = cli("defs", "validate", str(tmp_path / "defs"))
    assert bad.exit_code == 1
    [line] = [m for m in map(LINE.match, bad.stdout.splitlines()) if m]
    assert line["file"].endswith("rules/warning_rules.yaml") and line["key"] == "rules[1].when"
    assert int(line["line"]) == text[:text.index('when: "occupancy_pct < 60"')].count("\n") + 1
    # a rules file named on its own is checked as rules, not as a process definition
    alone = cli("defs", "validate", str(rules))
    assert alone.exit_code == 1 and "rules[1].when" in alone.stdout


@pytest.fixture
def own_defs(tmp_path, database_url, db):
    """A definitions folder of this test's own, to edit between syncs."""
    shutil.copy(ROOT / "process_defs" / "organisation.yaml", tmp_path)
    for name in ("review", "child"):
        shutil.copy(ROOT / "tests" / "fixtures" / f"{name}.yaml", tmp_path)
    runner = Cli(database_url, tmp_path)
    yield tmp_path, runner
    runner.close()


def test_sync_warns_when_the_content_changes_but_the_version_does_not(own_defs):
    folder, cli = own_defs
    assert cli("defs", "sync").exit_code == 0
    review = folder / "review.yaml"
    review.write_text(review.read_text(encoding="utf-8").replace("title: {zh: 测试评审", "title: {zh: 测试评审（修订）"),
                      encoding="utf-8")
    changed = cli("defs", "sync")
    assert changed.exit_code == 0, changed.output
    assert re.search(r"^review: revision 2 \(version 1, [0-9a-f]{12}\) new$", changed.stdout, re.M)
    assert (f"warning: {review}: content changed but its declared version '1' did not (revision 1 "
            "has the same version); stored as revision 2") in changed.stderr
    assert "child" not in changed.stderr
    review.write_text(review.read_text(encoding="utf-8").replace('version: "1"', 'version: "2"'), encoding="utf-8")
    bumped = cli("defs", "sync")
    assert bumped.exit_code == 0 and "revision 3 (version 2" in bumped.stdout and "warning" not in bumped.stderr


def test_diagram_prints_the_latest_mermaid(own_defs):
    folder, cli = own_defs
    missing = cli("defs", "diagram", "review")
    assert missing.exit_code == 1 and "no process 'review' (run `flask defs sync`)" in missing.stderr
    assert cli("defs", "sync").exit_code == 0
    result = cli("defs", "diagram", "review")
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert out.splitlines()[0].startswith(("stateDiagram", "flowchart", "graph"))
    for step in ("draft", "assess", "joint", "sasac", "approved", "rejected"):
        assert step in out
    unknown = cli("defs", "diagram", "nosuch")
    assert unknown.exit_code == 1 and "no process 'nosuch'" in unknown.stderr
