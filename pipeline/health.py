"""Operations endpoints on the worker's web server: /metrics, /healthz, /readyz.

- ``/healthz`` (liveness): answers 200 while the event loop runs handlers. A loop
  blocked by a model call cannot answer, so the probe times out and the
  orchestrator restarts the process; nothing else is checked, so a down broker
  or store never causes a restart loop.
- ``/readyz`` (readiness): 200 only when the broker answers a metadata request,
  the store is writable (the sink is not retrying a failed call) and answers
  ``SELECT 1``, the models are loaded, no agent is retrying a failed batch,
  and committed offsets are moving whenever there is lag; otherwise 503 with
  a JSON body naming each failing check and why, so ``kubectl describe`` says
  where to look.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from dataclasses import dataclass
from typing import Any, Awaitable, Callable

import faust
from aiohttp import web

from touchpoint.core import metrics
from touchpoint.core.settings import Settings
from touchpoint.pipeline.lag import register_lag_timer
from touchpoint.pipeline.readers import API_FILE

CHECK_TIMEOUT_S = 3.0


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str


async def _timed(name: str, probe: Callable[[], Awaitable[str]]) -> Check:
    try:
        return Check(name, True, await asyncio.wait_for(probe(), CHECK_TIMEOUT_S))
    except asyncio.TimeoutError:
        return Check(name, False, f"no answer within {CHECK_TIMEOUT_S:.0f}s")
    except Exception as exc:  # a probe failing is the answer, not an error of the endpoint
        return Check(name, False, f"{type(exc).__name__}: {exc}")


async def broker_check(app: faust.App) -> str:
    """A real Kafka round trip: a metadata request through the worker's producer connection."""
    producer = app.producer._ensure_producer()  # faust's aiokafka producer, started with the worker
    client = producer.client
    cluster = await client.fetch_all_metadata()
    brokers = cluster.brokers()
    if not brokers:
        raise ConnectionError(f"no brokers in metadata from {app.conf.broker}")
    return f"{len(brokers)} broker(s)"


async def store_check(app: faust.App) -> str:
    """The sink's own view first (is it retrying a write?), then a read round trip on the read pool."""
    status = app.touchpoint["sink"].status
    if not status.ok:
        raise RuntimeError(f"sink {status.describe()}")
    rows = await app.touchpoint["reader"].query("SELECT 1 AS ok")
    if not rows or rows[0].get("ok") != 1:
        raise RuntimeError("SELECT 1 returned no row")
    return "writable; SELECT 1 ok"


async def batches_check(app: faust.App) -> str:
    failing = [status.describe() for status in app.touchpoint["batches"].values() if not status.ok]
    if failing:
        raise RuntimeError("; ".join(f"{s}" for s in failing))
    return "no batch retrying"


async def commits_check(app: faust.App) -> str:
    stalled = app.touchpoint["commits"].stalled()
    if stalled:
        raise RuntimeError(", ".join(f"{tp} no commit for {s:.0f}s with lag" for tp, s in stalled.items()))
    return "committing"


async def model_check(app: faust.App) -> str:
    stage = app.touchpoint["enrich"]
    if not stage.loaded:
        raise RuntimeError("models are still loading")
    return "loaded"


async def readiness(app: faust.App) -> list[Check]:
    """The checks of the parts this worker's role runs (an enrich worker has no store, a sink worker no models)."""
    checks = [_timed("broker", lambda: broker_check(app))]
    if "sink" in app.touchpoint:
        checks.append(_timed("store", lambda: store_check(app)))
    if "enrich" in app.touchpoint:
        checks.append(_timed("model", lambda: model_check(app)))
    checks += [_timed("batches", lambda: batches_check(app)), _timed("commits", lambda: commits_check(app))]
    return list(await asyncio.gather(*checks))


def register_ops(app: faust.App, settings: Settings) -> None:
    """Everything ops need from a worker: the consumer-lag timer and the web routes."""
    register_lag_timer(app, settings)
    register_ops_routes(app, settings)
    if settings.web_enabled:
        announce_api(app, settings)


def announce_api(app: faust.App, settings: Settings) -> None:
    """Say where this worker's API listens (DATA_DIR/worker-api.json), so commands that cannot open a chdb
    folder this worker holds can ask it instead (cli/reading.py); the file goes when the worker stops.

    Written when the app is built: the web server listens long before the worker holds the store.
    """
    path = settings.data_dir / API_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    url = f"http://127.0.0.1:{settings.web_port}"
    tmp.write_text(json.dumps({"url": url, "pid": os.getpid(), "clickhouse_url": settings.clickhouse_url}))
    tmp.replace(path)

    @app.on_before_shutdown.connect
    async def remove_api_file(app: faust.App, **kwargs: Any) -> None:
        try:
            if json.loads(path.read_text()).get("pid") == os.getpid():
                path.unlink()
        except (OSError, ValueError):
            pass


def register_ops_routes(app: faust.App, settings: Settings) -> None:
    """Add /metrics, /healthz and /readyz to the Faust web server (served when web is enabled)."""
    started = time.time()
    metrics.set_build_info()

    @app.page("/metrics", name="touchpoint_metrics")
    async def metrics_page(view: Any, request: Any) -> web.Response:
        body, content_type = metrics.metrics_response()
        return web.Response(body=body, headers={"Content-Type": content_type})

    @app.page("/healthz", name="touchpoint_healthz")
    async def healthz(view: Any, request: Any) -> web.Response:
        return web.json_response({"status": "ok", "uptime_s": round(time.time() - started, 1)})

    @app.page("/readyz", name="touchpoint_readyz")
    async def readyz(view: Any, request: Any) -> web.Response:
        checks = await readiness(app)
        body = {
            "status": "ready" if all(c.ok for c in checks) else "not ready",
            "checks": {c.name: {"ok": c.ok, "detail": c.detail} for c in checks},
        }
        failing = [c.name for c in checks if not c.ok]
        if failing:
            body["reason"] = "; ".join(f"{c.name}: {c.detail}" for c in checks if not c.ok)
        return web.json_response(body, status=503 if failing else 200)
