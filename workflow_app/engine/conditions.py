"""Safe conditions over form data: parsed and checked once when a definition loads.

Conditions are written by users (`investment_wan >= 5000 and industry in ['新材料', '集成电路']`),
so they are never passed to Python's `eval`. We parse them with `ast`, accept only a whitelist of
node types (no attribute access, no subscripts, no comprehensions, no `**`, no lambdas), check
every name against the definition's fields at load time, and evaluate with simpleeval (≥ 1.0,
whose own limits on string length and repetition stay in force) over plain data only.
"""
from __future__ import annotations

import ast
import math
import operator as op
from dataclasses import dataclass, field
from decimal import Decimal

from simpleeval import EvalWithCompoundTypes, InvalidExpression, safe_add, safe_mult

MAX_LENGTH = 500

_OPERATORS = {
    ast.Add: safe_add, ast.Sub: op.sub, ast.Mult: safe_mult, ast.Div: op.truediv,
    ast.Mod: op.mod, ast.USub: op.neg, ast.UAdd: op.pos, ast.Not: op.not_,
    ast.Eq: op.eq, ast.NotEq: op.ne, ast.Lt: op.lt, ast.LtE: op.le, ast.Gt: op.gt, ast.GtE: op.ge,
    ast.In: lambda a, b: a in b, ast.NotIn: lambda a, b: a not in b,
    ast.Is: op.is_, ast.IsNot: op.is_not,
}
_FUNCTIONS = {"len": len, "abs": abs, "min": min, "max": max}
_ALLOWED_NODES = (
    ast.Expression, ast.BoolOp, ast.And, ast.Or, ast.UnaryOp, ast.Not, ast.USub, ast.UAdd,
    ast.BinOp, ast.Add, ast.Sub, ast.Mult, ast.Div, ast.Mod, ast.Compare, ast.Eq, ast.NotEq,
    ast.Lt, ast.LtE, ast.Gt, ast.GtE, ast.In, ast.NotIn, ast.Is, ast.IsNot, ast.Name, ast.Load,
    ast.Constant, ast.List, ast.Tuple, ast.IfExp, ast.Call,
)
# Names every condition may use besides the definition's fields.
BUILTIN_NAMES = frozenset({"True", "False", "None", "submitter_department", "submitter_group"})


class ConditionSyntaxError(ValueError):
    """The expression is not allowed; the message says why (shown with file:line by the loader)."""


class ConditionEvalError(ValueError):
    """The expression could not be evaluated on this instance's data (e.g. a missing value)."""


@dataclass(frozen=True)
class Condition:
    """A checked, parsed expression. Call `holds(data)`."""

    source: str
    names: frozenset[str]
    _tree: ast.expr = field(repr=False, compare=False)

    def holds(self, data: dict) -> bool:
        names = {n: _plain(data.get(n)) for n in self.names if n not in ("True", "False", "None")}
        evaluator = EvalWithCompoundTypes(operators=_OPERATORS, functions=dict(_FUNCTIONS),
                                          names={**names, "True": True, "False": False, "None": None})
        try:
            return bool(evaluator.eval(self.source, previously_parsed=self._tree))
        except (InvalidExpression, TypeError, ArithmeticError, ValueError) as exc:
            missing = sorted(n for n in self.names if n not in BUILTIN_NAMES and data.get(n) is None)
            hint = f" (no value for {', '.join(missing)})" if missing else ""
            raise ConditionEvalError(f"cannot evaluate {self.source!r}{hint}: {exc}") from None


def compile_condition(source: str, known_names: set[str] | frozenset[str]) -> Condition:
    """Parse and check `source`; raise ConditionSyntaxError with a precise reason."""
    if not isinstance(source, str) or not source.strip():
        raise ConditionSyntaxError("empty condition")
    if len(source) > MAX_LENGTH:
        raise ConditionSyntaxError(f"condition longer than {MAX_LENGTH} characters")
    try:
        tree = ast.parse(source.strip(), mode="eval")
    except SyntaxError as exc:
        raise ConditionSyntaxError(f"syntax error: {exc.msg}") from None
    names: set[str] = set()
    for node in ast.walk(tree):
        if not isinstance(node, _ALLOWED_NODES):
            raise ConditionSyntaxError(f"{_describe(node)} is not allowed in conditions")
        if isinstance(node, ast.Call):
            if not isinstance(node.func, (ast.Name, *_ALLOWED_NODES)):  # name the real culprit
                raise ConditionSyntaxError(f"{_describe(node.func)} is not allowed in conditions")
            if not isinstance(node.func, ast.Name) or node.func.id not in _FUNCTIONS or node.keywords:
                raise ConditionSyntaxError(
                    f"only these functions may be called: {', '.join(sorted(_FUNCTIONS))}")
        elif isinstance(node, ast.Name):
            if node.id.startswith("_"):
                raise ConditionSyntaxError(f"name {node.id!r} is not allowed")
            if node.id in _FUNCTIONS:
                continue
            if node.id not in known_names and node.id not in BUILTIN_NAMES:
                raise ConditionSyntaxError(f"unknown field {node.id!r}")
            names.add(node.id)
        elif isinstance(node, ast.Constant):
            if isinstance(node.value, bytes):
                raise ConditionSyntaxError("bytes literals are not allowed in conditions")
            if isinstance(node.value, complex):
                raise ConditionSyntaxError("complex numbers are not allowed in conditions")
            if isinstance(node.value, float) and not math.isfinite(node.value):
                raise ConditionSyntaxError("numbers must be finite (1e999 is infinity)")
            if isinstance(node.value, float):
                # Form numbers are Decimal; `investment_wan * 1.1` must not mix in binary floats
                # (Decimal * float is a TypeError, and 0.1 is not exact).
                node.value = Decimal(repr(node.value))
    return Condition(source=source.strip(), names=frozenset(names), _tree=tree.body)


def _describe(node: ast.AST) -> str:
    return {
        ast.Attribute: "attribute access", ast.Subscript: "subscripts",
        ast.Pow: "the power operator **", ast.Lambda: "lambda", ast.ListComp: "comprehensions",
        ast.GeneratorExp: "generators", ast.DictComp: "comprehensions", ast.SetComp: "comprehensions",
        ast.NamedExpr: "assignment (:=)", ast.JoinedStr: "f-strings", ast.Starred: "starred arguments",
    }.get(type(node), f"'{type(node).__name__}'")


def _plain(value: object) -> object:
    """Only plain data reaches the evaluator (str, int, Decimal, bool, None, lists of them)."""
    if value is None or isinstance(value, (str, int, bool, Decimal)):
        return value
    if isinstance(value, float):
        return Decimal(str(value))
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return str(value)
