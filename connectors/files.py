"""Backfill from a file: CSV or JSONL exports in Touchpoint's generic signal shape.

Generic shape (one JSON object per line, or one CSV row with these columns):
``id`` (required, the source's own id), ``text``, ``occurred_at`` (ISO 8601
or Unix seconds; touchpoint.core.times),
``customer_id``, ``author``, ``url``, ``touchpoint``, ``brand``, ``channel``,
``source``, a score as ``nps`` (0-10), ``csat`` (1-5), ``ces`` (1-7) or
``rating`` with ``rating_max``, and any other field, kept as a string
attribute. A line that cannot be parsed or validated is dead-lettered with its
bytes and the reason; the import goes on.

Customer identifiers in a row (any key of
touchpoint.core.identity.IDENTIFIER_KEYS: ``email``, ``user_email``,
``phone``, ``account_id``, a ``customer_id``...) become a pseudonymous
``customer_id`` and are never kept as attributes. ``--format zendesk`` reads
a Zendesk conversation export instead (connectors/conversations.py).

Duplicates: a record whose signal_id was already produced earlier in the same
run is counted as ``skipped_duplicates`` and not produced again. Re-importing
a file in a later run produces the records again; that is harmless because the
signal_id is deterministic and the store keeps one row per signal_id.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

from touchpoint.connectors import conversations
from touchpoint.connectors.producer import SignalProducer
from touchpoint.core.identity import Identity, split_identifiers
from touchpoint.core.tally import Tally
from touchpoint.core.times import parse_timestamp
from touchpoint.schemas.signal import SCORE_SCALES, InvalidSignal, RawSignal, Score

KNOWN_FIELDS = {
    "id", "text", "occurred_at", "author", "url", "touchpoint", "brand",
    "channel", "source", "nps", "csat", "ces", "rating", "rating_max",
}  # fmt: skip
FORMATS = ("csv", "jsonl", *conversations.FORMATS)


@dataclass
class ImportSummary(Tally):
    skipped_duplicates: int = 0
    failed: int = 0  # sends the broker did not acknowledge
    error: str | None = None  # the first of those failures
    signal_ids: list[str] = field(default_factory=list, repr=False)  # produced (acknowledged), in order



def parse_score(obj: dict[str, Any]) -> Score | None:
    for metric in ("nps", "csat", "ces"):
        if obj.get(metric) not in (None, ""):
            low, high = SCORE_SCALES[metric]  # type: ignore[misc]
            return Score(metric, _number(obj[metric], metric), low, high)
    if obj.get("rating") not in (None, ""):
        return Score("rating", _number(obj["rating"], "rating"), 1, int(_number(obj.get("rating_max") or 5, "rating_max")))
    return None


def _number(value: Any, name: str) -> float:
    try:
        return float(value)
    except (TypeError, ValueError) as exc:
        raise InvalidSignal(f"{name} {value!r} is not a number") from exc


def to_signal(obj: dict[str, Any], *, channel: str, source: str, brand: str, identity: Identity) -> RawSignal:
    """A generic-shape object as a RawSignal; the file's own fields win over defaults.

    Identifier columns (touchpoint.core.identity) become ``customer_id``; every
    other unknown column is kept as a string attribute.
    """
    if not obj.get("id"):
        raise InvalidSignal("id is missing: each record needs the source's own id (for deduplication)")
    identifiers, extra = split_identifiers({k: v for k, v in obj.items() if k not in KNOWN_FIELDS})
    return RawSignal(
        source=str(obj.get("source") or source),
        source_id=str(obj["id"]),
        channel=str(obj.get("channel") or channel),
        brand=str(obj.get("brand") or brand),
        occurred_at=parse_timestamp(obj.get("occurred_at")),
        text=(str(obj["text"]) if obj.get("text") not in (None, "") else None),
        score=parse_score(obj),
        customer_id=identity.resolve(identifiers),
        author=obj.get("author") or None,
        touchpoint_hint=obj.get("touchpoint") or None,
        url=obj.get("url") or None,
        attributes=extra,
    )


def read_lines(path: Path, fmt: str) -> Iterator[tuple[bytes, dict[str, Any] | InvalidSignal]]:
    """(original bytes, parsed object or the parse error) per record."""
    if fmt == "jsonl":
        with path.open("rb") as handle:
            for line in handle:
                if not line.strip():
                    continue
                try:
                    obj = json.loads(line)
                    if not isinstance(obj, dict):
                        raise ValueError("a line must hold one JSON object")
                    yield line.rstrip(b"\n"), obj
                except ValueError as exc:
                    yield line.rstrip(b"\n"), InvalidSignal(f"not valid JSON: {exc}")
    elif fmt == "csv":
        with path.open(newline="", encoding="utf-8") as handle:
            for row in csv.DictReader(handle):
                buffer = io.StringIO()
                csv.writer(buffer).writerow(row.values())
                yield buffer.getvalue().encode(), dict(row)
    elif fmt in conversations.READERS:
        yield from conversations.READERS[fmt](path)
    else:
        raise ValueError(f"format {fmt!r} is not one of {', '.join(FORMATS)}")


def count_records(path: Path, fmt: str) -> int:
    if fmt in conversations.READERS:
        return conversations.count_conversations(path, fmt)
    with path.open("rb") as handle:
        lines = sum(1 for line in handle if line.strip())
    return lines - 1 if fmt == "csv" else lines


async def import_file(
    producer: SignalProducer,
    path: Path,
    *,
    channel: str,
    source: str,
    brand: str,
    fmt: str | None = None,
    on_record: Callable[[], None] | None = None,
) -> ImportSummary:
    """Produce every record of ``path``; returns once the broker answered for all of them.

    Never stops at one record: a line that cannot be parsed, validated or sent
    (too large for the broker included) is dead-lettered with its reason. The
    summary counts what the broker acknowledged; a send it did not
    acknowledge (the broker went away) is counted in ``failed`` with the
    error, so the caller can say so and the user can run the import again
    (harmless: signal and letter ids are deterministic).
    """
    fmt = fmt or ("csv" if path.suffix.lower() == ".csv" else "jsonl")
    build = conversations.BUILDERS.get(fmt, to_signal)
    identity = Identity.from_settings(producer.settings)
    origin = f"file:{path.name}"
    summary = ImportSummary()
    seen: set[str] = set()
    sends: list[tuple[str | None, asyncio.Future[Any]]] = []  # (signal_id, or None for a letter; ack future)

    async def dead(stage: str, error: InvalidSignal, payload: bytes) -> None:
        sends.append((None, await producer.send_dead_letter(stage, str(error), payload, error, origin=origin, source=source)))

    for payload, parsed in read_lines(path, fmt):
        summary.read += 1
        if isinstance(parsed, InvalidSignal):
            await dead("connector.parse", parsed, payload)
        else:
            try:
                signal = build(parsed, channel=channel, source=source, brand=brand, identity=identity)
                if signal.signal_id in seen:
                    summary.skipped_duplicates += 1
                else:
                    sends.append((signal.signal_id, await producer.send(signal)))
                    seen.add(signal.signal_id)
            except InvalidSignal as exc:
                await dead("connector.validate", exc, payload)
        if on_record:
            on_record()
    for (signal_id, _), outcome in zip(sends, await asyncio.gather(*(f for _, f in sends), return_exceptions=True)):
        if isinstance(outcome, BaseException):
            summary.failed += 1
            summary.error = summary.error or f"{type(outcome).__name__}: {outcome}"
        elif signal_id is None:
            summary.dead_lettered += 1
        else:
            summary.produced += 1
            summary.signal_ids.append(signal_id)
    return summary
