"""`touchpoint watch`: the alert detector on a loop (or once), outside the worker.

Each cycle evaluates the windows before now (pipeline/alerts/watch.py) and,
with a routing rules file (TOUCHPOINT_ROUTING_RULES_PATH), sends what opened
or resolved to cx.actions, where the worker's case agent routes and delivers
it like any other action (pipeline/alerts/actions.py). Without rules, alerts
are kept in ClickHouse (report, API, Grafana) and announced once rules exist.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timezone
from typing import Callable, Sequence

from touchpoint.core.kafka import client_options
from touchpoint.core.settings import Settings
from touchpoint.pipeline.alerts.actions import announce
from touchpoint.pipeline.alerts.watch import Cycle, watch_once
from touchpoint.pipeline.rules import RuleSet, load_rules, load_vocabulary
from touchpoint.pipeline.store import AsyncStore


class ActionsProducer:
    """Sends actions to cx.actions and waits for the broker's acknowledgement (started on first use)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._producer = None

    async def send(self, items: Sequence[tuple[bytes, bytes]]) -> None:
        from aiokafka import AIOKafkaProducer

        if self._producer is None:
            producer = AIOKafkaProducer(**client_options(self.settings), acks="all")
            await producer.start()
            self._producer = producer
        futures = [await self._producer.send(self.settings.topic_actions, value, key=key) for key, value in items]
        await asyncio.gather(*futures)

    async def close(self) -> None:
        if self._producer is not None:
            await self._producer.stop()


def rules_for(settings: Settings) -> RuleSet | None:
    """The routing rules, when a file is configured (a mistake raises RulesError naming the line)."""
    if not settings.routing_rules_path:
        return None
    return load_rules(settings.routing_rules_path, load_vocabulary(settings.taxonomy_path))


async def run_watch(settings: Settings, at: datetime | None, once: bool, show: Callable[[Cycle, dict[str, int]], None]) -> None:
    """Cycles every ``alert_interval_s`` until cancelled (``once`` or a fixed ``at``: one cycle)."""
    rules = rules_for(settings)
    store = AsyncStore.from_settings(settings)
    producer = ActionsProducer(settings)
    try:
        await store.migrate()
        while True:
            cycle = await store.call(watch_once, settings, at or datetime.now(timezone.utc))
            sent = await announce(store, settings, rules, producer.send)
            show(cycle, sent)
            if once or at is not None:
                return
            await asyncio.sleep(settings.alert_interval_s)
    finally:
        await producer.close()
        await store.close()
