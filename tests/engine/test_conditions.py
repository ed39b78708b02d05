"""Safe conditions: what they can say, what they refuse at load time, how they fail at run time."""
from __future__ import annotations

from decimal import Decimal

import pytest

from workflow_app.engine import forms
from workflow_app.engine.conditions import (BUILTIN_NAMES, MAX_LENGTH, ConditionEvalError,
                                            ConditionSyntaxError, compile_condition)
from tests.engine.harness import spec

FIELDS = {"investment_wan", "industry", "area_m2", "name", "tags", "flag", "count"}


def holds(source: str, **data) -> bool:
    return compile_condition(source, FIELDS).holds(data)


# ------------------------------------------------------------------ what conditions can say
@pytest.mark.parametrize(("source", "data", "expected"), [
    ("investment_wan >= 5000", {"investment_wan": Decimal("5000")}, True),
    ("investment_wan > 5000", {"investment_wan": Decimal("5000")}, False),
    ("investment_wan < 5000.5", {"investment_wan": Decimal("5000.4")}, True),
    ("investment_wan <= 0", {"investment_wan": Decimal("0")}, True),
    ("investment_wan == 5000", {"investment_wan": Decimal("5000.00")}, True),
    ("investment_wan != 5000", {"investment_wan": Decimal("5000.01")}, True),
    ("100 <= area_m2 < 5000", {"area_m2": Decimal("100")}, True),
    ("industry in ['新材料', '集成电路']", {"industry": "集成电路"}, True),
    ("industry in ('新材料', '集成电路')", {"industry": "智能制造"}, False),
    ("industry not in ['新材料']", {"industry": "智能制造"}, True),
    ("'储能' in name", {"name": "储能电池配套"}, True),
    ("investment_wan >= 5000 and industry in ['新材料', '集成电路']",
     {"investment_wan": Decimal("6000"), "industry": "新材料"}, True),
    ("investment_wan >= 5000 or flag", {"investment_wan": Decimal("1"), "flag": True}, True),
    ("not flag", {"flag": False}, True),
    ("flag is None", {}, True),
    ("name is not None", {"name": "x"}, True),
    ("len(name) > 3", {"name": "abcd"}, True),
    ("abs(count) == 2 and max(count, 5) == 5 and min(count, 5) == -2", {"count": -2}, True),
    ("investment_wan * 1.1 > 110", {"investment_wan": Decimal("100.01")}, True),   # Decimal maths
    ("investment_wan * 0.1 == 10", {"investment_wan": Decimal("100")}, True),       # no float error
    ("(count + 1) % 2 == 0 and -count < 0", {"count": 3}, True),
    ("'high' if investment_wan > 10 else 'low'", {"investment_wan": Decimal("11")}, True),
    ("submitter_group == 'zhentou'", {"submitter_group": "zhentou"}, True),
])
def test_conditions_evaluate(source, data, expected):
    assert holds(source, **data) is expected


def test_decimals_come_from_stored_strings():
    """Stored form data keeps decimals as strings; `forms.typed` gives conditions Decimals, so
    '5000.00' equals 5000 and '9' is not greater than '10' the way strings would be."""
    review = spec("review")
    typed = forms.typed(review, {"investment_wan": "5000.00", "industry": "新材料", "project_name": "p"})
    assert typed["investment_wan"] == Decimal("5000")
    condition = compile_condition("investment_wan >= 5000", {"investment_wan"})
    assert condition.holds(typed)
    assert not compile_condition("investment_wan > 10", {"investment_wan"}).holds(
        forms.typed(review, {"investment_wan": "9"}))
    assert compile_condition("investment_wan > 10", {"investment_wan"}).holds({"investment_wan": 10.5})


def test_names_are_recorded_for_evaluation():
    condition = compile_condition(" investment_wan >= 5000 and industry in ['x'] ", FIELDS)
    assert condition.names == {"investment_wan", "industry"} and condition.source.startswith("investment_wan")
    assert {"submitter_department", "submitter_group"} <= BUILTIN_NAMES


# ------------------------------------------------------------------ run-time failures
def test_missing_value_is_named_in_the_error():
    with pytest.raises(ConditionEvalError) as exc:
        holds("investment_wan >= 5000 and area_m2 > 1", area_m2=Decimal(3))
    assert "no value for investment_wan" in str(exc.value)
    assert "investment_wan >= 5000" in str(exc.value)


def test_division_by_zero_and_type_mismatch_are_evaluation_errors():
    with pytest.raises(ConditionEvalError):
        holds("investment_wan / count > 1", investment_wan=Decimal(1), count=0)
    with pytest.raises(ConditionEvalError):
        holds("name > 3", name="abc")


def test_string_repetition_is_limited():
    assert holds("len('ab' * 1000) == 2000")
    with pytest.raises(ConditionEvalError, match="cannot evaluate"):
        holds("len('ab' * 100000) > 0")
    with pytest.raises(ConditionEvalError):
        holds("len(name * 100000000) > 0", name="abc")
    with pytest.raises(ConditionEvalError):
        holds("len(name + name) > 0", name="x" * 60000)


# ------------------------------------------------------------------ refused at load time
@pytest.mark.parametrize(("source", "reason"), [
    ("name.upper() == 'X'", "attribute access"),
    ("investment_wan.__class__", "attribute access"),
    ("tags[0] == 'x'", "subscripts"),
    ("investment_wan ** 99999999 > 1", "the power operator"),
    ("2 ** 10 > 1", "the power operator"),
    ("(lambda: 1)() == 1", "lambda"),
    ("[x for x in tags] == []", "comprehensions"),
    ("{x for x in tags}", "comprehensions"),
    ("{x: 1 for x in tags}", "comprehensions"),
    ("len(x for x in tags) > 0", "generators"),
    ("any(tags)", "only these functions"),
    ("__import__('os').system('id')", "attribute access"),
    ("__import__('os') == 1", "only these functions"),
    ("eval('1')", "only these functions"),
    ("open('/etc/passwd')", "only these functions"),
    ("len(name, key=1)", "only these functions"),
    ("(n := 3) > 1", "assignment"),
    ("f'{name}' == 'x'", "f-strings"),
    ("max(*tags) > 1", "starred"),
    ("{'a': 1} == {}", "'Dict'"),
    ("b'x' == name", "bytes"),
    ("1j == 1", "complex"),
    ("count << 2 > 1", "'LShift'"),
    ("_secret > 1", "not allowed"),
    ("unknown_field > 1", "unknown field 'unknown_field'"),
    ("investment_wan >=", "syntax error"),
    ("x = 1", "syntax error"),
    ("", "empty"),
    ("   ", "empty"),
])
def test_refused_constructs(source, reason):
    with pytest.raises(ConditionSyntaxError, match=reason.replace("(", r"\(")):
        compile_condition(source, FIELDS)


def test_length_limit():
    long = "name == '" + "x" * MAX_LENGTH + "'"
    with pytest.raises(ConditionSyntaxError, match=f"longer than {MAX_LENGTH}"):
        compile_condition(long, FIELDS)
    compile_condition("name == '" + "x" * (MAX_LENGTH - 20) + "'", FIELDS)


def test_only_plain_data_reaches_the_evaluator():
    """Objects passed as form values are turned into strings, so nothing callable or with
    attributes to climb through ever becomes a name in an expression."""
    class Sneaky:
        def __str__(self):
            return "sneaky"
    assert holds("name == 'sneaky'", name=Sneaky())
    assert holds("tags == ['a', 'sneaky']", tags=("a", Sneaky()))
