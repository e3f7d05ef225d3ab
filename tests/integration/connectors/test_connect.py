"""`touchpoint connect CONFIG.yaml`: config file -> connectors -> real broker, secrets from env, a summary."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import aiohttp
import yaml
from rich.console import Console

from touchpoint.cli import main
from touchpoint.connectors.config import parse_config
from touchpoint.connectors.runner import ConnectorRun, build_connectors, run_connectors, serving_ops
from touchpoint.connectors.testing import LocalSource, Payloads, path_key, query_key, read_topic
from touchpoint.core.broker import free_port
from touchpoint.core.settings import Settings

PAYLOADS = Path(__file__).parent / "payloads"
SECRET = "s3cret-bearer-token-value"


async def test_connect_once_runs_every_connector_and_never_prints_the_secret(
    live_settings: Settings, monkeypatch, capsys, tmp_path: Path
) -> None:
    x, apps = Payloads.load(PAYLOADS / "x_recent_search.json"), Payloads.load(PAYLOADS / "app_store_reviews.json")
    async with (
        LocalSource(x.pages, query_key("next_token"), require_headers={"Authorization": f"Bearer {SECRET}"}) as x_server,
        LocalSource(apps.pages, path_key(r"/page=(\d+)/")) as app_server,
    ):
        config = tmp_path / "connectors.yaml"
        config.write_text(yaml.safe_dump({"brand": "acme", "connectors": [
            {"name": "x-acme", "type": "x_recent_search", "base_url": x_server.base_url, "token_env": "TEST_X_TOKEN",
             "params": {"query": "acme"}},
            {"name": "appstore-acme", "type": "app_store_reviews", "base_url": app_server.base_url,
             "params": {"app_id": "1049473288"}},
        ]}))  # fmt: skip
        monkeypatch.setenv("TEST_X_TOKEN", SECRET)
        for field in ("kafka_bootstrap", "topic_raw", "topic_dead_letter", "data_dir", "customer_id_secret"):
            monkeypatch.setenv(f"TOUCHPOINT_{field.upper()}", str(getattr(live_settings, field)))
        monkeypatch.setenv("TOUCHPOINT_METRICS_PORT", "0")  # no fixed port in tests
        code = await asyncio.to_thread(main, ["connect", str(config), "--once"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert SECRET not in out
    assert "x-acme" in out and "appstore-acme" in out and "dead-lettered" in out
    checkpoint = json.loads((live_settings.data_dir / "checkpoints" / "x-acme.json").read_text())
    assert checkpoint["cursor"]["watermark"] == 1859871207543517186 and checkpoint["cursor"]["page"] is None
    got = sorted(v["source_id"] for _, v in await read_topic(live_settings, live_settings.topic_raw, "raw_signal"))
    assert got == sorted(x.expect["source_ids"] + apps.expect["source_ids"])


async def test_polling_loop_stops_gracefully_and_reports_failures(live_settings: Settings) -> None:
    feed = Payloads.load(PAYLOADS / "rss_atom.json")
    stop = asyncio.Event()
    def page_key(request):  # /missing.atom is not a page: the server answers 404
        return "missing" if "missing" in request.path else request.query.get("page")

    async with LocalSource(feed.pages, page_key, content_type=feed.content_type) as server:
        configs = parse_config({"brand": "acme", "connectors": [
            {"name": "feed", "type": "rss", "base_url": server.base_url, "poll_interval_s": 0.2,
             "params": {"url": "/feeds/reviews.atom"}},
            {"name": "broken", "type": "rss", "base_url": server.base_url, "poll_interval_s": 0.2,
             "params": {"url": "/missing.atom"}},
        ]})  # fmt: skip

        def update(run: ConnectorRun) -> None:
            if run.connector.config.name == "feed" and run.stats.passes >= 2:
                stop.set()  # as Ctrl-C / SIGTERM would

        connectors = build_connectors(configs, live_settings)
        runs = await asyncio.wait_for(run_connectors(live_settings, connectors, stop=stop, on_update=update), 30)
    feed_run, broken = runs
    assert feed_run.stats.passes >= 2 and feed_run.stats.produced == 5 and feed_run.stats.errors == 0
    assert broken.stats.errors == 1 and "404" in (broken.stats.last_error or "")
    assert broken.stopped_for and broken.state.startswith("stopped"), "a configuration error stops that connector"


async def test_refused_credentials_stop_the_connector_loudly_in_metrics_and_readiness(
    live_settings: Settings, monkeypatch
) -> None:
    """401 is a configuration error: no retry every 30 s forever; /readyz and the metrics say which and why."""
    x = Payloads.load(PAYLOADS / "x_recent_search.json")
    port = free_port()
    settings = live_settings.with_overrides(metrics_port=port)
    monkeypatch.setenv("TEST_X_WRONG_TOKEN", "not-the-token")
    async with LocalSource(x.pages, query_key("next_token"), require_headers={"Authorization": f"Bearer {SECRET}"}) as server:
        configs = parse_config({"brand": "acme", "connectors": [
            {"name": "x-bad-token", "type": "x_recent_search", "base_url": server.base_url,
             "token_env": "TEST_X_WRONG_TOKEN", "poll_interval_s": 0.2, "params": {"query": "acme"}},
        ]})  # fmt: skip
        runs = [ConnectorRun(c) for c in build_connectors(configs, settings)]
        async with serving_ops(settings, runs, Console(quiet=True)):
            await asyncio.wait_for(run_connectors(settings, [r.connector for r in runs], runs=runs), 30)
            base = f"http://127.0.0.1:{port}"
            async with aiohttp.ClientSession() as http:
                async with http.get(f"{base}/readyz") as answer:
                    ready = (answer.status, await answer.json())
                async with http.get(f"{base}/metrics") as answer:
                    exposition = await answer.text()
                statuses = []
                for method, path in (("GET", "/nope"), ("POST", "/metrics"), ("DELETE", "/readyz")):
                    async with http.request(method, f"{base}{path}") as answer:
                        statuses.append(answer.status)
        [run] = runs
        assert len([hit for hit in server.hits if hit.status == 401]) == 1, "no retrying a refused credential"
    assert ready[0] == 503 and "401" in ready[1]["stopped"]["x-bad-token"]
    assert 'touchpoint_connector_errors_total{connector="x-bad-token",kind="configuration"} 1.0' in exposition
    assert 'touchpoint_component_failing{component="connector:x-bad-token"} 1.0' in exposition
    assert all(status in (404, 405) for status in statuses), statuses
