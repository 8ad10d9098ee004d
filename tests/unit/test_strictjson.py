"""The one JSON reader: what it refuses, and that no input makes it do anything but answer."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lighthouse import strictjson
from lighthouse.errors import MalformedRequest, PayloadTooLarge

LIMIT = 64 * 1024


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        (b"{nope", "INVALID_JSON"),
        (b"", "EMPTY_BODY"),
        (b'{"a": NaN}', "NON_FINITE_NUMBER"),
        (b'{"a": Infinity}', "NON_FINITE_NUMBER"),
        (b'{"a": 1e400}', "NUMBER_OUT_OF_RANGE"),
        (b'{"a": -' + b"1" * 320 + b"}", "NUMBER_OUT_OF_RANGE"),
        (b'{"a": ' + b"1" * 5000 + b"}", "NUMBER_OUT_OF_RANGE"),
        (b'["\\udc00"]', "LONE_SURROGATE"),
        (b'{"\\ud800": 1}', "LONE_SURROGATE"),
        (b'{"a": 1, "a": 1}', "DUPLICATE_KEY"),
        (b"[" * 65 + b"]" * 65, "TOO_DEEP"),
        (b"[" * 50_000, "TOO_DEEP"),
        (b"\xef\xbb\xbf{}", "INVALID_UTF8"),
        (b"\xc3\x28", "INVALID_UTF8"),
        (b"\xed\xa0\x80", "INVALID_UTF8"),  # a surrogate encoded as UTF-8 (CESU-8)
    ],
)
def test_each_refusal_has_its_code(raw: bytes, code: str) -> None:
    with pytest.raises(MalformedRequest) as refused:
        strictjson.loads(raw, max_bytes=LIMIT)
    assert refused.value.code == code
    assert refused.value.message


def test_a_paired_surrogate_escape_and_64_levels_are_fine() -> None:
    assert strictjson.loads(b'{"a": "\\ud83d\\ude00"}', max_bytes=LIMIT) == {"a": "\U0001f600"}
    assert strictjson.loads(b"[" * 64 + b"]" * 64, max_bytes=LIMIT) is not None


def test_the_largest_double_is_accepted_and_one_digit_more_is_not() -> None:
    assert strictjson.loads(b"1.7976931348623157e308", max_bytes=LIMIT) == 1.7976931348623157e308
    with pytest.raises(MalformedRequest):
        strictjson.loads(b"1.7976931348623159e308", max_bytes=LIMIT)


def test_oversized_input_is_413_before_it_is_read() -> None:
    with pytest.raises(PayloadTooLarge):
        strictjson.loads(b"[" + b"1," * 100 + b"1]", max_bytes=64)


@pytest.mark.parametrize("value", [float("nan"), {1: "x"}, {"a": {1, 2}}, b"bytes", [object()]])
def test_values_json_cannot_hold_are_refused(value: Any) -> None:
    with pytest.raises(MalformedRequest):
        strictjson.check_value(value)


@settings(max_examples=600, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=2048))
def test_any_bytes_give_a_value_or_a_400_never_another_exception(raw: bytes) -> None:
    value, error = _read(raw, LIMIT)
    if error is not None:
        assert error.code
        assert error.message
        return
    # what was accepted can be written back as strict JSON and reads the same
    assert strictjson.loads(strictjson.dumps_canonical(value).encode(), max_bytes=4 * LIMIT) == value


def _read(raw: bytes | str, limit: int) -> tuple[Any, MalformedRequest | None]:
    try:
        return strictjson.loads(raw, max_bytes=limit), None
    except MalformedRequest as error:
        return None, error


JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=30,
)


@settings(max_examples=400)
@given(JSONISH)
def test_python_json_output_is_accepted_exactly_when_it_is_strict_json(value: Any) -> None:
    text = json.dumps(value)  # may write NaN / Infinity, which strict JSON refuses
    _, error = _read(text, 1 << 20)
    if error is not None:
        assert error.code in ("NON_FINITE_NUMBER", "LONE_SURROGATE", "TOO_DEEP")
