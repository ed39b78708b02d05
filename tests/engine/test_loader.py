"""Loading and validation: every class of error, each reported as FILE:LINE: KEY: message.

Each test takes the valid BASE definition below, changes one or two lines, and checks the exact
problem(s) reported — file, line, key and the gist of the message.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from workflow_app.engine import safe_yaml
from workflow_app.engine.errors import DefinitionError, Problem
from workflow_app.engine.loader import content_hash, load_catalogue, load_text
from workflow_app.engine.organisation import load_organisation
from workflow_app.engine.schema import ProcessDef, StepType

ROOT = Path(__file__).resolve().parents[2]
ORG = load_organisation(ROOT / "process_defs" / "organisation.yaml")
FILE = "defs/sample.yaml"

BASE = """\
key: sample
version: "1"
title: {zh: 样例, en: Sample}
fields:
  - {name: amount, type: decimal, label: {zh: 金额}}
  - {name: kind, type: enum, choices: [a, b], label: {zh: 类别}}
steps:
  - {id: draft, type: start, title: {zh: 填报}}
  - {id: check, type: task, title: {zh: 审查}, assign: {department: sasac, role: head}, return_to: [draft]}
  - {id: sign, type: task, title: {zh: 会签}, assign: {department: audit, role: compliance}, mode: all}
  - {id: ok, type: end, title: {zh: 通过}, outcome: approved}
  - {id: refused, type: end, title: {zh: 不通过}, outcome: rejected}
transitions:
  - {trigger: submit, source: draft, dest: check}
  - trigger: approve
    source: check
    decide:
      - {when: "amount >= 100", dest: sign}
      - {dest: ok}
  - {trigger: approve, source: sign, dest: ok}
  - {trigger: reject, source: [check, sign], dest: refused}
"""


def edit(*changes: tuple[int, str | None], append: str = "") -> str:
    """BASE with line n (1-based) replaced, or removed when the new text is None."""
    lines = BASE.splitlines()
    for number, text in sorted(changes, reverse=True):
        if text is None:
            del lines[number - 1]
        else:
            lines[number - 1] = text
    return "\n".join(lines) + "\n" + append


def problems(text: str | bytes) -> list[Problem]:
    with pytest.raises(DefinitionError) as exc:
        load_text(text, FILE, ORG)
    return exc.value.problems


def one(text: str | bytes) -> Problem:
    found = problems(text)
    assert len(found) == 1, "\n".join(map(str, found))
    return found[0]


def check(problem: Problem, line: int, key: str, message: str) -> None:
    assert (problem.file, problem.line, problem.key) == (FILE, line, key), str(problem)
    assert message in problem.message, str(problem)
    assert str(problem) == f"{FILE}:{line}: {key}: {problem.message}"


def test_base_is_valid():
    spec = load_text(BASE, FILE, ORG)
    assert spec.key == "sample" and spec.content_hash == content_hash(BASE)
    assert list(spec.steps) == ["draft", "check", "sign", "ok", "refused"]
    assert content_hash(BASE.replace("\n", "\r\n")) == spec.content_hash  # line endings do not matter


# ------------------------------------------------------------------ YAML
def test_yaml_syntax_error():
    check(one(edit((10, "  - {id: sign, type: task, title: {zh: 会签}"))), 11, "<yaml>", "YAML syntax")


def test_yaml_bad_indentation():
    check(one(edit((3, "title: {zh: 样例, en: Sample}\n  oops: [1"))), 4, "<yaml>", "YAML syntax")


def test_duplicate_yaml_keys():
    check(one(edit((3, "title: {zh: 样例, zh: 又一个}"))), 3, "title.zh", "duplicate key")
    check(one(edit((2, 'version: "1"\nkey: other'))), 3, "key", "duplicate key")


def test_empty_file_and_non_utf8():
    check(one(""), 1, "<file>", "empty")
    check(one(b"key: \xff\xfe"), 1, "<file>", "not UTF-8")


# ------------------------------------------------------------------ schema (shape)
def test_unknown_key():
    check(one(edit((9, "  - {id: check, type: task, title: {zh: 审查}, assign: {department: sasac, role: head}, colour: red}"))),
          9, "steps[1].colour", "unknown key")
    check(one(BASE + "owner: me\n"), 22, "owner", "unknown key")


@pytest.mark.parametrize(("line", "text", "at", "key", "message"), [
    (2, "version: [1]", 2, "version", "valid string"),
    (10, "  - {id: sign, type: task, title: {zh: 会签}, assign: {department: audit, role: compliance}, mode: 3}",
     10, "steps[2].mode", "'single', 'any', 'all', 'sequential' or 'quorum'"),
    (5, "  - {name: amount, type: money, label: {zh: 金额}}", 5, "fields[0].type", "Input should be"),
    (5, "  - {name: Amount, type: decimal, label: {zh: 金额}}", 5, "fields[0].name", "should match pattern"),
    (14, "  - {trigger: submit, source: 5, dest: check}", 14, "transitions[0].source", "valid string; or"),
    (21, "  - {trigger: reject, source: [check, 7], dest: refused}", 21, "transitions[3].source[1]", "valid string"),
])
def test_wrong_type(line, text, at, key, message):
    check(one(edit((line, text))), at, key, message)


def test_missing_required_key_and_type_rules():
    check(one(edit((3, None))), 1, "title", "required key missing")
    check(one(edit((9, "  - {id: check, type: task, title: {zh: 审查}, return_to: [draft]}"))),
          9, "steps[1]", "a task step needs 'assign'")
    check(one(edit((6, "  - {name: kind, type: enum, label: {zh: 类别}}"))), 6, "fields[1]", "needs 'choices'")


# ------------------------------------------------------------------ cross references
def test_unknown_step_as_transition_source():
    check(one(edit((20, "  - {trigger: approve, source: sigh, dest: ok}"))), 20, "transitions[2].source", "unknown step 'sigh'")


def test_unknown_step_in_a_source_list():
    found = problems(edit((21, "  - {trigger: reject, source: [check, sighn], dest: refused}")))
    check(found[0], 21, "transitions[3].source[1]", "unknown step 'sighn'")


def test_unknown_step_as_destination():
    check(one(edit((14, "  - {trigger: submit, source: draft, dest: chek}"))), 14, "transitions[0].dest", "unknown step 'chek'")


def test_unknown_step_in_a_decision_row():
    check(one(edit((19, "      - {dest: okk}"))), 19, "transitions[1].decide[1].dest", "unknown step 'okk'")


def test_decision_table_default_row_not_last():
    found = problems(edit((18, "      - {dest: ok}"), (19, '      - {when: "amount >= 100", dest: sign}')))
    check(found[0], 18, "transitions[1].decide[0].when", "only the last row may omit 'when'")


def test_unknown_field_in_a_condition():
    check(one(edit((18, '      - {when: "amont >= 100", dest: sign}'))), 18,
          "transitions[1].decide[0].when", "unknown field 'amont'")


@pytest.mark.parametrize(("condition", "reason"), [
    ("amount >=", "syntax error"),
    ("amount.real > 1", "attribute access"),
    ("kind[0] == 'a'", "subscripts"),
    ("amount ** 2 > 1", "the power operator **"),
    ("(lambda: amount)() > 1", "lambda"),
    ("[a for a in kind] == []", "comprehensions"),
    ("__import__('os') == 1", "only these functions may be called"),
])
def test_condition_syntax_and_forbidden_constructs(condition, reason):
    check(one(edit((18, f'      - {{when: "{condition}", dest: sign}}'))), 18,
          "transitions[1].decide[0].when", reason)


def test_condition_on_a_plain_transition():
    check(one(edit((20, '  - {trigger: approve, source: sign, dest: ok, when: "amount.x"}'))), 20,
          "transitions[2].when", "attribute access")


def test_unknown_department_and_role():
    text = edit((9, "  - {id: check, type: task, title: {zh: 审查}, assign: {department: sasak, role: boss}, return_to: [draft]}"))
    found = problems(text)
    assert [(p.line, p.key) for p in found] == [(9, "steps[1].assign.department"), (9, "steps[1].assign.role")]
    assert "unknown department 'sasak'" in found[0].message and "unknown role 'boss'" in found[1].message


def test_unknown_department_field_and_rule_rows():
    text = edit((9, "  - id: check\n    type: task\n    title: {zh: 审查}\n    return_to: [draft]\n"
                    "    assign:\n      rule:\n        - {when: \"amount > 1\", department: nowhere, role: head}\n"
                    "        - {department_field: owner, role: head}"))
    found = problems(text)
    assert [(p.line, p.key) for p in found] == [
        (15, "steps[1].assign.rule[0].department"), (16, "steps[1].assign.rule[1].department_field")]


def test_unreachable_step():
    text = edit((11, "  - {id: orphan, type: task, title: {zh: 孤儿}, assign: {department: sasac, role: head}}\n"
                     "  - {id: ok, type: end, title: {zh: 通过}, outcome: approved}"),
                append="  - {trigger: approve, source: orphan, dest: ok}\n")
    check(one(text), 11, "steps[3].id", "cannot be reached from the start")


def test_non_end_step_with_no_way_out():
    check(one(edit((20, None), (21, "  - {trigger: reject, source: check, dest: refused}"))), 10,
          "steps[2].id", "has no way out")


def test_return_to_not_an_earlier_step():
    check(one(edit((9, "  - {id: check, type: task, title: {zh: 审查}, assign: {department: sasac, role: head}, return_to: [sign]}"))),
          9, "steps[1].return_to[0]", "'sign' is not an earlier step")
    check(one(edit((9, "  - {id: check, type: task, title: {zh: 审查}, assign: {department: sasac, role: head}, return_to: [check]}"))),
          9, "steps[1].return_to[0]", "'check' is not an earlier step")
    check(one(edit((9, "  - {id: check, type: task, title: {zh: 审查}, assign: {department: sasac, role: head}, return_to: [nowhere]}"))),
          9, "steps[1].return_to[0]", "unknown step 'nowhere'")


def test_duplicate_step_ids():
    found = problems(edit((10, "  - {id: check, type: task, title: {zh: 会签}, assign: {department: audit, role: compliance}}")))
    check(found[0], 10, "steps[2].id", "duplicate step 'check'")
    assert all("unknown step 'sign'" in p.message for p in found[1:])  # and the renamed step is missing


def test_duplicate_field_names():
    check(one(edit((6, "  - {name: amount, type: enum, choices: [a, b], label: {zh: 类别}}"))), 6,
          "fields[1].name", "duplicate field 'amount'")


def test_duplicate_branch_ids():
    text = edit((10, "  - id: sign\n    type: parallel\n    title: {zh: 并联}\n    branches:\n"
                     "      - {id: b1, title: {zh: 一}, assign: {department: audit, role: compliance}}\n"
                     "      - {id: b1, title: {zh: 二}, assign: {department: sasac, role: head}}"))
    check(one(text), 15, "steps[2].branches[1].id", "duplicate branch 'b1'")


def test_two_start_steps():
    text = edit((8, "  - {id: draft, type: start, title: {zh: 填报}}\n  - {id: draft2, type: start, title: {zh: 又一个}}"))
    found = problems(text)
    check(found[0], 7, "steps", "exactly one start step is needed, found 2")


def test_start_step_leaves_only_by_submit():
    check(one(edit((14, "  - {trigger: approve, source: draft, dest: check}"))), 14,
          "transitions[0].trigger", "the start step leaves only by 'submit'")


def test_submit_only_from_the_start_and_no_generic_actions_as_triggers():
    found = problems(edit(append="  - {trigger: submit, source: check, dest: ok}\n"
                                 "  - {trigger: withdraw, source: sign, dest: refused}\n"))
    assert [(p.line, p.key) for p in found] == [(22, "transitions[4].trigger"), (23, "transitions[5].trigger")]
    assert "'submit' leaves the start step only" in found[0].message
    assert "built-in action" in found[1].message


def test_sub_process_needs_both_outcomes():
    text = edit((10, "  - {id: sign, type: subprocess, title: {zh: 子流程}, process: sample}"),
                (21, "  - {trigger: reject, source: check, dest: refused}"))
    check(one(text), 10, "steps[2].id", "needs a 'reject' transition")


def test_every_problem_is_reported_at_once():
    text = edit((14, "  - {trigger: submit, source: draft, dest: chek}"),
                (18, '      - {when: "amont >= 100", dest: sign}'),
                (9, "  - {id: check, type: task, title: {zh: 审查}, assign: {department: sasak, role: head}, return_to: [draft]}"))
    assert [p.line for p in problems(text)] == [9, 14, 18]


# ------------------------------------------------------------------ the catalogue
def test_sub_process_naming_an_unknown_process(tmp_path):
    shutil.copy(ROOT / "process_defs" / "organisation.yaml", tmp_path)
    text = edit((10, "  - {id: sign, type: subprocess, title: {zh: 子流程}, process: nowhere}"))
    (tmp_path / "sample.yaml").write_text(text, encoding="utf-8")
    catalogue = load_catalogue([tmp_path])
    [problem] = catalogue.problems
    assert (Path(problem.file).name, problem.line, problem.key) == ("sample.yaml", 10, "steps[2].process")
    assert "unknown process 'nowhere'" in problem.message
    assert [p.key for p in load_catalogue([tmp_path / "sample.yaml"]).problems] == ["steps[2].process"]
    (tmp_path / "other.yaml").write_text(BASE.replace("key: sample", "key: nowhere"), encoding="utf-8")
    assert load_catalogue([tmp_path]).problems == []
    # validating the one file: the sub-process is found beside it
    assert load_catalogue([tmp_path / "sample.yaml"]).problems == []


def test_duplicate_process_keys_and_missing_organisation(tmp_path):
    (tmp_path / "a.yaml").write_text(BASE, encoding="utf-8")
    (tmp_path / "b.yaml").write_text(BASE, encoding="utf-8")
    found = load_catalogue([tmp_path]).problems
    assert [(Path(p.file).name, p.key) for p in found] == [("organisation.yaml", "<file>"), ("b.yaml", "key")]
    assert "also defined in" in found[1].message


# ------------------------------------------------------------------ hostile YAML
def test_alias_bomb_is_refused_before_expansion():
    bomb = "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{c}: &{c} [{', '.join(['*' + p] * 10)}]\n" for p, c in zip("abcdefgh", "bcdefghi"))
    with pytest.raises(DefinitionError) as exc:
        safe_yaml.load(bomb, FILE)
    [problem] = exc.value.problems
    assert "nodes" in problem.message or "aliases" in problem.message
    many = "a: &a x\nb: [" + ", ".join(["*a"] * (safe_yaml.MAX_ALIASES + 1)) + "]\n"
    check(one(many), 2, "<yaml>", f"more than {safe_yaml.MAX_ALIASES} aliases")


def test_billion_laughs_in_a_definition_stops_at_the_node_limit():
    laughs = "lol0: &l0 [lol]\n" + "".join(
        f"lol{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 9)}]\n" for i in range(1, 9))
    with pytest.raises(DefinitionError, match="nodes"):
        load_text(laughs, FILE, ORG)


def test_recursive_alias_is_refused():
    check(one("a: &x [1, *x]\n"), 1, "a[1]", "recursive alias")


@pytest.mark.parametrize("tag", ["!!python/object/apply:os.system ['id']", "!!python/name:os.system",
                                 "!custom {a: 1}", "!!binary aGVsbG8=", "!!set {a, b}"])
def test_custom_tags_are_refused(tag):
    check(one(f"key: sample\nversion: {tag}\n"), 2, "version", "custom tag")


def test_merge_keys_are_refused():
    check(one("base: &b {zh: x}\ntitle:\n  <<: *b\n"), 3, "title", "merge keys")


def test_huge_file_is_refused():
    huge = BASE + "#" + "x" * safe_yaml.MAX_BYTES + "\n"
    check(one(huge), 1, "<file>", "larger than 256 KiB")
    check(one(huge.encode()), 1, "<file>", "larger than 256 KiB")


def test_deep_nesting_is_refused_without_recursion_error():
    for depth in (safe_yaml.MAX_DEPTH + 5, 20_000):
        text = "a: " + "[" * depth + "]" * depth + "\n"
        problem = one(text)
        assert problem.line == 1 and "nesting deeper than" in problem.message
    mapping = "".join("  " * i + f"k{i}:\n" for i in range(safe_yaml.MAX_DEPTH + 3)) + "  " * 40 + "v\n"
    assert "nesting deeper than" in one(mapping).message


def test_line_numbers_survive_in_the_located_tree():
    located = safe_yaml.load(BASE, FILE)
    assert located.line_of(("transitions", 1, "decide", 1, "dest")) == 19
    assert located.line_of(("steps", 2, "nonexistent")) == 10


# ------------------------------------------------------------------ JSON schema
def test_json_schema_export():
    schema = json.loads(json.dumps(ProcessDef.json_schema(), ensure_ascii=False))
    assert schema["$schema"].startswith("https://json-schema.org/")
    assert schema["title"] == "ParkFlow process definition" and schema["type"] == "object"
    assert {"key", "version", "title", "subject", "rules", "fields", "steps", "transitions",
            "title_field", "description"} <= set(schema["properties"])
    assert {"key", "version", "title", "steps", "transitions"} <= set(schema["required"])
    assert schema["additionalProperties"] is False
    step = schema["$defs"]["StepDef"]
    assert set(t.value for t in StepType) == set(schema["$defs"]["StepType"]["enum"])
    assert {"assign", "mode", "quorum", "branches", "return_to", "outcome"} <= set(step["properties"])


# ------------------------------------------------------------------ non-finite numbers
@pytest.mark.parametrize("value", [".nan", ".inf", "-.inf", "1.0e999"])
def test_non_finite_bounds_are_refused_where_they_are_written(value):
    text = edit((5, f"  - {{name: amount, type: decimal, label: {{zh: 金额}}, min: {value}, max: {value}}}"))
    found = problems(text)
    assert [(p.line, p.key) for p in found] == [(5, "fields[0].max"), (5, "fields[0].min")]
    assert all("finite" in p.message for p in found)


@pytest.mark.parametrize(("text", "key"), [
    ("  - {id: sign, type: task, title: {zh: 会签}, assign: {department: audit, role: compliance}, mode: quorum, quorum: .nan}",
     "steps[2].quorum"),
    ("  - {id: sign, type: task, title: {zh: 会签}, assign: {department: audit, role: compliance}, deadline: {working_days: .inf}}",
     "steps[2].deadline.working_days"),
])
def test_non_finite_numbers_anywhere_numeric(text, key):
    check(one(edit((10, text))), 10, key, "finite")


def test_non_finite_number_in_a_condition():
    check(one(edit((18, '      - {when: "amount >= 1e999", dest: sign}'))), 18,
          "transitions[1].decide[0].when", "numbers must be finite")
