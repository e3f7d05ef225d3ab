"""The read-only questions a command may ask the store, by name, answered in this process or by a running worker.

A chdb folder is open in one process at a time. While `touchpoint up` or a
worker holds it, `query`, `report`, `journey`, `dlq balance` and `cases
list|show|stats` ask the running worker instead (``POST /api/v1/read``, see
pipeline/api.py), which runs the very same function on its read pool. So the
answer is the same whether the stack runs or not, by construction: one table
of functions, one wire format that brings every value back as it left
(:func:`encode`/:func:`decode`: times stay aware datetimes, filters stay
:class:`~touchpoint.pipeline.queries.Filters`).

Only functions in :data:`READERS` can be called; each takes the Store first
and only reads.
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Callable

from touchpoint.pipeline.balance import stored_ids
from touchpoint.pipeline.cases import case_detail, list_cases
from touchpoint.pipeline.loop_metrics import loop_summary
from touchpoint.pipeline.queries import Filters, journey, metric_rows
from touchpoint.pipeline.report import report_data
from touchpoint.pipeline.store import Store

# Where a worker with its web server says its API listens (DATA_DIR/API_FILE; pipeline/health.py writes it).
API_FILE = "worker-api.json"


def _stored_ids(store: Store, ids: list[str]) -> list[str]:
    return sorted(stored_ids(store, ids))


READERS: dict[str, Callable[..., Any]] = {
    "metric_rows": metric_rows,
    "journey": journey,
    "report_data": report_data,
    "stored_ids": _stored_ids,
    "list_cases": list_cases,
    "case_detail": case_detail,
    "loop_summary": loop_summary,
}


def run_reader(store: Store, name: str, args: list[Any], kwargs: dict[str, Any]) -> Any:
    """``READERS[name](store, *args, **kwargs)``; an unknown name is a KeyError."""
    return READERS[name](store, *args, **kwargs)


def encode(value: Any) -> Any:
    """JSON-ready, tagged so :func:`decode` restores the same Python values."""
    if isinstance(value, datetime):
        return {"$datetime": value.isoformat()}
    if isinstance(value, date):
        return {"$date": value.isoformat()}
    if isinstance(value, Filters):
        return {"$filters": encode(asdict(value))}
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, dict):
        return {str(k): encode(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [encode(v) for v in value]
    return value


def decode(value: Any) -> Any:
    if isinstance(value, dict):
        if set(value) == {"$datetime"}:
            return datetime.fromisoformat(value["$datetime"])
        if set(value) == {"$date"}:
            return date.fromisoformat(value["$date"])
        if set(value) == {"$filters"}:
            return Filters(**decode(value["$filters"]))
        return {k: decode(v) for k, v in value.items()}
    if isinstance(value, list):
        return [decode(v) for v in value]
    return value
