"""`touchpoint demo`: the whole path on the embedded stack over bundled real texts.

Embedded broker (Tansu) + the Faust worker in this process + chdb on disk.
The demo imports the bundled sample, waits until every record is stored or
dead-lettered (`produced = stored + dead-lettered`) and every stored signal is
routed by the bundled example rules (cli/demo_loop.py), then prints the CX
report and the open cases per team. A second run re-imports the same
signal_ids, so no number doubles and no new case opens.
"""

from __future__ import annotations

import asyncio
import json
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from touchpoint.connectors.files import import_file
from touchpoint.connectors.producer import SignalProducer
from touchpoint.core.broker import EmbeddedBroker
from touchpoint.core.kafka import topic_message_count
from touchpoint.core.settings import Settings
from touchpoint.demo_loop import LocalInbox, demo_routing, open_cases_by_team, print_loop, wait_until_routed
from touchpoint.pipeline.queries import Filters, touchpoint_summary
from touchpoint.pipeline.report import write_report
from touchpoint.pipeline.runtime import running_worker
from touchpoint.pipeline.store import Store
from touchpoint.samples import sample_path
from touchpoint.trial import with_trial_secret

DEMO_BRAND = "demo"
SAMPLE_FILES = ("demo_signals.jsonl", "demo_malformed.jsonl")


@dataclass
class DemoResult:
    read: int = 0
    stored: int = 0
    dead_lettered: int = 0
    signal_ids: list[str] = field(default_factory=list)
    touchpoints: list[dict[str, Any]] = field(default_factory=list)
    cases_opened: int = 0  # by this run
    open_cases: list[dict[str, Any]] = field(default_factory=list)  # per team and priority, after this run
    deliveries: dict[str, int] = field(default_factory=dict)

    @property
    def balanced(self) -> bool:
        return self.read == self.stored + self.dead_lettered


def embedded_settings(settings: Settings, bootstrap: str) -> Settings:
    """Settings for the one-machine stack: the local broker and a short group join."""
    return settings.with_overrides(kafka_bootstrap=bootstrap, kafka_rebalance_timeout_s=3.0, kafka_session_timeout_s=10.0)


def limited_sample(limit: int | None, workdir: Path) -> Path:
    source = sample_path(SAMPLE_FILES[0])
    if limit is None:
        return source
    lines = source.read_text(encoding="utf-8").splitlines(keepends=True)[:limit]
    target = workdir / "demo_signals.jsonl"
    target.write_text("".join(lines), encoding="utf-8")
    return target


async def ingest_and_wait(settings: Settings, files: list[Path], console: Console, timeout_s: float) -> DemoResult:
    result = DemoResult()
    total = sum(1 for f in files for line in f.read_bytes().splitlines() if line.strip())
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    async with LocalInbox() as inbox:
        settings = demo_routing(settings, inbox)  # the example rules; deliveries go to the local inbox
        async with running_worker(settings) as app:
            with Progress(*columns, console=console, transient=False) as progress:
                produce_task = progress.add_task("produced to signals.raw", total=total)
                async with SignalProducer(settings) as producer:
                    for file in files:
                        summary = await import_file(
                            producer, file, channel="review", source="file", brand=DEMO_BRAND,
                            on_record=lambda: progress.advance(produce_task),
                        )  # fmt: skip
                        result.read += summary.read
                        result.signal_ids += summary.signal_ids
                done_task = progress.add_task("stored or dead-lettered", total=total)
                store = app.touchpoint["reader"]
                deadline = time.monotonic() + timeout_s
                while time.monotonic() < deadline:
                    result.stored = await store.call(Store.count_stored, result.signal_ids)
                    result.dead_lettered = await topic_message_count(settings, settings.topic_dead_letter)
                    progress.update(done_task, completed=result.stored + result.dead_lettered)
                    if result.stored + result.dead_lettered >= total:
                        break
                    await asyncio.sleep(0.5)
                await wait_until_routed(app, result.stored, deadline)
            result.cases_opened = app.touchpoint["actions"].opened
        result.deliveries = dict(inbox.received)
    return result


def print_report(console: Console, result: DemoResult, min_n: int) -> None:
    table = Table(title="Customer experience by touchpoint (demo brand)", show_lines=False)
    nps_column, verbatim_column = "NPS (n, each response at its primary touchpoint)", "representative verbatim (redacted)"
    for column in ("touchpoint", "n", "net sentiment %", "mean score", nps_column, verbatim_column):
        table.add_column(column, overflow="fold")
    for row in result.touchpoints:
        low = " *" if row["low_confidence"] else ""
        nps = f"{row['nps']:+.0f} ({row['nps_n']})" if row["nps_n"] else "-"
        verbatim = (row["verbatim"] or "")[:110]
        net = "-" if row["net_sentiment"] is None else f"{row['net_sentiment']:+.1f}{low}"
        table.add_row(row["touchpoint"], str(row["n"]), net, f"{row['mean_sentiment']:+.2f}", nps, verbatim)
    console.print(table)
    console.print(f"* fewer than {min_n} signals: low confidence, read with care.")
    status = "[green]balanced[/]" if result.balanced else "[red]NOT balanced[/]"
    console.print(
        f"produced {result.read} / stored {result.stored} / dead-lettered {result.dead_lettered}  ({status})"
    )


def run_demo(settings: Settings, limit: int | None = None, console: Console | None = None, timeout_s: float = 600) -> DemoResult:
    # Piped or logged output gets a readable width instead of rich's 80 columns.
    console = console or Console(width=None if sys.stdout.isatty() else 150)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    settings = with_trial_secret(settings, console)
    with tempfile.TemporaryDirectory() as tmp, EmbeddedBroker(log_file=settings.data_dir / "broker.log") as broker:
        console.print(f"embedded broker on {broker.bootstrap}; store {settings.clickhouse_url}")
        live = embedded_settings(settings, broker.bootstrap)
        files = [limited_sample(limit, Path(tmp)), sample_path(SAMPLE_FILES[1])]
        result = asyncio.run(ingest_and_wait(live, files, console, timeout_s))
    store = Store.from_settings(settings)
    try:
        result.touchpoints = touchpoint_summary(store, result.signal_ids, settings.min_responses)
    finally:
        store.close()
    print_report(console, result, settings.min_responses)
    result.open_cases = open_cases_by_team(settings, DEMO_BRAND)
    print_loop(console, result.open_cases, result.cases_opened, result.deliveries)
    report_file = settings.data_dir / "demo-report.json"
    report_file.write_text(json.dumps({**result.__dict__, "signal_ids": len(result.signal_ids)}, default=str, indent=2))
    console.print(f"report written to {report_file}")
    dashboard = write_report(settings, settings.data_dir / "report.html", Filters(brand=DEMO_BRAND))
    console.print(f"CX dashboard (self-contained HTML) written to {dashboard.resolve()}")
    return result
