"""`touchpoint dlq list | replay`: inspect and re-drive dead letters.

A dead letter keeps the original bytes, the key, the stage that failed and,
for records the worker could not handle, the topic it came from. Replay rules:

1. Worker stages (decode, validate, enrich, store, deliver) carry ``source_topic``:
   the original bytes go back to that topic with the original key, unchanged
   (a ``deliver`` letter is an action: back on cx.actions, its case is already
   recorded and only the destinations not yet delivered are tried again).
   Fix the cause first (a model, a schema, the store); a record that fails
   again is dead-lettered again, never lost.
2. Connector stages (connector.parse, connector.validate) hold the source's own
   payload, not a signal: re-import or re-poll it from the source instead.
3. Each dead letter is replayed at most once: the next offset per dead-letter
   partition is checkpointed (data_dir/checkpoints/dlq-replay.json) after the
   broker acknowledged every replayed record. ``--again`` ignores it; a replay
   limited with ``--stage`` leaves it where it was.
4. Replays are harmless to repeat downstream: signal_ids are deterministic and
   ClickHouse keeps one row per signal_id.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from aiokafka import AIOKafkaProducer

from touchpoint.core.checkpoints import CheckpointStore
from touchpoint.core.kafka import client_options, read_topic_records
from touchpoint.core.settings import Settings
from touchpoint.core.tally import Tally
from touchpoint.schemas.codec import AvroCodec

REPLAYABLE_STAGES = frozenset({"decode", "validate", "enrich", "store", "deliver"})
CHECKPOINT_NAME = "dlq-replay"


@dataclass(frozen=True)
class Letter:
    """One dead letter as read back from the topic, with where it sits there."""

    partition: int
    offset: int
    record: dict[str, Any]

    @property
    def stage(self) -> str:
        return self.record["stage"]

    @property
    def replayable(self) -> bool:
        return self.stage in REPLAYABLE_STAGES and bool(self.record.get("source_topic"))

    def summary(self) -> dict[str, Any]:
        """A JSON-safe view: no payload bytes, just their size."""
        failed_at: datetime = self.record["failed_at"]
        return {
            "partition": self.partition,
            "offset": self.offset,
            "failed_at": failed_at.isoformat(),
            "stage": self.stage,
            "error_type": self.record["error_type"],
            "reason": self.record["reason"],
            "source": _source(self.record),
            "payload_bytes": len(self.record["payload"]),
            "replayable": self.replayable,
        }


@dataclass
class ReplaySummary(Tally):
    """``produced``: letters replayed (or, in a dry run, to replay); ``by_topic`` splits them by target."""

    skipped_not_replayable: int = 0
    skipped_filtered: int = 0
    skipped_already_replayed: int = 0
    by_topic: Counter[str] = field(default_factory=Counter)  # replayed (or, dry run, to replay) per topic


def _source(record: dict[str, Any]) -> str:
    if record.get("source_topic"):
        return f"{record['source_topic']}[{record['source_partition']}]@{record['source_offset']}"
    return ",".join(f"{k}={v}" for k, v in sorted(record.get("context", {}).items())) or "connector"


async def read_letters(settings: Settings, stage: str | None = None) -> list[Letter]:
    """Every dead letter now in the topic, oldest first per partition; optionally one stage."""
    codec = AvroCodec.for_subject("dead_letter")
    letters = [
        Letter(message.partition, message.offset, codec.decode(message.value))
        for message in await read_topic_records(settings, settings.topic_dead_letter)
    ]
    letters.sort(key=lambda letter: (letter.record["failed_at"], letter.partition, letter.offset))
    return [letter for letter in letters if stage is None or letter.stage == stage]


def stage_counts(letters: list[Letter]) -> dict[str, int]:
    return dict(Counter(letter.stage for letter in letters).most_common())


async def replay(settings: Settings, stage: str | None = None, again: bool = False, dry_run: bool = False) -> ReplaySummary:
    """Re-drive replayable dead letters to their source topics (rules in the module docstring)."""
    checkpoints = CheckpointStore(settings.data_dir / "checkpoints")
    done: dict[str, int] = {} if again else dict((await checkpoints.load(CHECKPOINT_NAME)) or {})
    summary = ReplaySummary()
    letters = sorted(await read_letters(settings), key=lambda letter: (letter.partition, letter.offset))
    chosen: list[Letter] = []
    for letter in letters:
        summary.read += 1
        if letter.offset < done.get(str(letter.partition), 0):
            summary.skipped_already_replayed += 1
        elif stage is not None and letter.stage != stage:
            summary.skipped_filtered += 1
        elif not letter.replayable:
            summary.skipped_not_replayable += 1
        else:
            chosen.append(letter)
    if dry_run:
        summary.by_topic.update(letter.record["source_topic"] for letter in chosen)
        summary.produced = len(chosen)
        return summary
    producer = AIOKafkaProducer(**client_options(settings), acks="all", enable_idempotence=False)
    await producer.start()
    try:
        futures = [
            await producer.send(letter.record["source_topic"], letter.record["payload"], key=letter.record["key"])
            for letter in chosen
        ]
        await asyncio.gather(*futures)  # every replayed record acknowledged before the checkpoint moves
    finally:
        await producer.stop()
    summary.by_topic.update(letter.record["source_topic"] for letter in chosen)  # all acknowledged
    summary.produced = len(chosen)
    if stage is None:  # everything read is now handled: replayed, or not meant to be
        for letter in letters:
            done[str(letter.partition)] = max(done.get(str(letter.partition), 0), letter.offset + 1)
        await checkpoints.save(CHECKPOINT_NAME, done)
    return summary
