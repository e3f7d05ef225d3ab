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
from rich.markup import escape

from touchpoint.connectors.producer import SignalProducer
from touchpoint.connectors.webhooks import TOOLS, serving_webhooks
from touchpoint.core.broker import EmbeddedBroker
from touchpoint.core.settings import Settings
from touchpoint.demo import embedded_settings
from touchpoint.models.enricher import Enricher
from touchpoint.pipeline.runtime import running_worker
from touchpoint.trial import with_trial_secret

BROKER_WATCH_S = 1.0
BROKER_DIED = 3  # the exit code for "the Kafka broker is gone" (touchpoint.errors)


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
    rules = services.app.touchpoint.get("rules")
    if rules is not None:  # closing the loop is on
        console.print(f"  routing rules     {rules.path} (version {rules.rules.version}, re-read on change)", highlight=False)
        console.print(f"  cases API         {services.web_url}/api/v1/cases  (/api/v1/loop)", highlight=False)
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


async def serve(
    settings: Settings, broker: EmbeddedBroker, console: Console, stop: asyncio.Event | None = None,
    enricher: Enricher | None = None,
) -> str | None:
    """Run until ``stop`` is set (by default: until SIGINT or SIGTERM) or the broker dies; returns why it died.

    The broker is watched from the first moment, while the worker still starts
    too: a stack whose broker is gone stops (within the shutdown timeout)
    instead of waiting for it forever.
    """
    this = asyncio.current_task()
    died: list[str] = []

    async def watch_broker() -> None:
        while not (message := broker.died()):
            await asyncio.sleep(BROKER_WATCH_S)
        died.append(message)
        if this is not None:
            this.cancel()

    watcher = asyncio.create_task(watch_broker())
    try:
        async with running_services(settings, enricher) as services:
            if stop is None:
                stop = asyncio.Event()
                _stop_on_signals(stop)
            print_endpoints(console, broker.bootstrap, settings, services)
            await stop.wait()
            console.print("stopping: webhook receiver, producer, worker (committing offsets), broker")
    except asyncio.CancelledError:
        if not died:
            raise
    finally:
        watcher.cancel()
    if died:
        console.print(f"[red]error:[/] {escape(died[0])}")
        return died[0]
    return None


def run_up(settings: Settings, console: Console | None = None, broker_port: int | None = None) -> int:
    """Blocking entry point for the CLI."""
    console = console or Console()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    settings = with_trial_secret(settings, console)
    with EmbeddedBroker(port=broker_port, log_file=settings.data_dir / "broker.log") as broker:
        live = embedded_settings(settings, broker.bootstrap)
        died = asyncio.run(serve(live, broker, console))
    console.print("stopped")
    return BROKER_DIED if died else 0
