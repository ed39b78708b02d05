"""ProcessSpec -> Mermaid flowchart text, with an instance's position drawn on it.

The page renders the text with the vendored mermaid.js (static/vendor/mermaid). We write the
flowchart ourselves rather than use transitions' GraphMachine: what people need to see is not
only the machine's states but the things that live beside it in the spec — parallel branches
(并联审批, drawn as a subgraph of one node per department), decision-table rows (conditions on
the edges, in words: "拟投资金额 ≥ 5000 或 …", the default row as "否则"), and the 退回 edges
of `return_to` (dotted).

Highlighting: `current` (the step the instance is at), `visited` (steps on the path taken) and
the edges between consecutive steps of the path (`linkStyle`). Node ids are `s_<step id>` and
`s_<step id>__<branch id>`, so no step id can collide with a Mermaid keyword such as `end`.
Pure: no Flask, no SQLAlchemy.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Iterable, Mapping, Sequence

from .schema import Outcome, StepType
from .spec import FieldSpec, ProcessSpec, StepSpec, TransitionSpec

_TRIGGERS = {"submit": ("提交", "Submit"), "approve": ("同意", "Approve"),
             "reject": ("拒绝", "Reject"), "return": ("退回", "Return")}
_OTHERWISE = ("否则", "otherwise")
_WORDS = {  # condition keywords -> words (zh, en)
    "and": ("且", "and"), "or": ("或", "or"), "not": ("非", "not"), "in": ("属于", "in"),
    "True": ("是", "yes"), "False": ("否", "no"), "None": ("空", "empty"),
    "submitter_department": ("发起部门", "submitting department"),
    "submitter_group": ("发起集团", "submitting group"),
    "len": ("长度", "len"), "abs": ("绝对值", "abs"), "min": ("最小值", "min"), "max": ("最大值", "max"),
}
_PHRASES = (  # (pattern, zh, en), applied before single words
    (re.compile(r"\bis\s+not\s+None\b"), " 已填写", " is filled in"),
    (re.compile(r"\bis\s+None\b"), " 未填写", " is empty"),
    (re.compile(r"\bnot\s+in\b"), "不属于", "not in"),
    (re.compile(r"\bis\s+not\b"), "不是", "is not"),
    (re.compile(r"\bis\b"), "是", "is"),
)
_OPERATORS = (("==", "="), ("!=", "≠"), (">=", "≥"), ("<=", "≤"))
_STRING = re.compile(r"""('(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")""")
_NAME = re.compile(r"\b[A-Za-z_][A-Za-z0-9_]*\b")

CLASS_DEFS = (
    "classDef current fill:#fff7e6,stroke:#fa8c16,stroke-width:3px,color:#ad4e00,font-weight:bold",
    "classDef visited fill:#e6f4ff,stroke:#1677ff,color:#003eb3",
    "classDef ok fill:#f6ffed,stroke:#52c41a,color:#135200",
    "classDef bad fill:#fff1f0,stroke:#ff4d4f,color:#a8071a",
)
PATH_LINK_STYLE = "stroke:#1677ff,stroke-width:3px"


def node_id(step_id: str, branch_id: str | None = None) -> str:
    return f"s_{step_id}" + (f"__{branch_id}" if branch_id else "")


def _pick(pair: tuple[str, str], english: bool) -> str:
    return pair[1] if english and pair[1] else pair[0]


def _text(value, english: bool) -> str:
    if value is None:
        return ""
    return value.en if english and value.en else value.zh


def escape(label: str) -> str:
    """Text safe inside a quoted Mermaid label (entity codes, no raw quotes, pipes or tags)."""
    out = label.replace("#", "#35;").replace('"', "#quot;").replace("|", "#124;")
    out = out.replace("<", "#lt;").replace(">", "#gt;")
    return " ".join(out.split())


def describe_condition(source: str, fields: Mapping[str, FieldSpec], english: bool = False) -> str:
    """A condition in words: field names become their labels, operators become symbols."""
    parts = _STRING.split(source)
    out = []
    for i, part in enumerate(parts):
        if i % 2:  # a string literal: show its content only
            out.append(part[1:-1])
            continue
        for pattern, zh, en in _PHRASES:
            part = pattern.sub(en if english else zh, part)
        for op, symbol in _OPERATORS:
            part = part.replace(op, symbol)

        def name(match: re.Match) -> str:
            word = match.group(0)
            if word in fields:
                return _text(fields[word].label, english)
            if word in _WORDS:
                return _pick(_WORDS[word], english)
            return word

        out.append(_NAME.sub(name, part))
    return " ".join("".join(out).split())


@dataclass(frozen=True)
class _Link:
    source: str  # step ids
    dest: str
    text: str
    dotted: bool


def _links(spec: ProcessSpec, english: bool, returns: bool, taken: set[tuple[str, str]]) -> list[_Link]:
    links: list[_Link] = []
    groups: dict[tuple[str, str], list[TransitionSpec]] = {}
    for t in spec.transitions:
        groups.setdefault((t.trigger, t.source), []).append(t)
    for t in spec.transitions:
        rows = groups[(t.trigger, t.source)]
        label = (_pick(_TRIGGERS[t.trigger], english) if t.trigger in _TRIGGERS
                 else _text(t.label, english) or t.trigger)
        if t.condition is not None:
            label += " · " + describe_condition(t.condition.source, spec.field_map, english)
        elif len(rows) > 1 and any(r.condition is not None for r in rows):
            label += " · " + _pick(_OTHERWISE, english)
        links.append(_Link(t.source, t.dest, label, False))
    back = _pick(_TRIGGERS["return"], english)
    for step in spec.steps.values():
        for target in step.return_to:
            if returns or (step.id, target) in taken:
                links.append(_Link(step.id, target, back, True))
    # Two edges between the same pair of steps (同意 · 金额 ≥ 5000 / 同意 · 方式 属于 …) are drawn
    # as one: mermaid puts parallel edges' labels on top of each other.
    merged: dict[tuple[str, str, bool], _Link] = {}
    for link in links:
        key = (link.source, link.dest, link.dotted)
        seen = merged.get(key)
        merged[key] = link if seen is None else _Link(link.source, link.dest, f"{seen.text} / {link.text}",
                                                      link.dotted)
    return list(merged.values())


def _node(step: StepSpec, english: bool) -> list[str]:
    title = escape(_text(step.title, english))
    nid = node_id(step.id)
    if step.type is StepType.parallel:
        lines = [f'  subgraph {nid}["{title}"]', "    direction LR"]
        for b in step.branches:
            lines.append(f'    {node_id(step.id, b.id)}("{escape(_text(b.title, english))}")')
        lines.append("  end")
        return lines
    if step.type in (StepType.start, StepType.end):
        return [f'  {nid}(["{title}"])']
    if step.type is StepType.subprocess:
        return [f'  {nid}[["{title}"]]']
    return [f'  {nid}("{title}")']


def mermaid(spec: ProcessSpec, *, current: str | None = None, path: Sequence[str] = (),
            english: bool = False, returns: bool = True, direction: str = "TD") -> str:
    """Mermaid `flowchart` text for `spec`; `current` and `path` (step ids in the order the
    instance went through them) are highlighted when given. `returns=False` draws only the 退回
    edges the path took (an instance page needs its own story, not every possible return)."""
    taken = set(zip(path, path[1:]))
    lines = [f"flowchart {direction}"]
    for step in spec.steps.values():
        lines.extend(_node(step, english))
    links = _links(spec, english, returns, taken)
    for link in links:
        arrow = "-.->" if link.dotted else "-->"
        lines.append(f'  {node_id(link.source)} {arrow}|"{escape(link.text)}"| {node_id(link.dest)}')
    lines.extend("  " + c for c in CLASS_DEFS)

    def classes(name: str, step_ids: Iterable[str]) -> None:
        ids = []
        for sid in step_ids:
            step = spec.steps.get(sid)
            if step is None:
                continue
            ids.append(node_id(sid))
            ids.extend(node_id(sid, b.id) for b in step.branches)
        if ids:
            lines.append(f"  class {','.join(dict.fromkeys(ids))} {name}")

    ends = [s for s in spec.steps.values() if s.type is StepType.end]
    classes("ok", [s.id for s in ends if s.outcome is Outcome.approved])
    classes("bad", [s.id for s in ends if s.outcome is not Outcome.approved])
    classes("visited", [s for s in dict.fromkeys(path) if s != current])
    if current:
        classes("current", [current])
    indices = [str(i) for i, link in enumerate(links) if (link.source, link.dest) in taken]
    if indices:
        lines.append(f"  linkStyle {','.join(indices)} {PATH_LINK_STYLE}")
    return "\n".join(lines) + "\n"
