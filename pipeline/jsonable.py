"""Query results as JSON: one conversion for the API and the HTML report."""

from __future__ import annotations

import math
from datetime import date, datetime, timezone
from typing import Any


def to_json(value: Any) -> Any:
    """JSON-safe values: ISO 8601 times in UTC, NaN as null."""
    if isinstance(value, datetime):
        stamp = value if value.tzinfo else value.replace(tzinfo=timezone.utc)
        return stamp.isoformat().replace("+00:00", "Z")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: to_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_json(v) for v in value]
    return value
