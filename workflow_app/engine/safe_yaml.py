"""Reading user-written YAML safely, keeping line numbers.

Definitions are written by district IT staff, so a file is untrusted input. `yaml.safe_load`
refuses `!!python/...` tags but still expands alias bombs (a 300-byte file can expand to millions
of nodes), so we compose the node graph ourselves with limits on file size, aliases, nesting depth
and total nodes *before* building Python objects, and we refuse every non-standard tag.

`load(text, source)` returns a `Located` tree: plain Python values plus a side table mapping each
dict key path to its line, so schema errors can name `FILE:LINE: KEY`.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from .errors import DefinitionError, Problem

MAX_BYTES = 256 * 1024
MAX_ALIASES = 100
MAX_DEPTH = 32
MAX_NODES = 50_000

_STANDARD_TAGS = {
    "tag:yaml.org,2002:map",
    "tag:yaml.org,2002:seq",
    "tag:yaml.org,2002:str",
    "tag:yaml.org,2002:int",
    "tag:yaml.org,2002:float",
    "tag:yaml.org,2002:bool",
    "tag:yaml.org,2002:null",
    "tag:yaml.org,2002:timestamp",
}


@dataclass
class Located:
    """Parsed data plus the source line of every key path (tuple of keys/indexes)."""

    data: object
    source: str
    lines: dict[tuple, int] = field(default_factory=dict)

    def line_of(self, path: tuple) -> int:
        """Line of the deepest known prefix of `path` (1-based)."""
        while path:
            if path in self.lines:
                return self.lines[path]
            path = path[:-1]
        return self.lines.get((), 1)


def _problem(source: str, line: int, key: str, message: str) -> DefinitionError:
    return DefinitionError([Problem(source, line, key, message)])


class _LimitedLoader(yaml.SafeLoader):
    """SafeLoader that counts aliases while composing (before anything is expanded)."""

    def __init__(self, stream: str, source: str):
        super().__init__(stream)
        self._source = source
        self._aliases = 0
        self._depth = 0

    def compose_node(self, parent, index):  # type: ignore[override]
        if self.check_event(yaml.AliasEvent):
            self._aliases += 1
            if self._aliases > MAX_ALIASES:
                mark = self.peek_event().start_mark
                raise _problem(self._source, mark.line + 1, "<yaml>",
                               f"more than {MAX_ALIASES} aliases; refusing to expand")
        # PyYAML's composer recurses once per nesting level: a 256 KiB file of `[[[[...` would
        # end in RecursionError, so the depth is limited here, while composing.
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH + 1:
                mark = self.peek_event().start_mark
                raise _problem(self._source, mark.line + 1, "<yaml>",
                               f"nesting deeper than {MAX_DEPTH} levels")
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def load(text: str | bytes, source: str = "<string>") -> Located:
    """Parse one YAML document with limits; raise DefinitionError naming file and line."""
    if isinstance(text, bytes):
        if len(text) > MAX_BYTES:
            raise _problem(source, 1, "<file>", f"file is larger than {MAX_BYTES // 1024} KiB")
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise _problem(source, 1, "<file>", f"not UTF-8: {exc.reason}") from None
    if len(text.encode("utf-8")) > MAX_BYTES:
        raise _problem(source, 1, "<file>", f"file is larger than {MAX_BYTES // 1024} KiB")
    loader = _LimitedLoader(text, source)
    try:
        root = loader.get_single_node()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 1
        raise _problem(source, line, "<yaml>", f"YAML syntax: {exc.problem or exc}") from None
    except yaml.YAMLError as exc:
        raise _problem(source, 1, "<yaml>", f"YAML error: {exc}") from None
    finally:
        loader.dispose()
    if root is None:
        raise _problem(source, 1, "<file>", "the file is empty")
    located = Located(data=None, source=source)
    counter = [0]
    located.data = _build(root, (), 0, located, counter, set())
    return located


def _build(node: Node, path: tuple, depth: int, out: Located, counter: list[int],
           active: set[int]) -> object:
    """Turn a composed node into plain data, enforcing depth/node limits and tags."""
    line = node.start_mark.line + 1
    counter[0] += 1
    if counter[0] > MAX_NODES:
        raise _problem(out.source, line, _key(path), f"document expands to more than {MAX_NODES} nodes")
    if depth > MAX_DEPTH:
        raise _problem(out.source, line, _key(path), f"nesting deeper than {MAX_DEPTH} levels")
    if node.tag not in _STANDARD_TAGS:
        raise _problem(out.source, line, _key(path), f"custom tag {node.tag!r} is not allowed")
    if id(node) in active:  # recursive alias (a: &x [*x]) would never finish
        raise _problem(out.source, line, _key(path), "recursive alias")
    out.lines.setdefault(path, line)
    if isinstance(node, ScalarNode):
        constructor = yaml.SafeLoader.yaml_constructors[node.tag]
        return constructor(_SCALAR_LOADER, node)
    active.add(id(node))
    try:
        if isinstance(node, SequenceNode):
            return [_build(child, path + (i,), depth + 1, out, counter, active)
                    for i, child in enumerate(node.value)]
        assert isinstance(node, MappingNode)
        result: dict = {}
        for key_node, value_node in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                raise _problem(out.source, key_node.start_mark.line + 1, _key(path),
                               "merge keys (<<) are not allowed")
            key = _build(key_node, path, depth + 1, out, counter, active)
            if not isinstance(key, (str, int)):
                raise _problem(out.source, key_node.start_mark.line + 1, _key(path),
                               "mapping keys must be strings")
            if key in result:
                raise _problem(out.source, key_node.start_mark.line + 1, _key(path + (key,)),
                               "duplicate key")
            out.lines[path + (key,)] = key_node.start_mark.line + 1
            result[key] = _build(value_node, path + (key,), depth + 1, out, counter, active)
        return result
    finally:
        active.discard(id(node))


_SCALAR_LOADER = yaml.SafeLoader("")


def _key(path: tuple) -> str:
    """Render a key path as `steps[2].assign.role`."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "<root>"


key_path = _key
