"""Connector -> real broker -> real Faust worker -> ClickHouse (chdb): each post exactly once in the store.

The worst crash window is "records acknowledged, checkpoint not yet written":
it is forced here by deleting the checkpoint after a crash, so the restart
replays pages the broker already holds. The topic then carries duplicates;
the store must still hold every post once, and none may be missing.
"""

from __future__ import annotations

import asyncio
from contextlib import suppress
from pathlib import Path

from tests.polling import wait_for
from touchpoint.connectors.testing import ConnectorSuite, query_key, read_topic, run_pass
from touchpoint.core.settings import Settings
from touchpoint.pipeline.runtime import running_worker

PAYLOADS = Path(__file__).parent / "payloads"


class XSource(ConnectorSuite):  # reuses the kit's building blocks; not collected (no Test prefix)
    connector_type = "x_recent_search"
    payloads = PAYLOADS / "x_recent_search.json"
    params = {"query": "acme"}
    page_key = query_key("next_token")


async def test_crash_replay_and_restart_store_each_post_once(live_settings: Settings, enricher, monkeypatch) -> None:
    kit = XSource()
    payloads = kit.load()
    expected = sorted(payloads.expect["source_ids"])
    async with kit.source(payloads) as server:
        reached = server.hold(payloads.keys[2])
        crashed = asyncio.create_task(run_pass(kit.connector(live_settings, server, monkeypatch), live_settings))
        await reached.wait()
        crashed.cancel()  # crash while fetching page 3: pages 1-2 acknowledged
        with suppress(asyncio.CancelledError):
            await crashed
        (live_settings.data_dir / "checkpoints" / "under-test.json").unlink()  # ...and their checkpoint lost
        stats = await run_pass(kit.connector(live_settings, server, monkeypatch), live_settings)
        assert stats.produced == len(expected)
    on_topic = [value["source_id"] for _, value in await read_topic(live_settings, live_settings.topic_raw, "raw_signal")]
    assert len(on_topic) > len(expected) and sorted(set(on_topic)) == expected  # replayed: duplicates on the topic

    async with running_worker(live_settings, enricher) as app:
        store = app.touchpoint["reader"]
        distinct = "SELECT uniqExact(signal_id) AS n FROM {db}.signals WHERE source = 'x'"
        await wait_for(lambda: _at_least(store, distinct, len(expected)))
        rows = await store.query("SELECT source_id FROM {db}.signals FINAL WHERE source = 'x' ORDER BY source_id")
    assert sorted(row["source_id"] for row in rows) == expected  # once each, none missing


async def _at_least(store, sql: str, n: int) -> bool:
    [row] = await store.query(sql)
    return row["n"] >= n
