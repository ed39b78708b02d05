"""ProcessSpec -> Mermaid flowchart text (engine/diagram.py)."""
from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from workflow_app.engine import diagram
from workflow_app.engine.diagram import describe_condition, escape, mermaid
from workflow_app.engine.loader import load_catalogue, load_file, load_text

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def review():
    return load_file(ROOT / "tests" / "fixtures" / "review.yaml")


def links(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if "-->" in line or "-.->" in line]


def test_steps_become_nodes_and_the_parallel_step_a_subgraph(review):
    text = mermaid(review)
    assert text.startswith("flowchart TD\n")
    assert '  s_draft(["填报"])' in text                   # start: stadium
    assert '  s_assess("投促中心评估")' in text
    assert '  subgraph s_joint["并联审查"]' in text
    assert '    s_joint__industry("经信局")' in text and '    s_joint__plan("发改局")' in text
    assert '  s_approved(["通过"])' in text and "class s_approved ok" in text
    assert "class s_rejected bad" in text


def test_edges_carry_trigger_labels_and_decision_table_conditions(review):
    edges = links(mermaid(review))
    assert 's_draft -->|"提交"| s_assess' in edges
    assert 's_assess -->|"同意 · 投资额 ≥ 5000 且 行业 属于 [新材料, 集成电路]"| s_joint' in edges
    assert 's_assess -->|"同意 · 否则"| s_sasac' in edges          # the default row of the table
    assert 's_joint -->|"同意"| s_sasac' in edges                   # a plain transition: no "否则"
    assert 's_sasac -->|"拒绝"| s_rejected' in edges
    assert 's_joint -.->|"退回"| s_assess' in edges                 # return_to, dotted


def test_current_step_and_path_are_highlighted(review):
    text = mermaid(review, current="joint", path=["draft", "assess", "joint"])
    assert "class s_joint,s_joint__industry,s_joint__plan current" in text
    assert "class s_draft,s_assess visited" in text
    edges = links(text)
    styled = re.search(r"linkStyle ([\d,]+) stroke:#1677ff", text).group(1).split(",")
    assert sorted(edges[int(i)] for i in styled) == sorted([
        's_draft -->|"提交"| s_assess',
        's_assess -->|"同意 · 投资额 ≥ 5000 且 行业 属于 [新材料, 集成电路]"| s_joint'])


def test_an_instance_view_draws_only_the_returns_it_took(review):
    text = mermaid(review, current="draft", path=["draft", "assess", "draft"], returns=False)
    dotted = [e for e in links(text) if "-.->" in e]
    assert dotted == ['s_assess -.->|"退回"| s_draft']
    assert "class s_draft current" in text and "class s_assess visited" in text
    assert "linkStyle" in text


def test_english_labels(review):
    text = mermaid(review, english=True)
    assert '  s_assess("投促中心评估")' in text  # no English title in the file: Chinese stays
    assert 's_draft -->|"Submit"| s_assess' in text
    assert "Approve · otherwise" in text


def test_labels_are_escaped_and_keywords_cannot_clash():
    spec = load_text('''
key: quoting
version: "1"
title: {zh: 引号}
fields:
  - {name: amount, type: decimal, label: {zh: 金额 "A|B"}}
steps:
  - {id: start, type: start, title: {zh: "填报 <b>#1</b>"}}
  - {id: end, type: end, title: {zh: 结束}, outcome: approved}
  - {id: other, type: end, title: {zh: 否}, outcome: rejected}
transitions:
  - {trigger: submit, source: start, dest: end, when: "amount > 10"}
  - {trigger: submit, source: start, dest: other}
''')
    text = mermaid(spec)
    assert '  s_start(["填报 #lt;b#gt;#35;1#lt;/b#gt;"])' in text
    assert 's_start -->|"提交 · 金额 #quot;A#124;B#quot; #gt; 10"| s_end' in text
    assert "  s_end([" in text  # 'end' is a Mermaid keyword: ids are prefixed
    assert escape('x "y"') == "x #quot;y#quot;"


def test_describe_condition():
    fields = load_file(ROOT / "tests" / "fixtures" / "review.yaml").field_map
    assert describe_condition("note is not None and investment_wan != 0", fields) == "备注 已填写 且 投资额 ≠ 0"
    assert describe_condition("industry not in ['新材料']", fields) == "行业 不属于 [新材料]"
    assert describe_condition("submitter_group == 'zhentou'", fields) == "发起集团 = zhentou"
    # labels without English text stay Chinese; the words around them switch
    assert describe_condition("note is None or investment_wan <= 5", fields, english=True) == \
        "备注 is empty or 投资额 ≤ 5"


def test_every_shipped_definition_renders():
    catalogue = load_catalogue([ROOT / "process_defs"])
    assert catalogue.specs and not catalogue.problems
    for spec in catalogue.specs.values():
        text = mermaid(spec, current=spec.start_step.id, path=[spec.start_step.id])
        for step_id in spec.steps:
            assert f"s_{step_id}" in text, (spec.key, step_id)
        assert f"class s_{spec.start_step.id} current" in text


def test_diagram_module_is_pure():
    tree = ast.parse(Path(diagram.__file__).read_text(encoding="utf-8"))
    imported = {n.module.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module} | \
               {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    assert not imported & {"flask", "sqlalchemy", "flask_babel", "werkzeug"}


def test_parallel_edges_between_two_steps_share_one_label():
    """Two conditional edges from one step to the same step are one edge with both conditions:
    mermaid would draw their labels on top of each other."""
    from pathlib import Path

    from workflow_app.engine.loader import load_file
    spec = load_file(Path(__file__).resolve().parents[2] / "process_defs" / "investment_review.yaml")
    text = mermaid(spec)
    edges = [line.split("|")[0].split() + line.split("|")[-1].split() for line in text.splitlines()
             if "-->|" in line or "-.->|" in line]
    pairs = [(e[0], e[-1]) for e in edges]
    assert len(pairs) == len(set(pairs))
    assert any(" / " in line for line in text.splitlines() if "-->|" in line)
