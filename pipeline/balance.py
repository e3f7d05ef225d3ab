"""The balance, per source: produced = stored + dead-lettered, checked from the data itself.

``touchpoint dlq balance`` reads the topics and the store, not counters, so it
also holds after crashes and restarts (counters reset; topics and tables do
not). Per source:

* **produced**: distinct signals in ``signals.raw`` plus the records the
  connectors dead-lettered before producing them (connector stages);
* **stored**: those signals found in ClickHouse;
* **dead-lettered, open**: connector letters, and signals whose worker-stage
  letter was not replayed and that are not stored;
* **replayed**: letters re-driven by ``dlq replay`` (their signal is then
  stored, dead-lettered again, or still on its way);
* **in flight**: produced but neither stored nor dead-lettered yet; 0 when the
  worker has caught up, and then the source balances.

Messages in ``signals.raw`` that are not even Avro count under the source
``(undecodable)`` and balance against their decode-stage letters. The
balance covers what the topics hold now (their retention bounds it).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any, Callable

from touchpoint.core.deadletter import CONNECTOR_STAGES, letter_id
from touchpoint.core.kafka import read_topic_records
from touchpoint.core.settings import Settings
from touchpoint.pipeline.dlq import read_letters
from touchpoint.pipeline.store import Store
from touchpoint.schemas.codec import AvroCodec

UNDECODABLE = "(undecodable)"


@dataclass
class SourceBalance:
    source: str
    produced: int = 0
    stored: int = 0
    dead_lettered_open: int = 0
    replayed: int = 0

    @property
    def in_flight(self) -> int:
        return self.produced - self.stored - self.dead_lettered_open

    @property
    def balanced(self) -> bool:
        return self.in_flight == 0

    def row(self) -> dict[str, Any]:
        return {
            "source": self.source, "produced": self.produced, "stored": self.stored,
            "dead_lettered_open": self.dead_lettered_open, "replayed": self.replayed,
            "in_flight": self.in_flight, "balanced": self.balanced,
        }  # fmt: skip


async def raw_signals(settings: Settings) -> tuple[dict[str, set[str]], set[str]]:
    """(signal ids by source in signals.raw, expected decode-letter ids of the undecodable messages)."""
    codec = AvroCodec.for_subject("raw_signal")
    by_source: dict[str, set[str]] = defaultdict(set)
    undecodable: set[str] = set()
    for message in await read_topic_records(settings, settings.topic_raw):
        try:
            record = codec.decode(message.value or b"")
        except Exception:
            undecodable.add(letter_id("decode", settings.topic_raw, message.value or b""))
            continue
        by_source[record["source"]].add(record["signal_id"])
    return by_source, undecodable


def stored_ids(store: Store, ids: list[str]) -> set[str]:
    if not ids:
        return set()
    rows = store.query("SELECT DISTINCT signal_id FROM {db}.signals WHERE signal_id IN {ids:Array(String)}", {"ids": ids})
    return {row["signal_id"] for row in rows}


async def balance(settings: Settings, stored_of: Callable[[list[str]], set[str]]) -> list[SourceBalance]:
    """Per source, from the topics and from ``stored_of`` (which of these signal ids the store holds)."""
    by_source, undecodable = await raw_signals(settings)
    stored = stored_of(sorted(set().union(*by_source.values()))) if by_source else set()
    rows: dict[str, SourceBalance] = {}

    def row(source: str) -> SourceBalance:
        return rows.setdefault(source, SourceBalance(source))

    for source, ids in by_source.items():
        row(source).produced += len(ids)
        row(source).stored += len(ids & stored)
    open_signals: dict[str, set[str]] = defaultdict(set)
    undecodable_open: set[str] = set()
    for letter in await read_letters(settings):
        record = letter.record
        source = record.get("source") or ("unknown" if letter.stage in CONNECTOR_STAGES else UNDECODABLE)
        if letter.replayed:
            row(source).replayed += 1
        elif letter.stage in CONNECTOR_STAGES:
            row(source).produced += 1  # never reached signals.raw: it counts where it failed
            row(source).dead_lettered_open += 1
        elif record.get("signal_id") and record["signal_id"] in by_source.get(source, set()) - stored:
            open_signals[source].add(record["signal_id"])
        elif letter.letter_id in undecodable:
            undecodable_open.add(letter.letter_id)
    for source, ids in open_signals.items():
        row(source).dead_lettered_open += len(ids)
    if undecodable:
        row(UNDECODABLE).produced += len(undecodable)
        row(UNDECODABLE).dead_lettered_open += len(undecodable_open)
    return sorted(rows.values(), key=lambda r: r.source)
