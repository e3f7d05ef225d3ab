"""`touchpoint` command line: one entry point for every job (also `python -m touchpoint`)."""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import signal
import sys
from datetime import datetime
from pathlib import Path
from typing import Any, Sequence

from rich.console import Console
from rich.table import Table

from touchpoint.core.deadletter import STAGES
from touchpoint.core.settings import Settings

MODEL_COMMANDS = frozenset({"demo", "up", "worker", "enrich", "train", "eval"})
console = Console(stderr=False)
err = Console(stderr=True)


def parse_when(value: str | None) -> datetime | None:
    """An ISO date/time, or a span back from now such as 24h, 7d, 4w."""
    from touchpoint.core.times import parse_time_expression

    if not value:
        return None
    try:
        return parse_time_expression(value)
    except ValueError as exc:
        raise SystemExit(f"error: {exc}") from exc


def cmd_demo(settings: Settings, args: argparse.Namespace) -> int:
    from touchpoint.demo import run_demo

    result = run_demo(settings, limit=args.limit)
    return 0 if result.balanced else 1


def cmd_up(settings: Settings, args: argparse.Namespace) -> int:
    from touchpoint.up import run_up

    overrides = {k: v for k, v in (("webhook_port", args.webhook_port), ("web_port", args.web_port)) if v is not None}
    return run_up(settings.with_overrides(**overrides) if overrides else settings, console)


def cmd_broker(settings: Settings, args: argparse.Namespace) -> int:
    from touchpoint.core.broker import EmbeddedBroker

    with EmbeddedBroker(port=args.port) as broker:
        console.print(f"embedded Kafka-protocol broker (Tansu) ready on {broker.bootstrap}; Ctrl-C stops it")
        console.print(f"  export TOUCHPOINT_KAFKA_BOOTSTRAP={broker.bootstrap}")
        try:
            signal.sigwait({signal.SIGINT, signal.SIGTERM})
        except KeyboardInterrupt:
            pass
    return 0


def cmd_worker(settings: Settings, args: argparse.Namespace) -> int:
    """Faust's own worker command, run on an app built from these settings (no environment hand-off)."""
    from faust.cli.faust import cli

    from touchpoint.pipeline.app import create_app

    app = create_app(settings.with_overrides(web_enabled=True))
    app.finalize()
    app.worker_init()
    app.worker_init_post_autodiscover()
    cli.main(args=["worker", "-l", settings.log_level, *args.faust_args], prog_name="touchpoint", app=app)
    return 0


def cmd_migrate(settings: Settings, args: argparse.Namespace) -> int:
    from touchpoint.pipeline.store import Store

    store = Store.from_settings(settings)
    try:
        applied = store.migrate()
    finally:
        store.close()
    console.print(f"applied: {', '.join(applied)}" if applied else "schema is up to date")
    return 0


def cmd_import(settings: Settings, args: argparse.Namespace) -> int:
    from rich.progress import Progress

    from touchpoint.connectors.files import count_records, import_file
    from touchpoint.connectors.producer import SignalProducer

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
    console.print(
        f"read {summary.read} / produced {summary.produced} / dead-lettered {summary.dead_lettered}"
        f" / skipped as duplicates {summary.skipped_duplicates}"
    )
    return 0


def cmd_connect(settings: Settings, args: argparse.Namespace) -> int:
    from touchpoint.connectors.runner import connect_command

    try:
        return connect_command(settings, args.connectors_file, once=args.once, console=console, webhooks=args.webhooks)
    except (FileNotFoundError, ValueError) as exc:  # config mistakes: say what to fix, no traceback
        err.print(f"[red]connectors config error:[/] {exc}")
        return 2


def cmd_query(settings: Settings, args: argparse.Namespace) -> int:
    from touchpoint.pipeline.queries import Filters, metric_by
    from touchpoint.pipeline.store import Store

    filters = Filters(parse_when(args.since), parse_when(args.until), args.brand, args.channel)
    store = Store.from_settings(settings)
    try:
        rows = metric_by(store, args.metric, args.by, filters, settings.min_responses, compare=args.compare)
    except ValueError as exc:  # e.g. --compare without --since: say what to fix
        err.print(f"[red]error:[/] {exc}")
        return 2
    finally:
        store.close()
    print_rows(rows, args.format)
    return 0


def cmd_journey(settings: Settings, args: argparse.Namespace) -> int:
    from touchpoint.pipeline.queries import journey
    from touchpoint.pipeline.store import Store

    store = Store.from_settings(settings)
    try:
        rows = journey(store, args.customer_id, args.limit)
    finally:
        store.close()
    print_rows(rows, args.format)
    return 0 if rows else 1


def cmd_report(settings: Settings, args: argparse.Namespace) -> int:
    from rich.status import Status

    from touchpoint.pipeline.queries import Filters
    from touchpoint.pipeline.report import write_report

    filters = Filters(parse_when(args.since), parse_when(args.until), args.brand, args.channel)
    with Status("querying ClickHouse and drawing the report", console=err):
        path = write_report(settings, Path(args.out) if args.out else None, filters)
    console.print(f"report written to {path.resolve()} (self-contained HTML: open it in any browser)")
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


def cmd_dlq(settings: Settings, args: argparse.Namespace) -> int:
    from touchpoint.pipeline import dlq

    if args.action == "list":
        letters = asyncio.run(dlq.read_letters(settings, args.stage))
        shown = [letter.summary() for letter in letters[-args.limit :]]
        print_rows(shown, args.format)
        counts = ", ".join(f"{stage} {n}" for stage, n in dlq.stage_counts(letters).items()) or "none"
        err.print(f"{len(letters)} dead letters in {settings.topic_dead_letter} (showing {len(shown)}): {counts}")
        return 0
    summary = asyncio.run(dlq.replay(settings, args.stage, again=args.again, dry_run=args.dry_run))
    verb = "would replay" if args.dry_run else "replayed"
    targets = ", ".join(f"{topic} {n}" for topic, n in summary.by_topic.items()) or "nothing"
    console.print(
        f"read {summary.read} / {verb} {summary.produced} ({targets})"
        f" / not replayable {summary.skipped_not_replayable} (connector stages: re-import from the source)"
        f" / already replayed {summary.skipped_already_replayed} / other stages {summary.skipped_filtered}"
    )
    return 0


def cmd_enrich(settings: Settings, args: argparse.Namespace) -> int:
    from touchpoint.pipeline.offline import enrich_jsonl

    source = sys.stdin if args.file in (None, "-") else open(args.file, encoding="utf-8")
    with source:
        count = enrich_jsonl(settings, source, sys.stdout, show_progress=sys.stderr.isatty())
    err.print(f"enriched {count} records")
    return 0


def cmd_data(settings: Settings, args: argparse.Namespace) -> int:
    from touchpoint.models.datasets import fetch

    target = fetch(settings.data_dir / "data")
    console.print(f"labelled data ready in {target}")
    return 0


def cmd_train(settings: Settings, args: argparse.Namespace) -> int:
    from rich.status import Status

    if args.model == "tagging":
        from touchpoint.models.enricher import Enricher
        from touchpoint.models.tagging_eval import write_calibration
        from touchpoint.pipeline.enrichment import enricher_config

        with Status("calibrating emotion and touchpoint thresholds on the dev part", console=err):
            path = write_calibration(Enricher(enricher_config(settings)))
        console.print(f"wrote {path}")
        return 0
    if args.model == "hf-sentiment":
        from touchpoint.models.hf_export import finetune_sequence_classifier

        if not args.out:
            raise SystemExit("error: `touchpoint train hf-sentiment` needs --out DIR (where save_pretrained writes)")
        with Status("fine-tuning a sequence classifier from the packaged encoder", console=err):
            path = finetune_sequence_classifier(settings.data_dir / "data", Path(args.out), limit=args.limit)
        console.print(f"wrote a Hugging Face classifier to {path}; use it with TOUCHPOINT_SENTIMENT_MODEL={path}")
        return 0
    if args.model == "priors":
        return cmd_train_priors(settings, args)
    if args.frozen_head:
        from touchpoint.models.train_head import train_frozen_head

        with Status("training", console=err) as status:
            head = train_frozen_head(
                settings.data_dir / "data", Path(args.out) if args.out else None,
                cache_dir=settings.data_dir / "cache", progress=lambda step: status.update(f"frozen head: {step}"),
            )  # fmt: skip
        console.print(f"trained on {head.examples} texts {head.per_set}; chose {head.chosen}; wrote {head.path}")
        return 0
    from touchpoint.models.train import train_sentiment

    with Status("training", console=err) as status:
        report = train_sentiment(
            settings.data_dir / "data", Path(args.out) if args.out else None, cache_dir=settings.data_dir / "cache",
            progress=lambda step: status.update(f"sentiment: {step}"), compare=args.compare,
        )  # fmt: skip
    if report.comparison:
        table = Table(title="approaches (validation macro-F1, mean over sets)")
        table.add_column("approach")
        table.add_column("score", justify="right")
        for row in report.comparison:
            table.add_row(row["name"], f"{row['selection_score']:.3f}")
        console.print(table)
    scores = report.validation_scores
    console.print(f"fine-tuned on {report.examples - report.validation} texts, calibrated on {report.validation} "
                  f"{report.per_set}; labels {report.per_label}")  # fmt: skip
    console.print(f"validation macro-F1 {scores['validation_macro_f1']} (mean {scores['selection_score']:.3f}); "
                  f"{report.seconds / 60:.0f} min")  # fmt: skip
    console.print(f"wrote {report.path}")
    return 0


def cmd_train_priors(settings: Settings, args: argparse.Namespace) -> int:
    """A brand's sentiment prior by EM, from its stored texts or a JSONL file (pipeline/priors.py)."""
    from rich.status import Status

    from touchpoint.pipeline.priors import NotEnoughTexts, estimate_brand_prior, file_texts, stored_texts
    from touchpoint.pipeline.store import Store

    if not args.brand:
        raise SystemExit("error: `touchpoint train priors` needs --brand B (whose texts, and whose prior)")
    with Status(f"estimating the sentiment prior of {args.brand}", console=err):
        if args.file:
            texts, source = file_texts(Path(args.file)), f"file {args.file}"
        else:
            store = Store.from_settings(settings)
            try:
                texts, source = stored_texts(store, args.brand), "stored signals"
            finally:
                store.close()
        try:
            result = estimate_brand_prior(settings, args.brand, texts, source)
        except NotEnoughTexts as exc:
            err.print(f"[red]{exc}[/]")
            return 1
    def shares(prior: Sequence[float]) -> str:
        return " / ".join(f"{label} {v:.2f}" for label, v in zip(("negative", "neutral", "positive"), prior))

    estimate = result.estimate
    console.print(f"{result.brand}: {result.texts} texts ({source})")
    console.print(f"  label mix the model was calibrated to: {shares(result.source_prior)}")
    console.print(f"  estimated for {result.brand} (EM, {estimate.iterations} iterations): {shares(estimate.prior)}")
    console.print(f"wrote {result.path}; the enricher applies it to {result.brand}'s texts from its next start")
    return 0


def cmd_eval(settings: Settings, args: argparse.Namespace) -> int:
    from rich.status import Status

    from touchpoint.models.evaluate import run, write_card
    from touchpoint.pipeline.enrichment import enricher_config

    with Status("evaluating", console=err) as status:
        report = run(settings.data_dir / "data", settings.data_dir / "cache", enricher_config(settings),
                     progress=lambda step: status.update(f"evaluating: {step}"))  # fmt: skip
    path = write_card(report, Path(args.out) if args.out else None)
    for name, (model, head, vader) in report.sentiment.items():
        console.print(f"{name:14s} n={model.n:5d}  macro-F1 model {model.macro_f1:.3f}  head v2 {head.macro_f1:.3f}  "
                      f"VADER {vader.macro_f1:.3f}")  # fmt: skip
    if "all" in report.slice:
        model, head, vader = report.slice["all"]
        console.print(f"{'cs slice':14s} n={model.n:5d}  macro-F1 model {model.macro_f1:.3f}  head v2 {head.macro_f1:.3f}  "
                      f"VADER {vader.macro_f1:.3f}")  # fmt: skip
    console.print(f"wrote {path} in {report.seconds:.0f} s")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="touchpoint", description=__doc__)
    parser.add_argument("--config", help="YAML settings file (else TOUCHPOINT_CONFIG)")
    sub = parser.add_subparsers(dest="command", required=True)

    demo = sub.add_parser("demo", help="embedded stack over bundled real sample data; prints the CX report")
    demo.add_argument("--limit", type=int, help="use only the first N sample records")
    demo.set_defaults(run=cmd_demo)

    up = sub.add_parser("up", help="embedded stack, long-running: broker, worker (+ /metrics), webhook receiver")
    up.add_argument("--webhook-port", type=int, help="webhook receiver port (default: settings.webhook_port, 8088)")
    up.add_argument("--web-port", type=int, help="worker web server port (default: settings.web_port, 6066)")
    up.set_defaults(run=cmd_up)

    broker = sub.add_parser("broker", help="run only the embedded Kafka-protocol broker")
    broker.add_argument("--port", type=int, default=9092)
    broker.set_defaults(run=cmd_broker)

    worker = sub.add_parser("worker", help="a production worker (the Faust worker of touchpoint.pipeline.app)")
    worker.epilog = "Any other option goes to faust's worker command, e.g. -p/--web-port PORT, --without-web."
    worker.set_defaults(run=cmd_worker)

    sub.add_parser("migrate", help="apply ClickHouse DDL (idempotent, versioned)").set_defaults(run=cmd_migrate)

    imp = sub.add_parser("import", help="backfill a CSV/JSONL file into signals.raw")
    imp.add_argument("file")
    imp.add_argument("--channel", required=True, choices=["survey", "chat", "email", "call", "social", "review"])
    imp.add_argument("--source", required=True)
    imp.add_argument("--brand", default="default")
    imp.add_argument("--format", choices=["csv", "jsonl", "zendesk"], help="zendesk: a Zendesk ticket export with comments")
    imp.set_defaults(run=cmd_import)

    connect = sub.add_parser("connect", help="run the polling connectors a config file declares")
    connect.add_argument("connectors_file", metavar="CONFIG.yaml", help="see deploy/connectors.example.yaml")
    connect.add_argument("--once", action="store_true", help="one pass per connector, then exit")
    connect.add_argument(
        "--webhooks", action="store_true", help="also serve the survey webhook receiver (TOUCHPOINT_WEBHOOK_PORT)"
    )
    connect.set_defaults(run=cmd_connect)

    query = sub.add_parser("query", help="a CX metric by a dimension, from ClickHouse")
    query.add_argument("metric", choices=["nps", "csat", "ces", "sentiment", "volume", "emotions"])
    query.add_argument("--by", required=True, choices=["touchpoint", "stage", "channel", "source", "kind", "brand", "day", "week"])
    query.add_argument("--since")
    query.add_argument("--until")
    query.add_argument("--brand")
    query.add_argument("--channel")
    query.add_argument("--format", choices=["table", "json", "csv"], default="table")
    query.add_argument("--compare", action="store_true", help="add change vs the previous period of the same length (needs --since)")
    query.set_defaults(run=cmd_query)

    report = sub.add_parser("report", help="the CX dashboard as one self-contained HTML file")
    report.add_argument("--out", help="where to write it (default: DATA_DIR/report.html)")
    report.add_argument("--since", help="date, time or span like 30d (default: all data)")
    report.add_argument("--until")
    report.add_argument("--brand")
    report.add_argument("--channel")
    report.set_defaults(run=cmd_report)

    journey = sub.add_parser("journey", help="every signal of one customer across channels, in time order")
    journey.add_argument("customer_id")
    journey.add_argument("--limit", type=int, default=1000)
    journey.add_argument("--format", choices=["table", "json", "csv"], default="table")
    journey.set_defaults(run=cmd_journey)

    dlq = sub.add_parser("dlq", help="inspect and re-drive dead letters")
    dlq.add_argument("action", choices=["list", "replay"])
    dlq.add_argument("--stage", choices=STAGES)
    dlq.add_argument("--limit", type=int, default=50, help="list: show the newest N")
    dlq.add_argument("--format", choices=["table", "json", "csv"], default="table")
    dlq.add_argument("--again", action="store_true", help="replay: also letters replayed before")
    dlq.add_argument("--dry-run", action="store_true", help="replay: only say what would be replayed")
    dlq.set_defaults(run=cmd_dlq)

    enrich = sub.add_parser("enrich", help="offline enrichment: JSONL in, JSONL out")
    enrich.add_argument("file", nargs="?", default="-")
    enrich.set_defaults(run=cmd_enrich)

    data = sub.add_parser("data", help="labelled data that packages ship")
    data.add_argument("action", choices=["fetch"])
    data.set_defaults(run=cmd_data)

    train = sub.add_parser("train", help="train a model head")
    train.add_argument("model", choices=["sentiment", "tagging", "hf-sentiment", "priors"])
    train.add_argument("--out", help="where to write the artifact (default: models/artifacts)")
    train.add_argument("--limit", type=int, default=200, help="hf-sentiment: texts to fine-tune on")
    train.add_argument("--compare", action="store_true", help="sentiment: first compare the approaches on validation")
    train.add_argument("--frozen-head", action="store_true", help="sentiment: rebuild the baseline head v2")
    train.add_argument("--brand", help="priors: the brand whose label mix to estimate")
    train.add_argument("--file", help="priors: JSONL texts of the brand (default: its stored signals)")
    train.set_defaults(run=cmd_train)

    evaluate = sub.add_parser("eval", help="measure the models on held-out labelled text; writes models/MODEL_CARD.md")
    evaluate.add_argument("--out", help="where to write the card (default: models/MODEL_CARD.md)")
    evaluate.set_defaults(run=cmd_eval)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra and args.command != "worker":
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    args.faust_args = extra  # `touchpoint worker` passes what it does not know to faust's worker
    try:
        settings = Settings.load(args.config)
    except Exception as exc:  # settings errors must say what to fix
        err.print(f"[red]configuration error:[/] {exc}")
        return 2
    if args.command in MODEL_COMMANDS:  # this process runs the models: it decides torch's threads, once
        from touchpoint.models.encoder import set_inference_threads

        set_inference_threads(settings.torch_threads)
    return int(args.run(settings, args) or 0)


if __name__ == "__main__":
    sys.exit(main())
