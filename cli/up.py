"""`touchpoint up`: the embedded stack, long-running, in one process.

Starts, in order: the embedded Kafka-protocol broker (Tansu), the Faust worker
(enrich + sink into chdb) with its web server (/metrics, /healthz, /readyz and
whatever else pipeline/app.py registers), then the survey webhook receiver on
its own port. It prints where each part listens and runs until SIGINT/SIGTERM;
shutdown goes in reverse: the receiver stops taking requests, the producer
flushes what it holds, the worker commits its offsets, the broker stops.
"""

from __future__ import annotations

import asyncio
import signal
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import AsyncIterator

import faust
from rich.console import Console

from touchpoint.connectors.producer import SignalProducer
from touchpoint.connectors.webhooks import TOOLS, serving_webhooks
from touchpoint.core.broker import EmbeddedBroker
from touchpoint.core.settings import Settings
from touchpoint.demo import embedded_settings
from touchpoint.models.enricher import Enricher
from touchpoint.pipeline.runtime import running_worker
from touchpoint.trial import with_trial_secret


@dataclass
class Services:
    app: faust.App
    producer: SignalProducer
    webhook_url: str
    web_url: str


@asynccontextmanager
async def running_services(settings: Settings, enricher: Enricher | None = None) -> AsyncIterator[Services]:
    """Worker (web server on) + webhook receiver against the broker in ``settings``; stops both on exit."""
    settings = settings.with_overrides(web_enabled=True)
    async with running_worker(settings, enricher) as app, SignalProducer(settings) as producer:
        async with serving_webhooks(settings, producer) as webhook_url:
            yield Services(app, producer, webhook_url, f"http://127.0.0.1:{settings.web_port}")


def print_endpoints(console: Console, bootstrap: str, settings: Settings, services: Services) -> None:
    console.print("[bold]touchpoint up[/]: embedded stack ready (Ctrl-C stops it)")
    console.print(f"  Kafka broker      {bootstrap}   (export TOUCHPOINT_KAFKA_BOOTSTRAP={bootstrap})")
    console.print(f"  ClickHouse        {settings.clickhouse_url} database {settings.clickhouse_database}")
    console.print(f"  worker web        {services.web_url}  (/metrics, /healthz, /readyz)")
    for tool in TOOLS:
        secret = TOOLS[tool].secret_of(settings)
        unsigned_ok = settings.webhook_allow_unsigned or TOOLS[tool].signing_optional
        state = "signed" if secret else ("UNSIGNED" if unsigned_ok else "refused: no secret set")
        console.print(f"  webhook {tool:<10} {services.webhook_url}/{tool}  ({state})", highlight=False)


def _stop_on_signals(stop: asyncio.Event) -> None:
    """SIGINT/SIGTERM set ``stop``; installed after the worker started, which installs its own."""
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)


async def serve(settings: Settings, bootstrap: str, console: Console, stop: asyncio.Event | None = None) -> None:
    """Run until ``stop`` is set (by default: until SIGINT or SIGTERM)."""
    async with running_services(settings) as services:
        if stop is None:
            stop = asyncio.Event()
            _stop_on_signals(stop)
        print_endpoints(console, bootstrap, settings, services)
        await stop.wait()
        console.print("stopping: webhook receiver, producer, worker (committing offsets), broker")


def run_up(settings: Settings, console: Console | None = None) -> int:
    """Blocking entry point for the CLI."""
    console = console or Console()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    settings = with_trial_secret(settings, console)
    with EmbeddedBroker(log_file=settings.data_dir / "broker.log") as broker:
        live = embedded_settings(settings, broker.bootstrap)

        asyncio.run(serve(live, broker.bootstrap, console))
    console.print("stopped")
    return 0
