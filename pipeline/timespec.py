"""Times as people type them: ISO dates/times, or spans back from now such as 24h, 7d, 4w."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

_SPAN = re.compile(r"^(\d+)([hdw])$")
_UNITS = {"h": "hours", "d": "days", "w": "weeks"}


def parse_time(value: str, now: datetime | None = None) -> datetime:
    """A timezone-aware UTC datetime; naive input is read as UTC. Raises ValueError saying what is accepted."""
    text = value.strip()
    match = _SPAN.match(text)
    if match:
        return (now or datetime.now(timezone.utc)) - timedelta(**{_UNITS[match[2]]: int(match[1])})
    try:
        stamp = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"{value!r} is not a date (2026-11-01), a time (2026-11-01T09:30Z), or a span like 24h, 7d, 4w") from None
    return stamp.astimezone(timezone.utc) if stamp.tzinfo else stamp.replace(tzinfo=timezone.utc)
