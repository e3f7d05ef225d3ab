"""`touchpoint up` in-process: worker with its web server + webhook receiver; a webhook ends up in ClickHouse."""

from __future__ import annotations

import asyncio
import io
import json
import time

import aiohttp
from rich.console import Console

from touchpoint.connectors.surveys import sign_generic
from touchpoint.core.broker import EmbeddedBroker, free_port
from touchpoint.core.settings import Settings
from touchpoint.demo import embedded_settings
from touchpoint.pipeline.store import Store
from touchpoint.up import running_services, serve


async def test_webhook_to_store_through_the_running_stack(live_settings: Settings, enricher) -> None:
    settings = live_settings.with_overrides(
        generic_webhook_secret="up-secret", webhook_port=free_port(), web_port=free_port(), webhook_brand="acme"
    )
    body = json.dumps({
        "id": "up-1", "occurred_at": "2026-11-02T10:00:00Z", "nps": 2,
        "comment": "The courier left my parcel in the rain.", "customer": {"email": "ann@example.com"},
    }).encode()  # fmt: skip
    stamp = str(int(time.time()))
    headers = {"X-Touchpoint-Timestamp": stamp, "X-Touchpoint-Signature": sign_generic(stamp, body, "up-secret")}
    async with running_services(settings, enricher) as services, aiohttp.ClientSession() as http:
        async with http.post(f"{services.webhook_url}/generic", data=body, headers=headers) as resp:
            assert resp.status == 200
            signal_id = (await resp.json())["signal_id"]
        async with http.get(f"{services.web_url}/healthz") as resp:
            assert resp.status == 200
        store = services.app.touchpoint["reader"]
        deadline = time.monotonic() + 60
        while await store.call(Store.count_stored, [signal_id]) < 1:
            assert time.monotonic() < deadline, "the webhook's signal never reached the store"
            await asyncio.sleep(0.3)
        [row] = await store.query("SELECT customer_id, score_value FROM {db}.signals FINAL WHERE signal_id = {id:String}", {"id": signal_id})
    assert row["customer_id"].startswith("cust_") and "@" not in row["customer_id"]
    assert row["score_value"] == 2


async def test_up_stops_loudly_when_its_broker_dies(settings: Settings, enricher, tmp_path) -> None:
    broker = EmbeddedBroker(log_file=tmp_path / "broker.log")
    broker.start()
    live = embedded_settings(settings, broker.bootstrap).with_overrides(webhook_port=free_port(), web_port=free_port())
    console = Console(file=io.StringIO(), width=200)
    serving = asyncio.create_task(serve(live, broker, console, stop=asyncio.Event(), enricher=enricher))
    try:
        while "embedded stack ready" not in console.file.getvalue():  # the stack runs
            assert not serving.done(), console.file.getvalue()
            await asyncio.sleep(0.2)
        broker.process.kill()
        died = await asyncio.wait_for(serving, 60)
    finally:
        broker.stop()
    assert died and "exited with code" in died
    assert "error:" in console.file.getvalue()
