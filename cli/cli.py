"""`touchpoint` command line: one entry point for every job (also `python -m touchpoint`)."""

from __future__ import annotations

import argparse
import asyncio
import csv
import getpass
import json
import logging
import signal
import sys
from datetime import datetime
from pathlib import Path
from typing import Any, NoReturn, Sequence

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from touchpoint.core.deadletter import STAGES
from touchpoint.core.settings import Settings
from touchpoint.errors import explain

MODEL_COMMANDS = frozenset({"demo", "up", "worker", "enrich", "train", "eval"})
LONG_RUNNING = frozenset({"up", "worker", "connect", "broker"})
console = Console(stderr=False)
err = Console(stderr=True)


def parse_when(value: str | None) -> datetime | None:
    """An ISO date/time, or a span back from now such as 24h, 7d, 4w."""
    from touchpoint.core.times import parse_time_expression

    return parse_time_expression(value) if value else None  # InvalidTime: one line and exit 2 (touchpoint.errors)


def cmd_demo(settings: Settings, args: argparse.Namespace) -> int:
    from touchpoint.demo import run_demo

    result = run_demo(settings, limit=args.limit)
    return 0 if result.balanced else 1


def cmd_up(settings: Settings, args: argparse.Namespace) -> int:
    from touchpoint.up import run_up

    overrides = {k: v for k, v in (("webhook_port", args.webhook_port), ("web_port", args.web_port)) if v is not None}
    return run_up(settings.with_overrides(**overrides) if overrides else settings, console, args.broker_port)


def cmd_broker(settings: Settings, args: argparse.Namespace) -> int:
    from touchpoint.core.broker import EmbeddedBroker

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})  # taken below, not by handlers
    with EmbeddedBroker(port=args.port, log_file=settings.data_dir / "broker.log") as broker:
        console.print(f"embedded Kafka-protocol broker (Tansu) ready on {broker.bootstrap}; Ctrl-C stops it")
        console.print(f"  export TOUCHPOINT_KAFKA_BOOTSTRAP={broker.bootstrap}")
        console.print(f"  in memory, for trials: its topics are gone when it stops; log: {broker.log_file}")
        while signal.sigtimedwait({signal.SIGINT, signal.SIGTERM}, 1.0) is None:
            died = broker.died()
            if died:
                err.print(f"[red]error:[/] {escape(died)}")
                return 3
    return 0


def cmd_worker(settings: Settings, args: argparse.Namespace) -> int:
    """Faust's own worker command, run on an app built from these settings (no environment hand-off)."""
    from aiokafka.errors import KafkaConnectionError
    from faust.cli.faust import cli

    from touchpoint.core.broker import kafka_ready
    from touchpoint.pipeline.app import create_app

    if not asyncio.run(kafka_ready(settings.kafka_bootstrap, timeout_s=10.0)):  # say so now, not after retries
        raise KafkaConnectionError(f"no Kafka broker answers at {settings.kafka_bootstrap}")
    role = {"worker_role": args.role} if args.role else {}
    web_port = web_port_of(args.faust_args, settings.web_port)
    app = create_app(settings.with_overrides(web_enabled=True, web_port=web_port, **role))
    app.finalize()
    app.worker_init()
    app.worker_init_post_autodiscover()
    cli.main(args=["worker", "-l", settings.log_level, *args.faust_args], prog_name="touchpoint", app=app)
    return 0


def web_port_of(faust_args: Sequence[str], default: int) -> int:
    """The port faust's worker will serve on: -p/--web-port PORT (or --web-port=PORT), else the setting."""
    for i, arg in enumerate(faust_args):
        if arg in ("-p", "--web-port") and i + 1 < len(faust_args) and faust_args[i + 1].isdigit():
            return int(faust_args[i + 1])
        if arg.startswith("--web-port=") and arg.split("=", 1)[1].isdigit():
            return int(arg.split("=", 1)[1])
    return default


def cmd_migrate(settings: Settings, args: argparse.Namespace) -> int:
    from touchpoint.pipeline.store import Store

    if args.cluster:  # a cluster's DDL is printed for clickhouse-client, not applied from here (pipeline/cluster.py)
        from touchpoint.pipeline.cluster import cluster_sql_path, render

        statements = render(cluster_sql_path().read_text(encoding="utf-8"), settings.clickhouse_database, args.cluster)
        print(";\n\n".join(s.sql for s in statements) + ";")
        return 0

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
    from touchpoint.connectors.mapping import MappingError, build_mapping
    from touchpoint.connectors.producer import SignalProducer

    path = Path(args.file)
    fmt = args.format or ("csv" if path.suffix.lower() == ".csv" else "jsonl")
    try:
        mapping = build_mapping(args.map or [], args.mapping)
        if args.dry_run:
            return print_preview(settings, args, path, fmt, mapping)
    except MappingError as exc:  # a mapping mistake: say what to write, no traceback
        err.print(f"[red]mapping error:[/] {exc}")
        return 2

    async def run() -> Any:
        with Progress(console=console) as progress:
            task = progress.add_task(f"importing {path.name}", total=count_records(path, fmt))
            async with SignalProducer(settings) as producer:
                return await import_file(
                    producer, path, channel=args.channel, source=args.source, brand=args.brand, fmt=fmt,
                    on_record=lambda: progress.advance(task), mapping=mapping,
                )  # fmt: skip

    summary = asyncio.run(run())
    console.print(
        f"read {summary.read} / produced {summary.produced} / dead-lettered {summary.dead_lettered}"
        f" / skipped as duplicates {summary.skipped_duplicates}"
        + (f" / not acknowledged {summary.failed}" if summary.failed else "")
    )
    if summary.failed:
        err.print(
            f"[red]error:[/] the broker did not acknowledge {summary.failed} records ({summary.error}); "
            "check TOUCHPOINT_KAFKA_BOOTSTRAP and run the same import again (it is safe to repeat)"
        )
        return 1
    if args.wait:
        from touchpoint.follow import follow

        followed = follow(settings, summary.signal_ids, console, args.wait_timeout)
        console.print(
            f"stored {followed.stored} / dead-lettered {followed.dead_lettered} in the worker"
            f" (+ {summary.dead_lettered} at import)" + (f" / still in flight {followed.in_flight}" if followed.in_flight else "")
        )
        if followed.in_flight:
            err.print(f"[red]error:[/] {followed.in_flight} signals were not stored after {args.wait_timeout:.0f}s; "
                      "is a worker running (`touchpoint up` or `touchpoint worker`)? `touchpoint dlq balance` follows up")
            return 1
    return 0


def print_preview(settings: Settings, args: argparse.Namespace, path: Path, fmt: str, mapping: Any) -> int:
    """`touchpoint import --dry-run`: the first mapped records and what would be dead-lettered; nothing is sent."""
    from touchpoint.connectors.files import preview_file
    from touchpoint.core.identity import Identity

    preview = preview_file(
        path, channel=args.channel, source=args.source, brand=args.brand, identity=Identity.from_settings(settings),
        fmt=fmt, mapping=mapping, show=args.show,
    )  # fmt: skip
    console.print(f"dry run of {path.name}: nothing is sent. The first {len(preview.records)} mapped records:")
    for record in preview.records:
        print(json.dumps(record, default=str, ensure_ascii=False))
    if preview.letters:
        console.print(f"would be dead-lettered (the first {len(preview.letters)}):")
        for number, stage, reason in preview.letters:
            console.print(f"  record {number}: {stage}: {reason}", highlight=False, markup=False)
    if preview.ignored_columns:
        console.print(f"columns not mapped (ignored): {', '.join(preview.ignored_columns)}", markup=False)
    console.print(
        f"read {preview.read} / would produce {preview.produced} / would dead-letter {preview.dead_lettered}"
        f" / duplicates {preview.skipped_duplicates}"
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
    from touchpoint.pipeline.metrics_sql import VIEWS, view_of
    from touchpoint.pipeline.queries import Filters
    from touchpoint.reading import store_reader

    filters = Filters(parse_when(args.since), parse_when(args.until), args.brand, args.channel)
    with store_reader(settings) as read:
        try:
            rows = read("metric_rows", args.metric, [args.by], filters, settings.min_responses, args.compare, args.view)
        except ValueError as exc:  # e.g. --compare without --since: say what to fix
            err.print(f"[red]error:[/] {escape(str(exc))}")
            return 2
    if args.by == "touchpoint":  # which attribution the numbers use (stderr: json and csv stay clean)
        view = view_of(args.metric, args.view)
        err.print(f"{view} view: {VIEWS[view]}", markup=False)
    print_rows(rows, args.format)
    return 0


def cmd_journey(settings: Settings, args: argparse.Namespace) -> int:
    from touchpoint.reading import store_reader

    with store_reader(settings) as read:
        rows = read("journey", args.customer_id, args.limit)
    print_rows(rows, args.format)
    return 0 if rows else 1


def cmd_report(settings: Settings, args: argparse.Namespace) -> int:
    from rich.status import Status

    from touchpoint.pipeline.queries import Filters
    from touchpoint.pipeline.report import save_report
    from touchpoint.reading import store_reader

    filters = Filters(parse_when(args.since), parse_when(args.until), args.brand, args.channel)
    with Status("querying ClickHouse and drawing the report", console=err), store_reader(settings) as read:
        data = read("report_data", filters, settings.min_responses)
    path = save_report(data, Path(args.out) if args.out else settings.data_dir / "report.html")
    console.print(f"report written to {path.resolve()} (self-contained HTML: open it in any browser)")
    return 0


def cmd_watch(settings: Settings, args: argparse.Namespace) -> int:
    """Run the alert detector every alert_interval_s (or once): open, keep and resolve alerts, announce them.
    A broken rules file, an unreachable broker or store end it with cli/errors.py's message; unsent alerts
    go with the next run."""
    from touchpoint.watch import run_watch

    asyncio.run(run_watch(settings, parse_when(args.at), args.once, lambda cycle, sent: print_cycle(cycle, sent, args.format)))
    return 0


def print_cycle(cycle: Any, sent: dict[str, int], fmt: str) -> None:
    """Opened and resolved alerts with their numbers and why (one JSON object per alert with --format json),
    then one line on stderr: what the cycle tested and did."""
    if fmt == "json":
        for alert in [*cycle.opened, *cycle.resolved]:
            print(json.dumps(alert.as_json(), default=str))
    else:
        print_alerts(cycle)
    evaluation = cycle.evaluation
    err.print(
        f"{evaluation.end:%Y-%m-%d %H:%M} UTC: {cycle.tests} tests, {len(evaluation.flagged)} significant "
        f"(false-discovery level {evaluation.q:.1e}); {len(cycle.opened)} opened, {len(cycle.resolved)} resolved; "
        f"{sent['actions']} actions sent to cx.actions, {sent['closed']} cases closed"
    )


def print_alerts(cycle: Any) -> None:
    for alert in cycle.opened:
        why = alert.explanation
        console.print(f"[red bold]ALERT[/] {escape(alert.summary)}")
        if why.get("terms"):
            console.print("  why: " + escape(", ".join(f"{t['term']} (z={t['z']:.1f})" for t in why["terms"][:8])))
        for quote in why.get("verbatims", []):
            console.print(f"  \u201c{quote}\u201d", markup=False)
        for dim in ("channel", "source"):
            parts = [f"{c[dim]} {c['change']:+.1f}" for c in why.get("contributions", {}).get(dim, [])[:3]]
            if parts:
                console.print(f"  by {dim}: " + escape(", ".join(parts)))
    for alert in cycle.resolved:
        console.print(f"[green]resolved[/] {alert.metric} at {alert.dimension} {alert.value} ({alert.brand}), open since {alert.opened_at:%Y-%m-%d %H:%M}")


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
        replayed = sum(letter.replayed for letter in letters)
        err.print(
            f"{len(letters)} dead letters in {settings.topic_dead_letter}, {replayed} replayed "
            f"(showing {len(shown)}): {counts}"
        )
        return 0
    if args.action == "balance":
        return print_balance(settings, args.format)
    summary = asyncio.run(dlq.replay(settings, args.stage, again=args.again, dry_run=args.dry_run))
    verb = "would replay" if args.dry_run else "replayed"
    targets = ", ".join(f"{topic} {n}" for topic, n in summary.by_topic.items()) or "nothing"
    console.print(
        f"read {summary.read} / {verb} {summary.produced} ({targets})"
        f" / not replayable {summary.skipped_not_replayable} (connector stages: re-import from the source)"
        f" / already replayed {summary.skipped_already_replayed} / other stages {summary.skipped_filtered}"
    )
    return 0


def cmd_route(settings: Settings, args: argparse.Namespace) -> int:
    """`touchpoint route test RULES FILE`: which rule each enriched signal hits (no broker, no store)."""
    from touchpoint.pipeline.route_test import SignalFileError, route_file
    from touchpoint.pipeline.rules import load_rules, load_vocabulary

    rules = load_rules(args.rules, load_vocabulary(settings.taxonomy_path))  # RulesError: touchpoint.errors says it
    try:
        source = sys.stdin if args.file == "-" else open(args.file, encoding="utf-8")
        with source:
            rows, summary = route_file(rules, source, assume_open_case=args.assume_open_case)
    except (OSError, SignalFileError) as exc:
        err.print(f"[red]signals file error:[/] {args.file}: {exc}", highlight=False)
        return 2
    shown = [row for row in rows if row.routes or args.all]
    if args.format == "json":
        for row in shown:
            print(json.dumps(row.as_dict(), ensure_ascii=False))
    else:
        table = Table(title=f"routing {args.file} with {args.rules} ({rules.spec.mode}, version {rules.version})")
        for column in ("line", "touchpoint", "sentiment", "score", "rule", "team", "priority", "SLA"):
            table.add_column(column, no_wrap=True)
        table.add_column("text (redacted)", no_wrap=True, overflow="ellipsis", max_width=50)
        for row in shown:
            d = row.as_dict()
            score = "-" if d["sentiment_score"] is None else f"{d['sentiment'][:3]} {d['sentiment_score']:+.2f}"
            for route in d["routes"] or [{"rule": "-", "team": "-", "priority": "-", "sla_hours": None}]:
                sla = "-" if route["sla_hours"] is None else f"{route['sla_hours']:g}h"
                table.add_row(str(d["line"]), d["touchpoint"], score, d["score"] or "-", route["rule"], route["team"],
                              route["priority"], sla, d["text"])  # fmt: skip
        Console(width=None if sys.stdout.isatty() else 170).print(table)  # piped: wide rows, not wrapped
    teams = ", ".join(f"{team} {n}" for team, n in summary.by_team.most_common()) or "none"
    err.print(
        f"routed {summary.routed} of {summary.signals} signals ({summary.actions} actions); by team: {teams}",
        highlight=False,
    )
    if summary.unused_rules:
        err.print(f"rules that matched nothing: {', '.join(summary.unused_rules)}", highlight=False)
    return 0


def _user_name() -> str:
    try:
        return getpass.getuser()
    except (OSError, KeyError):  # no login name in this environment: say so in the history
        return "touchpoint-cli"


def cmd_cases(settings: Settings, args: argparse.Namespace) -> int:
    """`touchpoint cases list|show|ack|close|reopen|stats`: the closed loop, read and moved in ClickHouse."""
    from touchpoint.pipeline.queries import Filters
    from touchpoint.reading import move_case, store_reader

    if args.cases_action in ("ack", "close", "reopen"):
        name = {"ack": "acknowledge", "close": "close", "reopen": "reopen"}[args.cases_action]
        case, changed = move_case(settings, args.case_id, name, args.by or _user_name(),
                                  getattr(args, "owner", None), getattr(args, "note", None))  # fmt: skip
        state = f"{case['status']}" + ("" if changed else " (already)")
        console.print(f"case {case['case_id']}: {state}; owner {case['owner'] or '-'}; team {case['team']}", highlight=False)
        return 0
    with store_reader(settings) as read:  # a wrong id or a store to fix: touchpoint.errors says what to do
        if args.cases_action == "list":
            filters = {"status": args.status, "team": args.team, "priority": args.priority, "touchpoint": args.touchpoint,
                       "brand": args.brand, "customer_id": args.customer}  # fmt: skip
            rows = read("list_cases", filters, args.breached, args.limit)
            shown = rows if args.format != "table" else [
                {"case": r["case_id"], "status": r["status"], "team": r["team"], "priority": r["priority"],
                 "touchpoint": r["touchpoint"], "customer": r["customer_id"] or r["subject"][:12], "signals": r["signals"],
                 "opened": f"{r['opened_at']:%Y-%m-%d %H:%M}", "due": f"{r['due_at']:%Y-%m-%d %H:%M}",
                 "breached": "yes" if r["breached"] else "", "owner": r["owner"]}
                for r in rows
            ]  # fmt: skip
            print_rows(shown, args.format)
            err.print(f"{len(rows)} case(s)", highlight=False)
        elif args.cases_action == "show":
            print(json.dumps(read("case_detail", args.case_id), default=str, indent=2))
        elif args.cases_action == "stats":
            filters = Filters(parse_when(args.since), parse_when(args.until), args.brand)
            summary = read("loop_summary", filters, settings.min_responses)
            if args.format == "json":
                print(json.dumps(summary, default=str, indent=2))
            else:
                console.print("[bold]Open now[/] (by team and priority)")
                print_rows(summary["open_now"], args.format)
                console.print("[bold]Cases opened in the period[/] (close_rate = % closed within SLA)")
                print_rows(summary["by_team_touchpoint"], args.format)
    return 0


def print_balance(settings: Settings, fmt: str) -> int:
    """produced / stored / dead-lettered (open, replayed) per source; 1 while something is in flight."""
    from touchpoint.pipeline.balance import balance
    from touchpoint.reading import store_reader

    with store_reader(settings) as read:
        rows = asyncio.run(balance(settings, lambda ids: set(read("stored_ids", ids))))
    print_rows([row.row() for row in rows], fmt)
    in_flight = sum(row.in_flight for row in rows)
    err.print(
        "balanced: every produced signal is stored or dead-lettered" if not in_flight
        else f"{in_flight} produced signals are neither stored nor dead-lettered yet (in flight, or lost)"
    )
    return 0 if not in_flight else 1


def cmd_enrich(settings: Settings, args: argparse.Namespace) -> int:
    from touchpoint.pipeline.offline import enrich_jsonl

    source = sys.stdin if args.file in (None, "-") else open(args.file, encoding="utf-8")
    with source:
        count = enrich_jsonl(settings, source, sys.stdout, show_progress=sys.stderr.isatty())
    err.print(f"enriched {count} records")
    return 0


def cmd_export(settings: Settings, args: argparse.Namespace) -> int:
    """Export the encoder the enricher loads to ONNX (models/onnx_encoder.py) into the data dir, where the
    onnx-fp32/onnx-int8 backends find it; a worker would otherwise do this at its first start."""
    from dataclasses import replace

    from touchpoint.models.encoder import configure_inference
    from touchpoint.models.enricher import load_encoder
    from touchpoint.pipeline.enrichment import enricher_config

    configure_inference(settings.torch_threads)
    for precision in (["fp32", "int8"] if args.precision == "all" else [args.precision]):
        encoder = load_encoder(replace(enricher_config(settings), encoder_backend=f"onnx-{precision}"))
        console.print(f"{precision}: {encoder.file}")
    return 0


def cmd_data(settings: Settings, args: argparse.Namespace) -> int:
    from touchpoint.models.datasets import fetch

    target = fetch(settings.data_dir / "data")
    console.print(f"labelled data ready in {target}")
    return 0


def train_tagging(settings: Settings, args: argparse.Namespace) -> int:
    """Recalibrate emotion and touchpoint thresholds on the loaded encoder; with --labels, a brand's taxonomy."""
    from rich.status import Status

    from touchpoint.models.enricher import Enricher
    from touchpoint.models.tagging_eval import add_brand_calibration, write_calibration
    from touchpoint.pipeline.enrichment import enricher_config

    out = Path(args.out) if args.out else None
    try:
        enricher = Enricher(enricher_config(settings))
        if args.labels:
            spec = args.taxonomy or settings.taxonomy_path
            with Status(f"calibrating {spec or 'the generic taxonomy'} on {args.labels}", console=err):
                path, entry = add_brand_calibration(enricher, spec, Path(args.labels), out)
            console.print(f"wrote {path}: floor {entry['min_similarity']:.2f}, margin {entry['margin']:.2f} "
                          f"({entry['calibrated_on']})")  # fmt: skip
            return 0
        with Status("calibrating emotion and touchpoint thresholds on the dev part", console=err):
            path = write_calibration(enricher, out, settings.data_dir / "data", settings.data_dir / "cache")
    except ValueError as exc:  # a labels file that does not fit the taxonomy, or a broken pack: names the fix
        err.print(f"[red]error:[/] {exc}")
        return 2
    console.print(f"wrote {path}")
    return 0


def cmd_train(settings: Settings, args: argparse.Namespace) -> int:
    from rich.status import Status

    if args.model == "tagging":
        return train_tagging(settings, args)
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
    bias = result.saved.decision_bias or (0.0, 0.0, 0.0)
    console.print(f"  decision bias for macro-F1 on these texts: neutral {bias[1]:+.2f}, positive {bias[2]:+.2f} (nats)")
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


class Parser(argparse.ArgumentParser):
    """argparse with a one-line error (the usage is one --help away) and exit code 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="touchpoint", description=__doc__)
    parser.add_argument("--config", help="YAML settings file (else TOUCHPOINT_CONFIG)")
    parser.add_argument("--debug", action="store_true", help="show the full traceback of any error")
    sub = parser.add_subparsers(dest="command", required=True)

    demo = sub.add_parser("demo", help="embedded stack over bundled real sample data; prints the CX report")
    demo.add_argument("--limit", type=int, help="use only the first N sample records")
    demo.set_defaults(run=cmd_demo)

    up = sub.add_parser("up", help="embedded stack, long-running: broker, worker (+ /metrics), webhook receiver")
    up.add_argument("--webhook-port", type=int, help="webhook receiver port (default: settings.webhook_port, 8088)")
    up.add_argument("--web-port", type=int, help="worker web server port (default: settings.web_port, 6066)")
    up.add_argument("--broker-port", type=int, help="embedded Kafka broker port (default: a free port)")
    up.set_defaults(run=cmd_up)

    broker = sub.add_parser("broker", help="run only the embedded Kafka-protocol broker")
    broker.add_argument("--port", type=int, default=9092)
    broker.set_defaults(run=cmd_broker)

    worker = sub.add_parser("worker", help="a production worker (the Faust worker of touchpoint.pipeline.app)")
    worker.epilog = "Any other option goes to faust's worker command, e.g. -p/--web-port PORT, --without-web."
    worker.add_argument("--role", choices=["all", "enrich", "sink"],
                        help="enrich: models only, scale with the partitions of signals.raw; sink: store, API, routing, "
                             "alerts; all: both (default: settings.worker_role)")  # fmt: skip
    worker.set_defaults(run=cmd_worker)

    export = sub.add_parser("export", help="export the encoder to ONNX (for TOUCHPOINT_ENCODER_BACKEND=onnx-fp32|onnx-int8)")
    export.add_argument("format", choices=["onnx"])
    export.add_argument("--precision", choices=["fp32", "int8", "all"], default="all",
                        help="int8: dynamic per-channel quantisation of the fp32 export (default: both)")  # fmt: skip
    export.set_defaults(run=cmd_export)

    migrate = sub.add_parser("migrate", help="apply ClickHouse DDL (idempotent, versioned)")
    migrate.add_argument("--cluster", metavar="NAME", help="print the DDL for a replicated, sharded cluster instead "
                         "(ReplicatedReplacingMergeTree + Distributed): pipe it into `clickhouse-client --multiquery`")
    migrate.set_defaults(run=cmd_migrate)

    imp = sub.add_parser("import", help="backfill a CSV/JSONL file into signals.raw")
    imp.add_argument("file")
    imp.add_argument("--channel", required=True, choices=["survey", "chat", "email", "call", "social", "review"])
    imp.add_argument("--source", required=True)
    imp.add_argument("--brand", default="default")
    imp.add_argument("--format", choices=["csv", "jsonl", "zendesk"], help="zendesk: a Zendesk ticket export with comments")
    imp.add_argument("--map", action="append", metavar="KEY=COLUMN",
                     help="which column is what: id, occurred_at, nps|csat|ces|rating=COLUMN[:LOW-HIGH], comment, "
                          "email, phone, account, touchpoint, brand, attribute (repeatable)")  # fmt: skip
    imp.add_argument("--mapping", metavar="FILE.yaml", help="the same mapping as a YAML file (see connectors/mapping.py)")
    imp.add_argument("--dry-run", action="store_true", help="map the file and show the first records and dead letters; send nothing")
    imp.add_argument("--wait", action="store_true", help="follow the records until each is stored or dead-lettered")
    imp.add_argument("--wait-timeout", type=float, default=600.0, metavar="SECONDS", help="--wait: give up after this long")
    imp.add_argument("--show", type=int, default=5, help="--dry-run: how many records and dead letters to show")
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
    query.add_argument(
        "--view", choices=["primary", "mentions"],
        help="with --by touchpoint: count each signal once under its primary touchpoint, or under every touchpoint "
        "it mentions (default: primary for nps/csat/ces, mentions for sentiment/emotions/volume)",
    )  # fmt: skip
    query.set_defaults(run=cmd_query)

    report = sub.add_parser("report", help="the CX dashboard as one self-contained HTML file")
    report.add_argument("--out", help="where to write it (default: DATA_DIR/report.html)")
    report.add_argument("--since", help="date, time or span like 30d (default: all data)")
    report.add_argument("--until")
    report.add_argument("--brand")
    report.add_argument("--channel")
    report.set_defaults(run=cmd_report)

    watch = sub.add_parser("watch", help="alerts: drops and spikes per brand, channel and touchpoint, explained")
    watch.add_argument("--once", action="store_true", help="one evaluation, then exit")
    watch.add_argument("--at", help="evaluate as of this time (a date, time or span like 2h), once")
    watch.add_argument("--format", choices=["table", "json"], default="table")
    watch.set_defaults(run=cmd_watch)

    journey = sub.add_parser("journey", help="every signal of one customer across channels, in time order")
    journey.add_argument("customer_id")
    journey.add_argument("--limit", type=int, default=1000)
    journey.add_argument("--format", choices=["table", "json", "csv"], default="table")
    journey.set_defaults(run=cmd_journey)

    dlq = sub.add_parser("dlq", help="inspect, re-drive and account for dead letters")
    dlq.add_argument(
        "action", choices=["list", "replay", "balance"],
        help="balance: produced / stored / dead-lettered (open, replayed) per source",
    )  # fmt: skip
    dlq.add_argument("--stage", choices=STAGES)
    dlq.add_argument("--limit", type=int, default=50, help="list: show the newest N")
    dlq.add_argument("--format", choices=["table", "json", "csv"], default="table")
    dlq.add_argument("--again", action="store_true", help="replay: also letters replayed before")
    dlq.add_argument("--dry-run", action="store_true", help="replay: only say what would be replayed")
    dlq.set_defaults(run=cmd_dlq)

    route = sub.add_parser("route", help="routing rules: which team gets which signal")
    route_sub = route.add_subparsers(dest="route_action", required=True)
    route_test = route_sub.add_parser("test", help="which rule each enriched signal hits (no broker, no store)")
    route_test.add_argument("rules", metavar="RULES.yaml", help="a routing rules file (example: touchpoint/samples/routing_rules.yaml)")
    route_test.add_argument("file", metavar="FILE.jsonl", help="enriched signals, e.g. `touchpoint enrich` output; - for stdin")
    route_test.add_argument("--format", choices=["table", "json"], default="table")
    route_test.add_argument("--all", action="store_true", help="also list the signals no rule routes")
    route_test.add_argument("--assume-open-case", action="store_true", help="evaluate open_case conditions as if the customer had a case open")
    route_test.set_defaults(run=cmd_route)

    cases = sub.add_parser("cases", help="the closed loop: cases per team, SLA, close rate")
    cases_sub = cases.add_subparsers(dest="cases_action", required=True)
    cases_list = cases_sub.add_parser("list", help="cases, newest first")
    for name in ("status", "team", "priority", "touchpoint", "brand", "customer"):
        cases_list.add_argument(f"--{name}")
    cases_list.add_argument("--breached", action=argparse.BooleanOptionalAction, default=None, help="only cases past (or within) their SLA")
    cases_list.add_argument("--limit", type=int, default=100)
    cases_list.add_argument("--format", choices=["table", "json", "csv"], default="table")
    cases_list.set_defaults(run=cmd_cases)
    cases_show = cases_sub.add_parser("show", help="one case with its history, signals and deliveries (JSON)")
    cases_show.add_argument("case_id")
    cases_show.set_defaults(run=cmd_cases)
    for action, text in (("ack", "acknowledge: someone owns it"), ("close", "close with a resolution note"), ("reopen", "reopen a closed case")):
        move = cases_sub.add_parser(action, help=text)
        move.add_argument("case_id")
        move.add_argument("--by", help="who does it (default: your user name)")
        if action == "ack":
            move.add_argument("--owner", help="who owns the case (default: --by)")
        if action == "close":
            move.add_argument("--note", required=True, help="the resolution: what was done for the customer")
            move.add_argument("--owner", help="who resolved it (default: the case's owner)")
        move.set_defaults(run=cmd_cases)
    cases_stats = cases_sub.add_parser("stats", help="open cases, SLA breaches, time to acknowledge/close, close-the-loop rate")
    cases_stats.add_argument("--since", help="cases opened since (date, time or span like 30d)")
    cases_stats.add_argument("--until")
    cases_stats.add_argument("--brand")
    cases_stats.add_argument("--format", choices=["table", "json", "csv"], default="table")
    cases_stats.set_defaults(run=cmd_cases)

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
    train.add_argument("--compare", action="store_true", help="sentiment: also fit the other approaches and record their validation scores")
    train.add_argument("--frozen-head", action="store_true", help="sentiment: rebuild the baseline head v2")
    train.add_argument("--brand", help="priors: the brand whose label mix to estimate")
    train.add_argument("--file", help="priors: JSONL texts of the brand (default: its stored signals)")
    train.add_argument("--labels", help="tagging: a brand's labelled JSONL (text, touchpoints) to calibrate its taxonomy")
    train.add_argument("--taxonomy", help="tagging --labels: the pack name or YAML file they use (default: settings)")
    train.set_defaults(run=cmd_train)

    evaluate = sub.add_parser("eval", help="measure the models on held-out labelled text; writes models/MODEL_CARD.md")
    evaluate.add_argument("--out", help="where to write the card (default: models/MODEL_CARD.md)")
    evaluate.set_defaults(run=cmd_eval)
    return parser


def configure_logging(settings: Settings, command: str, debug: bool) -> None:
    """One format for every command; a one-shot command leaves client-library errors to its own message."""
    if command == "worker":
        return  # faust's worker command configures logging itself (-l LEVEL)
    level = logging.DEBUG if debug else getattr(logging, settings.log_level.upper(), logging.WARNING)
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if command not in LONG_RUNNING and not debug:  # their failures end in one clear line (touchpoint.errors)
        for library in ("aiokafka", "urllib3"):
            logging.getLogger(library).setLevel(logging.CRITICAL)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra and args.command != "worker":
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    args.faust_args = extra  # `touchpoint worker` passes what it does not know to faust's worker
    settings: Settings | None = None
    try:
        settings = Settings.load(args.config)
        configure_logging(settings, args.command, args.debug)
        if args.command in MODEL_COMMANDS:  # this process runs the models: it decides torch's threads, once
            from touchpoint.models.encoder import configure_inference

            configure_inference(settings.torch_threads)
        return int(args.run(settings, args) or 0)
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        problem = None if args.debug else explain(exc, settings)
        if problem is None:  # a bug, or --debug: the traceback is the useful part
            raise
        err.print(f"[red]error:[/] {escape(problem.message)}")
        return problem.exit_code


if __name__ == "__main__":
    sys.exit(main())
