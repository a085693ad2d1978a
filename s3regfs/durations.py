"""Go-style duration strings (port of Go's ``time.ParseDuration`` and ``Duration.String``).

Owns the one duration syntax of s3regfs, the syntax of the registry's
``config.yml`` (``duration: 3000s``, ``updatefrequency: 12h``) and of the CLI
(``--older-than``, ``--duration``):

* a sequence of decimal numbers, each with an optional fraction and a unit
  suffix: ``300ms``, ``3000s``, ``20m``, ``1h30m``, ``1.5h``, ``-2m``;
* units ``ns``, ``us`` (also ``µs`` and ``μs``), ``ms``, ``s``, ``m``, ``h``;
* a unit-less number is an error, except ``0``; so is an empty string;
* the value must fit in a signed 64-bit count of nanoseconds (about 292 years).

Error messages are Go's (``time: invalid duration "abc"``, ``time: missing
unit in duration "3000"``, ``time: unknown unit "d" in duration "1d"``), so a
message names the offending string; callers prefix the option name.
"""

from __future__ import annotations

_NS_PER = {
    "ns": 1,
    "us": 1_000,
    "µs": 1_000,  # U+00B5 MICRO SIGN
    "μs": 1_000,  # U+03BC GREEK SMALL LETTER MU
    "ms": 1_000_000,
    "s": 1_000_000_000,
    "m": 60 * 1_000_000_000,
    "h": 3600 * 1_000_000_000,
}
_MAX = 1 << 63


class DurationError(ValueError):
    """A string that is not a valid Go duration."""


def _quote(s: str) -> str:
    """Go's ``time.quote``: double quotes, non-printable bytes as ``\\xNN``."""
    out = ['"']
    for ch in s:
        if ch in '"\\':
            out.append("\\" + ch)
        elif " " <= ch < "\x7f":
            out.append(ch)
        else:
            out.extend(f"\\x{b:02x}" for b in ch.encode("utf-8"))
    out.append('"')
    return "".join(out)


def _leading_digits(s: str) -> tuple[str, str]:
    """Split ``s`` into its leading ASCII digits and the rest."""
    i = 0
    while i < len(s) and "0" <= s[i] <= "9":
        i += 1
    return s[:i], s[i:]


def _leading_fraction(digits: str) -> tuple[int, float]:
    """Go's ``leadingFraction``: the digits as an integer and 10**n, ignoring digits that would overflow."""
    value, scale = 0, 1.0
    for ch in digits:
        if value > (_MAX - 1) // 10:
            break
        nxt = value * 10 + int(ch)
        if nxt > _MAX - 1:
            break
        value, scale = nxt, scale * 10
    return value, scale


def parse_duration_ns(text: str) -> int:
    """Parse a Go duration string into integer nanoseconds; raise :class:`DurationError`."""
    if not isinstance(text, str):
        raise DurationError(f"time: invalid duration {_quote(str(text))}")
    invalid = DurationError(f"time: invalid duration {_quote(text)}")
    s = text
    neg = False
    if s and s[0] in "+-":
        neg = s[0] == "-"
        s = s[1:]
    if s == "0":
        return 0
    if not s:
        raise invalid
    total = 0
    while s:
        if not (s[0] == "." or "0" <= s[0] <= "9"):
            raise invalid
        whole, s = _leading_digits(s)
        frac = ""
        if s.startswith("."):
            frac, s = _leading_digits(s[1:])
        if not whole and not frac:
            raise invalid
        i = 0
        while i < len(s) and not (s[i] == "." or "0" <= s[i] <= "9"):
            i += 1
        if i == 0:
            raise DurationError(f"time: missing unit in duration {_quote(text)}")
        unit, s = s[:i], s[i:]
        scale = _NS_PER.get(unit)
        if scale is None:
            raise DurationError(f"time: unknown unit {_quote(unit)} in duration {_quote(text)}")
        value = int(whole or "0")
        if value > _MAX // scale:
            raise invalid
        value *= scale
        if frac:
            f, f_scale = _leading_fraction(frac)
            if f:
                value += int(float(f) * (float(scale) / f_scale))
                if value > _MAX:
                    raise invalid
        total += value
        if total > _MAX:
            raise invalid
    if neg:
        return -total
    if total > _MAX - 1:
        raise invalid
    return total


def parse_duration(text: str) -> float:
    """Parse a Go duration string into seconds (float); raise :class:`DurationError`."""
    return parse_duration_ns(text) / 1e9


def format_duration(seconds: float) -> str:
    """Format seconds the way Go's ``Duration.String`` does (``20m0s``, ``1h30m0s``, ``300ms``)."""
    ns = round(seconds * 1e9)
    if ns == 0:
        return "0s"
    sign = "-" if ns < 0 else ""
    ns = abs(ns)
    if ns < 1_000_000_000:
        for unit, scale in (("ms", 1_000_000), ("µs", 1_000), ("ns", 1)):
            if ns >= scale or unit == "ns":
                return sign + _fraction(ns, scale) + unit
    hours, rest = divmod(ns, _NS_PER["h"])
    minutes, rest = divmod(rest, _NS_PER["m"])
    text = _fraction(rest, _NS_PER["s"]) + "s"
    if hours or minutes:
        text = f"{minutes}m" + text
    if hours:
        text = f"{hours}h" + text
    return sign + text


def _fraction(value: int, scale: int) -> str:
    """``value / scale`` in decimal without trailing zeros (exact, no float rounding)."""
    whole, rest = divmod(value, scale)
    if not rest:
        return str(whole)
    width = len(str(scale)) - 1
    return f"{whole}.{str(rest).rjust(width, '0').rstrip('0')}"
