"""`touchpoint dlq`: dead letters read back, replayed to their source topic once, on the real broker."""

from __future__ import annotations

import asyncio
from datetime import datetime, timezone

from aiokafka import AIOKafkaProducer

from touchpoint.cli import main
from touchpoint.connectors.producer import SignalProducer
from touchpoint.core.deadletter import dead_letter, encode_dead_letter
from touchpoint.core.kafka import client_options, read_topic_records
from touchpoint.core.settings import Settings
from touchpoint.pipeline import dlq
from touchpoint.schemas.signal import RawSignal

WHEN = datetime(2026, 11, 2, 9, 30, tzinfo=timezone.utc)


def raw_bytes(settings: Settings, source_id: str) -> bytes:
    signal = RawSignal(source="typeform", source_id=source_id, channel="survey", brand="acme", occurred_at=WHEN, text="late")
    return SignalProducer(settings).encode(signal)


async def put_letters(settings: Settings) -> list[bytes]:
    """Two worker-stage letters (replayable) and one connector letter (not)."""
    payloads = [raw_bytes(settings, "r-1"), raw_bytes(settings, "r-2")]
    letters = [
        dead_letter("enrich", "model failed: out of memory", payloads[0], key=b"cust-1", topic=settings.topic_raw, partition=0, offset=7),
        dead_letter("store", "rejected", payloads[1], key=b"cust-2", topic=settings.topic_raw, partition=1, offset=3),
        dead_letter("connector.parse", "body is not JSON", b"{nope", context={"tool": "typeform"}),
    ]  # fmt: skip
    producer = AIOKafkaProducer(**client_options(settings), acks="all")
    await producer.start()
    try:
        await asyncio.gather(*[await producer.send(settings.topic_dead_letter, encode_dead_letter(x)) for x in letters])
    finally:
        await producer.stop()
    return payloads


async def test_replay_sends_worker_letters_back_once_and_leaves_connector_letters(live_settings: Settings) -> None:
    payloads = await put_letters(live_settings)

    letters = await dlq.read_letters(live_settings)
    assert dlq.stage_counts(letters) == {"enrich": 1, "store": 1, "connector.parse": 1}
    assert [x.summary()["replayable"] for x in letters].count(True) == 2

    preview = await dlq.replay(live_settings, dry_run=True)
    assert sum(preview.by_topic.values()) == 2 and await read_topic_records(live_settings, live_settings.topic_raw) == []

    first = await dlq.replay(live_settings)
    assert (first.produced, first.skipped_not_replayable) == (2, 1)
    replayed = await read_topic_records(live_settings, live_settings.topic_raw)
    assert sorted((m.key, m.value) for m in replayed) == sorted([(b"cust-1", payloads[0]), (b"cust-2", payloads[1])])

    second = await dlq.replay(live_settings)
    assert (second.produced, second.skipped_already_replayed) == (0, 3)
    again = await dlq.replay(live_settings, stage="store", again=True)
    assert (again.produced, again.skipped_filtered) == (1, 2)
    assert len(await read_topic_records(live_settings, live_settings.topic_raw)) == 3


def test_dlq_list_cli_shows_each_letter_and_the_stage_counts(live_settings: Settings, capsys, monkeypatch) -> None:
    asyncio.run(put_letters(live_settings))
    for name, value in {
        "TOUCHPOINT_KAFKA_BOOTSTRAP": live_settings.kafka_bootstrap,
        "TOUCHPOINT_TOPIC_DEAD_LETTER": live_settings.topic_dead_letter,
    }.items():
        monkeypatch.setenv(name, value)
    assert main(["dlq", "list", "--format", "json"]) == 0
    out = capsys.readouterr()
    assert out.out.count('"stage"') == 3 and "body is not JSON" in out.out
    assert "3 dead letters" in out.err and "connector.parse 1" in out.err
