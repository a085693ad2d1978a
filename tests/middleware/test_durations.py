"""Go-style duration strings: what ``duration: 3000s`` and ``--older-than 1h30m`` mean."""

from __future__ import annotations

import pytest

from s3regfs.durations import DurationError, format_duration, parse_duration, parse_duration_ns

VALID = [
    ("0", 0),
    ("+0", 0),
    ("-0", 0),
    ("300ms", 300_000_000),
    ("3000s", 3_000_000_000_000),
    ("20m", 1_200_000_000_000),
    ("12h", 43_200_000_000_000),
    ("1h30m", 5_400_000_000_000),
    ("1.5h", 5_400_000_000_000),
    ("2h45m30.5s", 9_930_500_000_000),
    (".5s", 500_000_000),
    ("1.s", 1_000_000_000),
    ("-2m", -120_000_000_000),
    ("+5s", 5_000_000_000),
    ("1ns", 1),
    ("1us", 1_000),
    ("1\u00b5s", 1_000),  # MICRO SIGN
    ("1\u03bcs", 1_000),  # GREEK SMALL LETTER MU
    ("1ms1us1ns", 1_001_001),
    ("0.000000001s", 1),
    ("9223372036854775807ns", 9_223_372_036_854_775_807),
    ("2562047h47m16.854775807s", 9_223_372_036_854_775_807),
]


@pytest.mark.parametrize(("text", "ns"), VALID)
def test_valid_durations(text: str, ns: int) -> None:
    assert parse_duration_ns(text) == ns
    assert parse_duration(text) == pytest.approx(ns / 1e9)


INVALID = [
    ("3000", 'time: missing unit in duration "3000"'),
    ("0.0", 'time: missing unit in duration "0.0"'),
    ("", 'time: invalid duration ""'),
    ("-", 'time: invalid duration "-"'),
    ("abc", 'time: invalid duration "abc"'),
    (".s", 'time: invalid duration ".s"'),
    (" 1h", 'time: invalid duration " 1h"'),
    ("1h ", 'time: unknown unit "h " in duration "1h "'),
    ("1d", 'time: unknown unit "d" in duration "1d"'),
    ("1e3s", 'time: unknown unit "e" in duration "1e3s"'),
    ("1H", 'time: unknown unit "H" in duration "1H"'),
    ("1..5s", 'time: missing unit in duration "1..5s"'),
    ("9223372036854775808ns", 'time: invalid duration "9223372036854775808ns"'),
    ("2562048h", 'time: invalid duration "2562048h"'),
    ("1\u00e9s", 'time: unknown unit "\\xc3\\xa9s" in duration "1\\xc3\\xa9s"'),
]


@pytest.mark.parametrize(("text", "message"), INVALID)
def test_invalid_durations_name_the_string(text: str, message: str) -> None:
    with pytest.raises(DurationError) as info:
        parse_duration(text)
    assert str(info.value) == message


def test_non_string_is_an_error() -> None:
    with pytest.raises(DurationError, match="invalid duration"):
        parse_duration(3000)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0s"),
        (1200, "20m0s"),
        (5400, "1h30m0s"),
        (0.3, "300ms"),
        (1.5, "1.5s"),
        (-120, "-2m0s"),
        (1e-6, "1µs"),
    ],
)
def test_format_round_trips(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text
    assert parse_duration(text) == pytest.approx(seconds)
