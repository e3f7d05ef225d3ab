"""``touchpoint connect CONFIG.yaml``: run the configured polling connectors.

One asyncio task per connector, one shared Kafka producer. Each task runs a
pass (``Connector.run_once``), then sleeps its ``poll_interval_s`` (or what a
``RateLimited`` source asked for) and polls again; ``--once`` runs one pass
each and exits. Ctrl-C / SIGTERM cancels the passes in flight: safe, because
a checkpoint never runs ahead of the broker's acknowledgements, so the next
start resumes at the last checkpoint. A failing pass never stops the other
connectors; what happens to the failing one depends on the error
(:func:`classify_failure`):

* **configuration** (the source refuses the credentials or the request: HTTP
  400/401/403/404, a missing parameter): retrying cannot help, so that
  connector stops, loudly: an error log line naming the fix, its
  ``touchpoint_component_failing{component="connector:NAME"}`` gauge at 1,
  ``/readyz`` not ready, and ``touchpoint connect`` exits 1 at the end;
* **transient** (5xx after retries, timeouts, the broker away): logged with
  its cause, retried at the next poll (within ``ERROR_RETRY_S``);
* **rate limited**: waits what the source asked for;
* anything else is a bug: logged with its traceback, retried like a transient one.

Every failure is counted in ``touchpoint_connector_errors_total{connector,kind}``.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import AsyncIterator, Callable

from aiohttp import web
from aiokafka.errors import KafkaError
from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

from touchpoint.connectors.config import ConnectorConfig, build_connector, load_config
from touchpoint.connectors.framework import Connector, RunStats
from touchpoint.connectors.http import HttpFailure, RateLimited
from touchpoint.connectors.producer import SignalProducer
from touchpoint.core import metrics
from touchpoint.core.checkpoints import CheckpointStore
from touchpoint.core.settings import Settings
from touchpoint.core.status import ComponentStatus

log = logging.getLogger(__name__)
ERROR_RETRY_S = 30.0  # after a failed pass, poll again within this (or the poll interval, if shorter)
CONFIGURATION_STATUSES = frozenset({400, 401, 403, 404})


def classify_failure(exc: BaseException) -> str:
    """configuration, transient or bug (module docstring)."""
    if isinstance(exc, HttpFailure):
        return "configuration" if exc.status in CONFIGURATION_STATUSES else "transient"
    if isinstance(exc, (ValueError, KeyError)) and "params." in str(exc):
        return "configuration"  # Connector.required_param and friends name the missing setting
    if isinstance(exc, (ConnectionError, TimeoutError, asyncio.TimeoutError, KafkaError)):
        return "transient"
    return "bug"


@dataclass
class ConnectorRun:
    connector: Connector
    stats: RunStats = field(default_factory=RunStats)
    state: str = "starting"
    current: RunStats | None = None  # the pass in flight, until it ends
    status: ComponentStatus = field(init=False)
    stopped_for: str | None = None  # the configuration error that stopped it

    def __post_init__(self) -> None:
        self.status = ComponentStatus(f"connector:{self.connector.config.name}")

    def totals(self) -> RunStats:
        total = RunStats()
        total.add(self.stats)
        if self.current is not None:
            total.add(self.current)
        return total


async def run_connectors(
    settings: Settings,
    connectors: list[Connector],
    *,
    once: bool = False,
    stop: asyncio.Event | None = None,
    on_update: Callable[[ConnectorRun], None] | None = None,
    runs: list[ConnectorRun] | None = None,
) -> list[ConnectorRun]:
    """Run every connector until ``stop`` is set (or one pass each with ``once``); ``runs`` to watch them live."""
    runs = runs if runs is not None else [ConnectorRun(connector) for connector in connectors]
    checkpoints = CheckpointStore(settings.data_dir / "checkpoints")
    stop = stop or asyncio.Event()
    async with SignalProducer(settings) as producer:
        tasks = [asyncio.create_task(_poll(run, producer, checkpoints, once, stop, on_update)) for run in runs]
        stopper = asyncio.create_task(stop.wait())
        try:  # until stop is set, or (with --once) every connector finished its pass
            while not stopper.done() and not all(task.done() for task in tasks):
                await asyncio.wait([*tasks, stopper], return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopper.cancel()
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
    return runs


async def _poll(
    run: ConnectorRun,
    producer: SignalProducer,
    checkpoints: CheckpointStore,
    once: bool,
    stop: asyncio.Event,
    on_update: Callable[[ConnectorRun], None] | None,
) -> None:
    connector = run.connector

    def progress(current: RunStats) -> None:
        run.current = current
        _notify(on_update, run)

    async with connector.http:
        while not stop.is_set():
            run.state = "polling"
            _notify(on_update, run)
            delay = connector.config.poll_interval_s
            try:
                run.stats.add(await connector.run_once(producer, checkpoints, progress))
                run.state = "idle"
            except asyncio.CancelledError:  # stopped mid-pass: keep what it checkpointed
                run.stats.add(run.current or RunStats())
                run.current, run.state = None, "stopped"
                raise
            except RateLimited as exc:
                run.stats.add(_failed(run.current, str(exc)))
                run.state, delay = f"rate limited {exc.retry_after:.0f}s", exc.retry_after
            except Exception as exc:  # a failing source must not stop the others
                kind = classify_failure(exc)
                message = f"{type(exc).__name__}: {exc}"
                run.stats.add(_failed(run.current, message))
                run.status.failed(f"{kind}: {message}")
                metrics.CONNECTOR_ERRORS.labels(connector.config.name, kind).inc()
                if kind == "configuration":
                    log.error("connector %s stopped: %s (fix its config or credentials, then restart)", connector.config.name, message)
                    run.current, run.state, run.stopped_for = None, "stopped: configuration error", message
                    _notify(on_update, run)
                    return
                if kind == "bug":
                    log.exception("connector %s failed unexpectedly; retrying in %.0fs", connector.config.name, min(delay, ERROR_RETRY_S))
                else:
                    log.warning("connector %s failed (%s); retrying in %.0fs", connector.config.name, message, min(delay, ERROR_RETRY_S))
                run.state, delay = "error", min(delay, ERROR_RETRY_S)
            else:
                run.status.recovered()
            run.current = None
            _notify(on_update, run)
            if once:
                return
            try:
                await asyncio.wait_for(stop.wait(), timeout=delay)
            except asyncio.TimeoutError:
                pass
    run.state = "stopped"


def _failed(partial: RunStats | None, error: str) -> RunStats:
    """A failed pass: what it checkpointed before failing still counts."""
    failed = partial or RunStats(passes=1)
    failed.errors += 1
    failed.last_error = error
    return failed


def _notify(on_update: Callable[[ConnectorRun], None] | None, run: ConnectorRun) -> None:
    if on_update is not None:
        on_update(run)


def connect_command(
    settings: Settings, config_file: str | Path, *, once: bool, console: Console, webhooks: bool = False
) -> int:
    """The CLI job: live progress per connector, a summary table at the end; 1 if any pass failed.

    With ``webhooks`` the survey webhook receiver runs in the same process
    (production's connectors service), on TOUCHPOINT_WEBHOOK_HOST/PORT.
    """
    configs = load_config(config_file)
    if not configs and not webhooks:
        console.print(f"{config_file} declares no connectors")
        return 0
    connectors = build_connectors(configs, settings)  # config and env mistakes surface before anything starts
    runs = [ConnectorRun(connector) for connector in connectors]

    async def main() -> list[ConnectorRun]:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        handled = _on_signals(loop, stop.set)
        columns = [SpinnerColumn(), TextColumn("{task.description}"), BarColumn(bar_width=20)]
        columns += [TextColumn("{task.fields[step]}"), TextColumn("{task.fields[line]}"), TimeElapsedColumn()]
        with Progress(*columns, console=console) as progress:
            bars: dict[str, TaskID] = {
                c.name: progress.add_task(c.name, line="starting", step="", total=None) for c in configs
            }
            for connector in connectors:  # long steps (an export) fill the bar; others pulse
                connector.progress = _bar(progress, bars[connector.config.name])

            def update(run: ConnectorRun) -> None:
                s = run.totals()
                line = f"{run.state}: read {s.read} / produced {s.produced} / dead-lettered {s.dead_lettered}"
                progress.update(bars[run.connector.config.name], line=line)

            try:
                async with serving_ops(settings, runs, console), _webhooks_if(webhooks, settings, console):
                    if not connectors:
                        await stop.wait()
                        return []
                    return await run_connectors(settings, connectors, once=once, stop=stop, on_update=update, runs=runs)
            finally:
                for sig in handled:
                    loop.remove_signal_handler(sig)

    runs = asyncio.run(main())
    console.print(summary_table(runs))
    for run in runs:
        if run.stopped_for:
            console.print(f"[red]connector {run.connector.config.name} stopped:[/] {run.stopped_for}")
    return 1 if any(run.stats.errors for run in runs) else 0


def _bar(progress: Progress, task: TaskID) -> Callable[[str, float | None, float | None], None]:
    """A connector's progress reports drawn on its row: the step, and the bar when the step has a total."""

    def report(what: str, done: float | None, total: float | None) -> None:
        shown = f"{what} {done:.0f}/{total:.0f}" if done is not None and total else what
        progress.update(task, step=shown, completed=done or 0, total=total)

    return report


@asynccontextmanager
async def _webhooks_if(enabled: bool, settings: Settings, console: Console) -> AsyncIterator[None]:
    """Serve the webhook receiver for the block when ``enabled``."""
    if not enabled:
        yield
        return
    from touchpoint.connectors.webhooks import serving_webhooks

    async with SignalProducer(settings) as producer, serving_webhooks(settings, producer) as url:
        console.print(f"webhook receiver on {url}/{{tool}}")
        yield


@asynccontextmanager
async def serving_ops(settings: Settings, runs: list[ConnectorRun], console: Console) -> AsyncIterator[None]:
    """/metrics, /healthz and /readyz on ``metrics_port`` (0 = off) while the connectors run.

    /readyz is 503 while any connector is stopped by a configuration error,
    naming it and the error; connectors that retry show their last failure.
    """
    if not settings.metrics_port:
        yield
        return

    async def healthz(request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def readyz(request: web.Request) -> web.Response:
        stopped = {r.connector.config.name: r.stopped_for for r in runs if r.stopped_for}
        retrying = {r.connector.config.name: r.status.describe() for r in runs if not r.status.ok and not r.stopped_for}
        body = {"status": "not ready" if stopped else "ready", "stopped": stopped, "retrying": retrying}
        return web.json_response(body, status=503 if stopped else 200)

    app = web.Application()
    metrics.add_metrics_route(app)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, "0.0.0.0", settings.metrics_port).start()
    except OSError as exc:
        await runner.cleanup()
        raise ValueError(
            f"cannot serve /metrics on port {settings.metrics_port} ({exc}); "
            "set TOUCHPOINT_METRICS_PORT to a free port, or 0 to turn it off"
        ) from exc
    metrics.set_build_info()
    console.print(f"/metrics, /healthz, /readyz on port {settings.metrics_port}")
    try:
        yield
    finally:
        await runner.cleanup()


def build_connectors(configs: list[ConnectorConfig], settings: Settings) -> list[Connector]:
    return [build_connector(config, settings) for config in configs]


def _on_signals(loop: asyncio.AbstractEventLoop, callback: Callable[[], None]) -> list[signal.Signals]:
    """Ctrl-C and SIGTERM stop gracefully; only the main thread can take signals (else none)."""
    handled = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, callback)
        except (RuntimeError, ValueError, NotImplementedError):
            continue
        handled.append(sig)
    return handled


def summary_table(runs: list[ConnectorRun]) -> Table:
    table = Table(title="connectors")
    for column in ("connector", "type", "passes", "read", "produced", "dead-lettered", "errors", "last error"):
        table.add_column(column)
    for run in runs:
        s, config = run.stats, run.connector.config
        table.add_row(
            config.name, config.type, str(s.passes), str(s.read), str(s.produced), str(s.dead_lettered),
            str(s.errors), (s.last_error or "-")[:120],
        )  # fmt: skip
    return table
