"""A real worker's /metrics, /healthz and /readyz over HTTP, checked by Prometheus' own tools.

promtool checks the exposition; a real Prometheus server scrapes the worker and
answers PromQL about it, including every expression the alert rules and the ops
dashboard use.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml
from aiokafka import AIOKafkaProducer
from prometheus_client.parser import text_string_to_metric_families

from tests.integration.test_pipeline import produce, stored_rows, survey
from tests.ops_queries import alert_exprs, dashboard_promql
from tests.polling import wait_for
from touchpoint.core.kafka import client_options
from touchpoint.core.settings import Settings
from touchpoint.pipeline.runtime import running_worker

needs_prometheus = pytest.mark.skipif(
    not (shutil.which("promtool") and shutil.which("prometheus")),
    reason="promtool/prometheus binaries missing: run `make system-deps` (Debian package prometheus)",
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def web_settings(settings: Settings) -> Settings:
    return settings.with_overrides(web_enabled=True, web_port=free_port())


async def http_get(url: str) -> tuple[int, str]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
        async with session.get(url) as response:
            return response.status, await response.text()


def samples(exposition: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of an exposition, keyed by (name, sorted labels)."""
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(exposition)
        for s in family.samples
    }


def value(scrape: dict, name: str, **labels: str) -> float:
    return scrape.get((name, tuple(sorted(labels.items()))), 0.0)


async def scrape(port: int) -> str:
    status, body = await http_get(f"http://127.0.0.1:{port}/metrics")
    assert status == 200
    return body


@needs_prometheus
async def test_worker_metrics_count_the_real_flow_and_pass_promtool(live_settings: Settings, enricher) -> None:
    settings = web_settings(live_settings)
    signals = [survey(f"obs-{i}", text, nps) for i, (text, nps) in enumerate(
        [("Checkout was quick and easy", 10), ("The app keeps crashing at login", 2), ("Delivery was fine", 8)]
    )]  # fmt: skip
    async with running_worker(settings, enricher) as app:
        before = samples(await scrape(settings.web_port))
        producer = AIOKafkaProducer(**client_options(settings), acks="all")
        await producer.start()
        try:
            await producer.send_and_wait(settings.topic_raw, b"not avro at all", key=b"k")
        finally:
            await producer.stop()
        await produce(settings, *signals)
        ids = [s.signal_id for s in signals]
        sql = "SELECT count() AS n FROM {db}.signals FINAL WHERE signal_id IN {ids:Array(String)} HAVING n = 3"
        await wait_for(lambda: stored_rows(app, sql, {"ids": ids}))

        async def counted() -> dict | None:
            now = samples(await scrape(settings.web_port))
            dead = value(now, "touchpoint_dead_letters_total", stage="decode", reason_class="undecodable")
            raw_lag = [v for k, v in now.items() if k[0] == "touchpoint_consumer_lag_messages" and ("topic", settings.topic_raw) in k[1]]
            dead_sent = dead - value(before, "touchpoint_dead_letters_total", stage="decode", reason_class="undecodable")
            # lag is published every few seconds; 0 once all four raw messages are committed
            return now if dead_sent >= 1 and raw_lag and sum(raw_lag) == 0 else None

        after = await wait_for(counted, timeout_s=30)
        exposition = await scrape(settings.web_port)

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta("touchpoint_enrich_events_in_total") == 4
    assert delta("touchpoint_enrich_events_out_total") == 3
    assert delta("touchpoint_enrich_failures_total", stage="decode") == 1
    assert delta("touchpoint_enrich_batch_size_events_count") >= 1
    assert delta("touchpoint_enrich_inference_seconds_count") >= 1
    assert delta("touchpoint_sink_rows_inserted_total") == 3
    assert delta("touchpoint_sink_insert_batches_total") >= 1
    assert delta("touchpoint_sink_insert_seconds_count") >= 1
    assert delta("touchpoint_end_to_end_seconds_count") == 3
    assert delta("touchpoint_dead_letters_total", stage="decode", reason_class="undecodable") == 1
    build = [k for k in after if k[0] == "touchpoint_build_info"]
    assert build and dict(build[0][1])["model_version"] == enricher.version
    lag_topics = {dict(k[1])["topic"] for k in after if k[0] == "touchpoint_consumer_lag_messages"}
    assert {settings.topic_raw, settings.topic_enriched} <= lag_topics

    check = subprocess.run(["promtool", "check", "metrics"], input=exposition, capture_output=True, text=True, timeout=30)
    assert check.returncode == 0, check.stdout + check.stderr


async def test_readiness_turns_ready_once_models_and_store_answer(live_settings: Settings, enricher) -> None:
    settings = web_settings(live_settings)
    async with running_worker(settings, enricher):
        base = f"http://127.0.0.1:{settings.web_port}"
        assert (await http_get(f"{base}/healthz"))[0] == 200

        async def ready() -> dict | None:
            status, body = await http_get(f"{base}/readyz")
            return json.loads(body) if status == 200 else None

        body = await wait_for(ready, timeout_s=30)
        assert body["status"] == "ready"
        assert {name for name, check in body["checks"].items() if check["ok"]} == {"broker", "store", "model", "batches", "commits"}


async def test_readiness_is_503_with_the_reason_when_the_store_is_unreachable(live_settings: Settings, enricher) -> None:
    settings = web_settings(live_settings).with_overrides(clickhouse_url=f"http://127.0.0.1:{free_port()}")
    async with running_worker(settings, enricher):
        base = f"http://127.0.0.1:{settings.web_port}"
        status, body = await http_get(f"{base}/readyz")
        assert status == 503
        answer = json.loads(body)
        assert answer["status"] == "not ready" and not answer["checks"]["store"]["ok"]
        assert "store:" in answer["reason"]
        assert answer["checks"]["broker"]["ok"]
        assert (await http_get(f"{base}/healthz"))[0] == 200  # alive: a down store must not cause restarts


class Prometheus:
    """A real Prometheus server on localhost, scraping the worker every second."""

    def __init__(self, tmp: Path, target_port: int) -> None:
        self.port = free_port()
        config = {
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "scrape_configs": [
                {"job_name": "touchpoint-worker", "static_configs": [{"targets": [f"127.0.0.1:{target_port}"]}]}
            ],
        }
        (tmp / "prometheus.yml").write_text(yaml.safe_dump(config))
        self.log = (tmp / "prometheus.log").open("w")
        self.process = subprocess.Popen(
            [
                "prometheus", f"--config.file={tmp / 'prometheus.yml'}", f"--storage.tsdb.path={tmp / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{self.port}", "--log.level=warn",
            ],
            stdout=self.log, stderr=subprocess.STDOUT,
        )  # fmt: skip

    async def query(self, expr: str) -> dict[str, Any]:
        url = f"http://127.0.0.1:{self.port}/api/v1/query"
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
            async with session.get(url, params={"query": expr}) as response:
                return await response.json()

    async def ready(self) -> bool:
        try:
            return (await http_get(f"http://127.0.0.1:{self.port}/-/ready"))[0] == 200
        except aiohttp.ClientError:
            return False

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
        self.log.close()


@needs_prometheus
async def test_prometheus_scrapes_the_worker_and_answers_promql(live_settings: Settings, enricher, tmp_path: Path) -> None:
    settings = web_settings(live_settings)
    async with running_worker(settings, enricher) as app:
        prometheus = Prometheus(tmp_path, settings.web_port)
        try:
            await wait_for(prometheus.ready, timeout_s=30)
            signal = survey("prom-1", "Support fixed my billing problem fast", 9)
            await produce(settings, signal)
            sql = "SELECT 1 FROM {db}.signals FINAL WHERE signal_id = {id:String}"
            await wait_for(lambda: stored_rows(app, sql, {"id": signal.signal_id}))

            async def answered() -> list | None:
                result = (await prometheus.query('touchpoint_enrich_events_in_total{job="touchpoint-worker"} > 0'))["data"]["result"]
                return result or None

            [series] = await wait_for(answered, timeout_s=30)
            assert float(series["value"][1]) >= 1
            up = (await prometheus.query('up{job="touchpoint-worker"}'))["data"]["result"]
            assert up and up[0]["value"][1] == "1"
            for expr in [*alert_exprs(), *dashboard_promql()]:  # every query ops rely on parses and evaluates
                answer = await prometheus.query(expr)
                assert answer["status"] == "success", (expr, answer)
        finally:
            prometheus.stop()
