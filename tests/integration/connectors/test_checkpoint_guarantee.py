"""The framework's rule, watched from the broker: at every checkpoint save, every record before it is in Kafka."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer
from prometheus_client import REGISTRY

from touchpoint.connectors.producer import SignalProducer
from touchpoint.connectors.testing import ConnectorSuite, query_key
from touchpoint.core.checkpoints import CheckpointStore, Cursor
from touchpoint.core.kafka import client_options, topic_message_count
from touchpoint.core.settings import Settings

PAYLOADS = Path(__file__).parent / "payloads"


class XSource(ConnectorSuite):  # the kit's building blocks; not collected (no Test prefix)
    connector_type = "x_recent_search"
    payloads = PAYLOADS / "x_recent_search.json"
    params = {"query": "acme"}
    page_key = query_key("next_token")


class LingeringProducer(SignalProducer):
    """The real producer, holding each batch 500 ms before sending: a checkpoint that did not wait
    for acknowledgements would be saved while its records still sit in the client."""

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self._producer = AIOKafkaProducer(**client_options(settings), acks="all", enable_idempotence=False, linger_ms=500)


class WitnessStore(CheckpointStore):
    """A real checkpoint store that first counts what the broker holds (raw + dead letters)."""

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings.data_dir / "checkpoints")
        self.settings = settings
        self.in_kafka_at_save: list[int] = []

    async def save(self, connector: str, cursor: Cursor) -> None:
        raw = await topic_message_count(self.settings, self.settings.topic_raw)
        dead = await topic_message_count(self.settings, self.settings.topic_dead_letter)
        self.in_kafka_at_save.append(raw + dead)
        await super().save(connector, cursor)


async def test_checkpoint_is_saved_only_after_the_broker_holds_every_record_before_it(
    live_settings: Settings, monkeypatch
) -> None:
    kit = XSource()
    payloads = kit.load()
    page_sizes = [len(body["data"]) for body in payloads.pages.values()]  # 3 (one malformed), 2, 2
    witness = WitnessStore(live_settings)
    before = {name: _sample(name) for name in COUNTERS}
    async with kit.source(payloads) as server:
        connector = kit.connector(live_settings, server, monkeypatch)
        async with LingeringProducer(live_settings) as producer, connector.http:
            stats = await connector.run_once(producer, witness)
    assert witness.in_kafka_at_save == [sum(page_sizes[: i + 1]) for i in range(len(page_sizes))]
    assert stats.checkpoints == len(page_sizes) and stats.read == sum(page_sizes)
    moved = {name: _sample(name) - before[name] for name in COUNTERS}  # the connector metrics moved with it
    assert moved == {"records_read": 7, "records_produced": 6, "records_dead_lettered": 1, "http_2xx": 3}
    assert REGISTRY.get_sample_value(
        "touchpoint_connector_last_checkpoint_timestamp_seconds", {"connector": "under-test"}
    ) == pytest.approx(time.time(), abs=60)


COUNTERS = ("records_read", "records_produced", "records_dead_lettered", "http_2xx")


def _sample(name: str) -> float:
    if name == "http_2xx":
        labels = {"connector": "under-test", "status_class": "2xx"}
        return REGISTRY.get_sample_value("touchpoint_connector_http_requests_total", labels) or 0.0
    return REGISTRY.get_sample_value(f"touchpoint_connector_{name}_total", {"connector": "under-test"}) or 0.0
