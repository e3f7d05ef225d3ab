"""Every HTTP server answers unknown paths and methods with 404/405, never a 500."""

from __future__ import annotations

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from touchpoint.connectors.producer import SignalProducer
from touchpoint.connectors.webhooks import create_webhook_app
from touchpoint.core.broker import free_port
from touchpoint.core.settings import Settings
from touchpoint.pipeline.api import build_web_app
from touchpoint.pipeline.app import create_app
from touchpoint.pipeline.store import AsyncStore

PROBES = [("GET", "/nope"), ("POST", "/nope"), ("PUT", "/metrics"), ("DELETE", "/metrics"), ("PATCH", "/healthz"),
          ("GET", "/webhooks/typeform"), ("PUT", "/webhooks/typeform"), ("DELETE", "/api/v1/metrics/nps"),
          ("GET", "/api/v1/nope"), ("POST", "/api/v1/openapi.json")]  # fmt: skip


async def statuses(base: str) -> dict[tuple[str, str], int]:
    found = {}
    async with aiohttp.ClientSession() as http:
        for method, path in PROBES:
            async with http.request(method, f"{base}{path}") as answer:
                found[(method, path)] = answer.status
    return found


def assert_never_500(found: dict[tuple[str, str], int], where: str) -> None:
    bad = {probe: status for probe, status in found.items() if status >= 500}
    assert not bad, f"{where} answered 5xx: {bad}"


async def test_webhook_receiver(live_settings: Settings) -> None:
    settings = live_settings.with_overrides(webhook_allow_unsigned=True)
    async with SignalProducer(settings) as producer:
        async with TestServer(create_webhook_app(settings, producer), host="127.0.0.1") as server:
            found = await statuses(str(server.make_url("")).rstrip("/"))
    assert_never_500(found, "webhook receiver")
    assert found[("GET", "/nope")] == 404 and found[("PUT", "/metrics")] == 405


async def test_worker_web_server(settings: Settings, store) -> None:
    port = free_port()
    app = create_app(settings.with_overrides(web_enabled=True, web_port=port))
    app.conf.web_bind = "127.0.0.1"
    await app.web.start()
    try:
        found = await statuses(f"http://127.0.0.1:{port}")
    finally:
        await app.web.stop()
        await app.touchpoint["store"].close()
        await app.touchpoint["reader"].close()
    assert_never_500(found, "worker web server")
    assert found[("GET", "/nope")] == 404


@pytest.mark.parametrize("method", ["DELETE", "PUT"])
async def test_standalone_api(settings: Settings, store, method: str) -> None:
    reader = AsyncStore.from_settings(settings)
    async with TestServer(build_web_app(reader, settings), host="127.0.0.1") as server:
        async with aiohttp.ClientSession() as http:
            async with http.request(method, server.make_url("/api/v1/metrics/nps")) as answer:
                assert answer.status == 405
            async with http.get(server.make_url("/api/v1/nope")) as answer:
                assert answer.status == 404
    await reader.close()

