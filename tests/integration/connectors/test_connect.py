"""`touchpoint connect CONFIG.yaml`: config file -> connectors -> real broker, secrets from env, a summary."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import yaml

from touchpoint.cli import main
from touchpoint.connectors.config import parse_config
from touchpoint.connectors.runner import ConnectorRun, build_connectors, run_connectors
from touchpoint.connectors.testing import LocalSource, Payloads, path_key, query_key, read_topic
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
    assert broken.stats.errors >= 1 and "404" in (broken.stats.last_error or "")
