"""Query parameters a projection declares: parsed once, by the engine, with readable errors."""

from __future__ import annotations

from datetime import date

import pytest

from projections import InvalidQueryError, Param
from projections.params import parse_params

DECLARED = {
    "threshold_days": Param("int", default=90, minimum=0, maximum=100_000),
    "anchor": Param("csv", default=("PolicyApproved",), choices=("PolicyApproved", "RulePublished")),
    "from": Param("date"),
    "include_retracted": Param("bool", default=True),
    "subject": Param("str"),
    "formality": Param("str", choices=("formal", "informal_guidance")),
}


def test_missing_parameters_take_their_defaults():
    assert parse_params(DECLARED, {}) == {
        "threshold_days": 90,
        "anchor": ("PolicyApproved",),
        "from": None,
        "include_retracted": True,
        "subject": None,
        "formality": None,
    }


@pytest.mark.parametrize(
    "name, raw, value",
    [
        ("threshold_days", "0", 0),
        ("threshold_days", "100000", 100_000),
        ("anchor", " RulePublished , PolicyApproved ,", ("RulePublished", "PolicyApproved")),
        ("from", "2026-01-15", date(2026, 1, 15)),
        ("include_retracted", "FALSE", False),
        ("include_retracted", "1", True),
        ("subject", "NVIDIA H200", "NVIDIA H200"),
        ("formality", "informal_guidance", "informal_guidance"),
    ],
)
def test_each_kind_parses_its_text(name, raw, value):
    assert parse_params(DECLARED, {name: raw})[name] == value


@pytest.mark.parametrize(
    "name, raw, message",
    [
        ("threshold_days", "ninety", "must be an integer"),
        ("threshold_days", "-1", "must be between 0 and 100000"),
        ("threshold_days", "100001", "must be between 0 and 100000"),
        ("anchor", " , ", "must name at least one value"),
        ("anchor", "PolicyApproved,Rumour", "unknown value(s) Rumour"),
        ("from", "2026-02-30", "invalid date"),
        ("from", "15/01/2026", "not a date"),
        ("include_retracted", "yes", "must be true or false"),
        ("formality", "loud", "must be one of formal, informal_guidance"),
        ("subject", "x" * 2001, "too long"),
        ("subject", "nul\x00", "contains NUL"),
    ],
)
def test_a_malformed_value_is_an_invalid_query_naming_the_parameter(name, raw, message):
    with pytest.raises(InvalidQueryError) as raised:
        parse_params(DECLARED, {name: raw})

    assert list(raised.value.errors) == [name]
    assert message in raised.value.errors[name][0]


def test_every_bad_parameter_is_named_unknown_ones_included():
    with pytest.raises(InvalidQueryError) as raised:
        parse_params(DECLARED, {"threshold_days": "x", "colour": "red", "subject": "ok"})

    assert set(raised.value.errors) == {"threshold_days", "colour"}
    assert "this projection takes: anchor, formality, from" in raised.value.errors["colour"][0]


def test_an_int_without_bounds_is_limited_to_zero_to_a_billion():
    plain = {"n": Param("int")}

    assert parse_params(plain, {"n": "1000000000"})["n"] == 10**9
    with pytest.raises(InvalidQueryError):
        parse_params(plain, {"n": "1000000001"})


def test_describe_renders_defaults_as_text():
    assert DECLARED["anchor"].describe()["default"] == "PolicyApproved"
    assert Param("date", default=date(2026, 1, 1)).describe()["default"] == "2026-01-01"
    assert DECLARED["formality"].describe()["choices"] == ["formal", "informal_guidance"]
    assert DECLARED["subject"].describe()["choices"] is None
