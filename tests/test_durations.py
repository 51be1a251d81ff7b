from __future__ import annotations

import pytest

from replicator.durations import DurationError, format_duration, parse_duration


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("300ms", 0.3),
        ("1.5h", 5400.0),
        ("1h30m", 5400.0),
        ("45s", 45.0),
        ("0s", 0.0),
        ("0", 0.0),
        ("2h45m30.5s", 9930.5),
        ("10ms", 0.01),
        ("250us", 0.00025),
        ("250\u00b5s", 0.00025),
        ("250\u03bcs", 0.00025),
        ("1500ns", 0.0000015),
        (".5s", 0.5),
        ("1.s", 1.0),
        ("+2m", 120.0),
        (" 30s ", 30.0),
    ],
)
def test_parse_duration_valid(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


def test_parse_duration_negative() -> None:
    assert parse_duration("-5s") == -5.0
    assert parse_duration("-1h30m") == -5400.0
    assert parse_duration("-0") == 0.0


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "empty"),
        ("abc", "expected a number"),
        ("5x", "unknown unit 'x'"),
        ("1h30", "without a unit"),
        ("1h 30m", "unknown unit 'h '"),
        ("-", "no number"),
        (".s", "expected a number"),
        ("5d", "unknown unit 'd'"),
        ("3000000h", "maximum"),
    ],
)
def test_parse_duration_invalid(text: str, reason: str) -> None:
    with pytest.raises(DurationError) as caught:
        parse_duration(text)
    assert reason in str(caught.value)


@pytest.mark.parametrize("text", ["30", "1.5", "-5", "00"])
def test_parse_duration_bare_number(text: str) -> None:
    with pytest.raises(DurationError) as caught:
        parse_duration(text)
    message = str(caught.value)
    assert "no unit" in message
    assert f'"{text}s"' in message


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("\u0661s", "expected a number"),
        ("\u0663m", "expected a number"),
        ("1\u0660s", "unknown unit '\u0660s'"),
        ("1.\u0665s", "unknown unit '\u0665s'"),
        ("\uff15ms", "expected a number"),
        ("1_0s", "unknown unit '_'"),
    ],
)
def test_parse_duration_ascii_digits_only(text: str, reason: str) -> None:
    with pytest.raises(DurationError) as caught:
        parse_duration(text)
    assert reason in str(caught.value)


def test_parse_duration_non_ascii_bare_number() -> None:
    with pytest.raises(DurationError) as caught:
        parse_duration("\u0663\u0660")
    assert "no unit" not in str(caught.value)
    assert "expected a number" in str(caught.value)


def test_duration_error_is_value_error() -> None:
    with pytest.raises(ValueError):
        parse_duration("soon")


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0s"),
        (5400, "1h30m"),
        (3600, "1h"),
        (45, "45s"),
        (0.01, "10ms"),
        (0.0015, "1.5ms"),
        (0.00025, "250us"),
        (0.000000002, "2ns"),
        (9930.5, "2h45m30.5s"),
        (61.25, "1m1.25s"),
        (90000, "25h"),
        (-30, "-30s"),
    ],
)
def test_format_duration_short_form(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


@pytest.mark.parametrize("seconds", [0.3, 1.5, 59.999, 5400.0, 86399.5, 0.000001])
def test_format_duration_round_trip(seconds: float) -> None:
    assert parse_duration(format_duration(seconds)) == pytest.approx(seconds)
