"""`touchpoint dlq list | replay | balance`: inspect, re-drive and account for dead letters.

A dead letter keeps the original bytes (sealed), the key, the stage that
failed and, for records the worker could not handle, the topic it came from.

1. Each letter is shown once: letters carry a deterministic ``letter_id``
   (touchpoint.core.deadletter), so a re-import or a redelivered batch that
   failed again adds no second line.
2. Worker stages (decode, validate, enrich, store, deliver) carry ``source_topic``:
   ``replay`` opens the original bytes and sends them back to that topic with
   the original key. Fix the cause first (a model, a schema, the store, a
   destination); a record that fails again is dead-lettered again, never lost.
   A ``deliver`` letter is an action: back on cx.actions its case is already
   recorded, and only the destinations not yet delivered are tried again.
3. Connector stages (connector.parse, connector.validate) hold the source's own
   payload, not a signal: re-import or re-poll it from the source instead.
   A letter whose original was cut (oversize) is not replayable either.
4. Each letter is replayed at most once: after the broker acknowledged the
   re-driven record, a marker keyed by the letter id goes to
   ``topic_dead_letter_replays``; ``list`` marks those letters, ``replay``
   skips them (``--again`` does not). Markers live in Kafka, not on one
   machine, so any process sees them.
5. Replays are harmless to repeat downstream: signal_ids are deterministic and
   ClickHouse keeps one row per signal_id.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from aiokafka import AIOKafkaProducer

from touchpoint.core.deadletter import CONNECTOR_STAGES, DeadLetterCodec
from touchpoint.core.kafka import client_options, read_topic_records, track_topics
from touchpoint.core.settings import Settings
from touchpoint.core.tally import Tally


@dataclass(frozen=True)
class Letter:
    """One dead letter as read back from the topic (the first copy of its id), and whether it was replayed."""

    partition: int
    offset: int
    record: dict[str, Any]
    replayed: bool = False

    @property
    def stage(self) -> str:
        return self.record["stage"]

    @property
    def letter_id(self) -> str:
        return self.record["letter_id"]

    @property
    def replayable(self) -> bool:
        return (
            self.stage not in CONNECTOR_STAGES
            and bool(self.record.get("source_topic"))
            and not self.record.get("payload_truncated")
        )

    def summary(self) -> dict[str, Any]:
        """A JSON-safe view: no payload bytes, just their size."""
        failed_at: datetime = self.record["failed_at"]
        return {
            "letter_id": self.letter_id,
            "failed_at": failed_at.isoformat(),
            "stage": self.stage,
            "error_type": self.record["error_type"],
            "reason": self.record["reason"],
            "source": self.record.get("source") or "-",
            "origin": _origin(self.record),
            "payload_bytes": self.record.get("payload_size") or len(self.record["payload"]),
            "truncated": bool(self.record.get("payload_truncated")),
            "replayable": self.replayable,
            "replayed": self.replayed,
        }


@dataclass
class ReplaySummary(Tally):
    """``produced``: letters replayed (or, in a dry run, to replay); ``by_topic`` splits them by target."""

    skipped_not_replayable: int = 0
    skipped_filtered: int = 0
    skipped_already_replayed: int = 0
    by_topic: Counter[str] = field(default_factory=Counter)


def _origin(record: dict[str, Any]) -> str:
    if record.get("source_topic"):
        return f"{record['source_topic']}[{record['source_partition']}]@{record['source_offset']}"
    return record.get("origin") or "connector"


async def replayed_ids(settings: Settings) -> set[str]:
    """Letter ids that `dlq replay` already re-drove (markers on the replays topic)."""
    return {m.key.decode() for m in await read_topic_records(settings, settings.topic_dead_letter_replays) if m.key}


async def read_letters(settings: Settings, stage: str | None = None) -> list[Letter]:
    """Every distinct dead letter now in the topic, oldest first; optionally one stage."""
    codec = DeadLetterCodec.from_settings(settings)
    done = await replayed_ids(settings)
    seen: set[str] = set()
    letters: list[Letter] = []
    for message in sorted(await read_topic_records(settings, settings.topic_dead_letter), key=lambda m: (m.partition, m.offset)):
        record = codec.decode(message.value)
        if record["letter_id"] in seen:
            continue  # the same failure again (a re-import, a redelivered batch)
        seen.add(record["letter_id"])
        letters.append(Letter(message.partition, message.offset, record, record["letter_id"] in done))
    letters.sort(key=lambda letter: (letter.record["failed_at"], letter.partition, letter.offset))
    return [letter for letter in letters if stage is None or letter.stage == stage]


def stage_counts(letters: list[Letter]) -> dict[str, int]:
    return dict(Counter(letter.stage for letter in letters).most_common())


async def replay(settings: Settings, stage: str | None = None, again: bool = False, dry_run: bool = False) -> ReplaySummary:
    """Re-drive replayable dead letters to their source topics (rules in the module docstring)."""
    codec = DeadLetterCodec.from_settings(settings)
    summary = ReplaySummary()
    chosen: list[Letter] = []
    for letter in await read_letters(settings):
        summary.read += 1
        if letter.replayed and not again:
            summary.skipped_already_replayed += 1
        elif stage is not None and letter.stage != stage:
            summary.skipped_filtered += 1
        elif not letter.replayable:
            summary.skipped_not_replayable += 1
        else:
            chosen.append(letter)
    originals = [codec.original(letter.record) for letter in chosen]  # a wrong key fails here, before any send
    if not dry_run and chosen:
        producer = AIOKafkaProducer(**client_options(settings), acks="all", enable_idempotence=False)
        await producer.start()
        try:
            sources = {letter.record["source_topic"] for letter in chosen}
            await track_topics(producer, sources | {settings.topic_dead_letter_replays})
            sends = [
                await producer.send(letter.record["source_topic"], payload, key=letter.record["key"])
                for letter, payload in zip(chosen, originals)
            ]
            await asyncio.gather(*sends)  # every re-driven record acknowledged before any marker
            marker = json.dumps({"replayed_at": datetime.now(timezone.utc).isoformat()}).encode()
            await asyncio.gather(*[
                await producer.send(settings.topic_dead_letter_replays, marker, key=letter.letter_id.encode())
                for letter in chosen
            ])  # fmt: skip
        finally:
            await producer.stop()
    summary.by_topic.update(letter.record["source_topic"] for letter in chosen)
    summary.produced = len(chosen)
    return summary
