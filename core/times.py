"""Every time Touchpoint reads goes through here: one parser, one rule.

Accepted:

* ISO 8601 / RFC 3339 text: ``2026-11-02``, ``2026-11-02T10:15:00Z``,
  ``2026-11-02 10:15:00+01:00``;
* Unix epoch numbers (int, float, or a string of digits): seconds, or
  milliseconds when the value is above 10^11 (no real time in seconds is);
* a ``datetime``.

**A time without a zone is UTC.** Sources that document their zone send one
(every API connector's RFC 3339 times do); exports that leave it out are
almost always written in UTC, and guessing the machine's local zone would
shift the same file differently on two machines. The result is always an
aware UTC datetime.

People also type spans back from now (``24h``, ``7d``, ``4w``) where a
command or the API asks for a period: :func:`parse_time_expression`.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from typing import Any

from touchpoint.schemas.signal import InvalidSignal, utc_now

_SPAN = re.compile(r"^(\d+)([hdw])$")
_UNITS = {"h": "hours", "d": "days", "w": "weeks"}
_DURATION = re.compile(r"^(\d+(?:\.\d+)?)\s*([smhdw])$")
_DURATION_UNITS = {"s": "seconds", "m": "minutes", **_UNITS}
_EPOCH_DIGITS = re.compile(r"^-?\d{9,}(\.\d+)?$")
_MILLIS_ABOVE = 1e11
# Outside this range a time is a typo or a unit mix-up (ms read as s, or the reverse), not a real event.
EARLIEST = datetime(1970, 1, 1, tzinfo=timezone.utc)
LATEST = datetime(2200, 1, 1, tzinfo=timezone.utc)
ACCEPTED = "ISO 8601 (such as 2026-11-02T10:15:00Z; no zone means UTC) or Unix epoch seconds"


class InvalidTime(InvalidSignal):
    """A value that is not a time this parser accepts; the message names the field and what is accepted."""


class TimeOutOfRange(InvalidTime):
    """A well-formed time too far in the past or future to be a real event (usually a unit mix-up)."""


def parse_timestamp(value: Any, name: str = "occurred_at") -> datetime:
    """An aware UTC datetime from any accepted form (module docstring); raises :class:`InvalidTime`."""
    if value is None or value == "":
        raise InvalidTime(f"{name} is missing; give a time in {ACCEPTED}")
    if isinstance(value, bool):
        raise InvalidTime(f"{name} {value!r} is not a time; give {ACCEPTED}")
    if isinstance(value, datetime):
        stamp = value
    elif isinstance(value, (int, float)) or (isinstance(value, str) and _EPOCH_DIGITS.match(value.strip())):
        stamp = _from_epoch(float(value), name)
    elif isinstance(value, str):
        try:
            stamp = datetime.fromisoformat(value.strip().replace("Z", "+00:00").replace("z", "+00:00"))
        except ValueError:
            raise InvalidTime(f"{name} {value!r} is not {ACCEPTED}") from None
    else:
        raise InvalidTime(f"{name} {value!r} is not {ACCEPTED}")
    stamp = stamp.astimezone(timezone.utc) if stamp.tzinfo else stamp.replace(tzinfo=timezone.utc)
    if not EARLIEST <= stamp < LATEST:
        raise TimeOutOfRange(f"{name} {value!r} is {stamp:%Y-%m-%d}, outside {EARLIEST:%Y}..{LATEST:%Y}; check its unit")
    return stamp


def _from_epoch(number: float, name: str) -> datetime:
    seconds = number / 1000 if abs(number) > _MILLIS_ABOVE else number
    try:
        return datetime.fromtimestamp(seconds, tz=timezone.utc)
    except (OverflowError, OSError, ValueError):
        raise InvalidTime(f"{name} {number!r} is not a Unix time in seconds or milliseconds") from None


def parse_time_expression(value: str, now: datetime | None = None) -> datetime:
    """What a person types for a period's end: a span back from now (24h, 7d, 4w) or any accepted time.

    Raises ValueError (an :class:`InvalidTime`) saying what is accepted.
    """
    text = value.strip()
    match = _SPAN.match(text)
    if match:
        try:
            return (now or utc_now()) - timedelta(**{_UNITS[match[2]]: int(match[1])})
        except OverflowError:
            raise InvalidTime(f"{value!r} reaches back before year 1; use a shorter span") from None
    try:
        return parse_timestamp(text, "time")
    except TimeOutOfRange:
        raise
    except InvalidTime:
        raise InvalidTime(
            f"{value!r} is not a date (2026-11-01), a time (2026-11-01T09:30Z), or a span like 24h, 7d, 4w"
        ) from None


def parse_duration(value: Any, name: str = "duration") -> timedelta:
    """A length of time a person writes in a config file: ``90s``, ``30m``, ``4h``, ``2d``, ``1w``, or seconds.

    Raises ValueError naming ``name`` and the accepted forms; zero and negative lengths are refused.
    """
    if isinstance(value, bool) or value is None:
        raise ValueError(f"{name} {value!r} is not a duration; write 30m, 4h, 2d, 1w or a number of seconds")
    if isinstance(value, (int, float)):
        seconds = float(value)
    else:
        match = _DURATION.match(str(value).strip().lower())
        if not match:
            raise ValueError(f"{name} {value!r} is not a duration; write 30m, 4h, 2d, 1w or a number of seconds")
        seconds = timedelta(**{_DURATION_UNITS[match[2]]: float(match[1])}).total_seconds()
    if seconds <= 0:
        raise ValueError(f"{name} {value!r} must be longer than zero")
    return timedelta(seconds=seconds)
