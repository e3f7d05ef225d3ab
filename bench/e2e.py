"""End-to-end throughput and latency, every figure a ratio to the bare encoder measured in the same run.

    .venv/bin/python bench/e2e.py [--n 2000] [--rounds 2] [--score-only 20000] [--latency-s 60]

One process, one run, interleaved rounds (a shared 2-core machine is noisy;
only ratios of the same run compare):

* bare encoder, torch and ONNX Runtime fp32 and int8 (exported from the same
  weights by models/onnx_encoder.py): tokenize + forward + pooling over the
  worker's enrich batches, nothing else;
* the offline enricher (`touchpoint enrich`'s code path: redaction, language,
  every head), torch and int8 (int8 with its exact re-check of close sentiment
  decisions); how often int8's labels and tags equal torch's on these texts;
* end to end with the int8 encoder;
* end to end: raw signals already in the embedded broker -> the real worker
  (enrich agent -> signals.enriched -> sink agent) -> chdb; rate between 10%
  and 90% stored, so start-up and the last partial batch do not count. The
  worker runs its models in a process of its own, as it does by default
  (pipeline/inference.py); "models on the worker's thread" is the same run with
  them on a thread of the worker's process instead (the earlier design);
* the same while a dashboard polls the metric API every second (a separate
  process: three metric queries per poll);
* a naive Faust agent: one event at a time, one insert per row;
* score-only signals (no text), end to end; the same with Faust's own consumer
  (a dispatch of four tasks per message, where pipeline/fetch.py makes four per
  fetched batch); and with the enrich agent taking one model batch
  (``enrich_batch_size``) at a time, as it did before takes and model batches
  were separate settings;
* latency: at half the end-to-end rate measured above, steady, p50/p95/p99 of
  ``ingested_at`` -> the row is queryable (the insert returned);
* how the thread that runs the models spends torch's end-to-end runs, in the
  model process and on the worker's thread: the share of the time it is inside
  the models, and the share of that time it is on a CPU (eager torch takes the
  GIL back between operators; in the worker's process the event loop may hold it).

Texts: the first N tweets of VADER's ground truth (`touchpoint data fetch`),
else the 400 bundled demo texts, repeated.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, AsyncIterator, Callable, Iterator, Sequence

import faust

from touchpoint.connectors.producer import SignalProducer
from touchpoint.core.broker import EmbeddedBroker, free_port
from touchpoint.core.kafka import faust_broker_url
from touchpoint.core.sealing import Sealer
from touchpoint.core.settings import Settings
from touchpoint.models.encoder import configure_inference, inference_threads
from touchpoint.models.enricher import Enricher
from touchpoint.pipeline import app as pipeline_app
from touchpoint.pipeline.app import deliver, incoming
from touchpoint.pipeline.enrichment import EnrichStage, enricher_config, models_for
from touchpoint.pipeline.inference import ModelRun, Models
from touchpoint.pipeline.runtime import running_worker
from touchpoint.pipeline.sink import signal_row
from touchpoint.pipeline.store import AsyncStore
from touchpoint.samples import sample_path
from touchpoint.schemas.codec import AvroCodec
from touchpoint.schemas.signal import RawSignal, Score

WHEN = datetime(2026, 11, 2, 9, 30, tzinfo=timezone.utc)
MODEL_PROCESS, WORKER_THREAD = "in the model process", "on the worker's thread"
POLLER = """
import sys, time, urllib.request
base = sys.argv[1]
paths = ["/api/v1/metrics/nps?by=touchpoint", "/api/v1/metrics/sentiment?by=channel", "/api/v1/metrics/volume?by=day"]
while True:
    started = time.monotonic()
    for path in paths:
        try:
            urllib.request.urlopen(base + path, timeout=10).read()
        except Exception:
            pass
    time.sleep(max(0.0, 1.0 - (time.monotonic() - started)))
"""


def load_texts(n: int, data_dir: Path) -> tuple[list[str], str]:
    from touchpoint.models import datasets

    try:
        rows = datasets.load("vader_tweets", data_dir / "data")
        if len(rows) >= n:
            return [r.text for r in rows[:n]], "VADER tweets"
    except Exception:  # not fetched: fall back to the bundled sample
        pass
    lines = sample_path("demo_signals.jsonl").read_text().splitlines()
    texts = [json.loads(line)["text"] for line in lines]
    return [texts[i % len(texts)] for i in range(n)], f"{len(texts)} bundled demo texts, repeated"


def chunks(items: Sequence[Any], size: int) -> list[Sequence[Any]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


def rate(n: int, fn: Callable[[], Any]) -> float:
    started = time.perf_counter()
    fn()
    return n / (time.perf_counter() - started)


def bare_encoder_rate(encoder: Any, texts: list[str], batch: int, micro: int) -> float:
    """Tokenize + forward + pooling, over the worker's batches (``batch`` texts, micro-batches of ``micro``)."""
    return rate(len(texts), lambda: [encoder.encode_rich(list(c), batch_size=micro) for c in chunks(texts, batch)])


def offline_rate(enricher: Enricher, texts: list[str], batch: int, keep: list[Any] | None = None) -> float:
    """Texts/s through the enricher; ``keep`` receives the enrichments."""
    out: list[Any] = []
    speed = rate(len(texts), lambda: [out.extend(enricher.enrich(list(c))) for c in chunks(texts, batch)])
    if keep is not None:
        keep[:] = out
    return speed


def signals_of(prefix: str, texts: Sequence[str | None], nps_every: int = 0) -> list[RawSignal]:
    out = []
    for i, text in enumerate(texts):
        score = Score("nps", i % 11, 0, 10) if text is None or (nps_every and i % nps_every == 0) else None
        out.append(RawSignal(source="bench", source_id=f"{prefix}-{i}", channel="survey", brand="bench",
                             occurred_at=WHEN, text=text, score=score, customer_id=f"c{i % 997}"))  # fmt: skip
    return out


async def produce(settings: Settings, signals: Sequence[RawSignal]) -> None:
    async with SignalProducer(settings) as producer:
        futures = [await producer.send(s) for s in signals]
        await asyncio.gather(*futures)


def run_settings(base: Settings, tag: str) -> Settings:
    """Fresh topics, consumer group and database for one measurement."""
    run = f"{tag}{uuid.uuid4().hex[:6]}"
    return base.with_overrides(
        app_id=f"bench-{run}", topic_raw=f"{run}.raw", topic_enriched=f"{run}.enriched",
        topic_dead_letter=f"{run}.dead", topic_dead_letter_replays=f"{run}.dead.replays",
        clickhouse_database=f"bench_{run}",
    )  # fmt: skip


@dataclass(frozen=True)
class Window:
    """One end-to-end measurement between 10% and 90% stored: the rate, and the CPU each stored signal
    cost the event loop's thread and the whole process (CPU per signal is steadier than a rate on a busy machine)."""

    rate: float
    loop_cpu_us: float
    process_cpu_us: float


async def wait_stored(count: Callable[[], int], total: int, timeout_s: float) -> Window:
    """Rows/s between 10% and 90% of ``total`` stored (this coroutine runs on the event loop's thread)."""
    low, high = int(total * 0.1), int(total * 0.9)
    t_low = cpu_low = None
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        done = count()
        if t_low is None and done >= low:
            t_low, cpu_low = time.perf_counter(), (time.thread_time(), time.process_time())
        if done >= high and t_low is not None and cpu_low is not None:
            n = high - low
            return Window(n / max(1e-6, time.perf_counter() - t_low), (time.thread_time() - cpu_low[0]) / n * 1e6,
                          (time.process_time() - cpu_low[1]) / n * 1e6)  # fmt: skip
        await asyncio.sleep(0.01)
    raise TimeoutError(f"only {count()} of {total} stored within {timeout_s:.0f}s")


@contextlib.contextmanager
def poller(port: int):  # type: ignore[no-untyped-def]
    process = subprocess.Popen([sys.executable, "-c", POLLER, f"http://127.0.0.1:{port}"])
    try:
        yield process
    finally:
        process.terminate()
        process.wait()


def watch_inserts(app: faust.App, on_rows: Callable[[Sequence[Sequence[Any]]], None]) -> None:
    """Call ``on_rows`` with every batch of rows the sink inserted, right after the insert returned."""
    store = app.touchpoint["store"]
    insert = store.insert_signals

    async def watched(rows: Sequence[Sequence[Any]]) -> None:
        await insert(rows)
        on_rows(rows)

    store.insert_signals = watched


async def end_to_end(base: Settings, enricher: Enricher | None, texts: Sequence[str | None], tag: str, polled: bool = False,
                     share: ModelShare | None = None, **overrides: Any) -> Window:
    """Distinct signals stored per second (a redelivered signal counts once); ``share`` times the model calls.
    ``enricher``: the models on the worker's thread; None: the worker's default (a model process of its own,
    loaded from the settings before the worker takes its first batch)."""
    settings = run_settings(base, tag).with_overrides(web_enabled=polled, web_port=free_port(), **overrides)
    await produce(settings, signals_of(tag, texts))
    stored: set[str] = set()
    print(f"  ({len(texts)} signals in {settings.topic_raw}; worker starting)", flush=True)
    async with running_worker(settings, enricher) as app:
        watch_inserts(app, lambda rows: stored.update(row[0] for row in rows))
        with poller(settings.web_port) if polled else contextlib.nullcontext(), \
                share.watching(await app.touchpoint["enrich"].load()) if share else contextlib.nullcontext():  # fmt: skip
            return await wait_stored(lambda: len(stored), len(texts), 1800)


@contextlib.contextmanager
def faust_own_drain() -> Iterator[None]:
    """The baseline for pipeline/fetch.py: workers built meanwhile keep Faust's consumer, whose
    drain makes four tasks per message (the batch drain makes four per fetched batch)."""
    use_batch_drain = pipeline_app.use_batch_drain
    pipeline_app.use_batch_drain = lambda app: None
    try:
        yield
    finally:
        pipeline_app.use_batch_drain = use_batch_drain


@contextlib.asynccontextmanager
async def running_app(app: faust.App, settings: Settings) -> AsyncIterator[faust.App]:
    worker = faust.Worker(app, loop=asyncio.get_running_loop(), daemon=False, loglevel=settings.log_level,
                          quiet=True, override_logging=False, redirect_stdouts=False)  # fmt: skip
    await worker.start()
    try:
        yield app
    finally:
        await worker.stop()


async def naive_agent(base: Settings, enricher: Enricher, texts: Sequence[str], tag: str) -> Window:
    """The textbook agent: one event at a time: enrich, send and wait, insert one row, next."""
    settings = run_settings(base, tag)
    await produce(settings, signals_of(tag, texts))
    app = faust.App(settings.app_id, broker=faust_broker_url(settings), key_serializer="raw", value_serializer="raw",
                    producer_acks=-1, web_enabled=False, store="memory://", autodiscover=False,
                    datadir=str(settings.data_dir / "faust"), broker_rebalance_timeout=settings.kafka_rebalance_timeout_s,
                    broker_session_timeout=settings.kafka_session_timeout_s)  # fmt: skip
    raw = app.topic(settings.topic_raw, key_type=bytes, value_type=bytes)
    enriched = app.topic(settings.topic_enriched, key_type=bytes, value_type=bytes)
    stage = EnrichStage(models_for(settings, enricher), Sealer.from_settings(settings))
    codec = AvroCodec.for_subject("enriched_signal")
    store = AsyncStore.from_settings(settings)
    await store.migrate()
    stored = [0]

    @app.agent(raw, name="naive")
    async def naive(stream: faust.StreamT) -> None:
        async for event in stream.events():
            result = await stage.process(incoming([event]))
            await deliver(enriched, result.outputs)
            for _, value in result.outputs:
                await store.insert_signals([signal_row(codec.decode(value))])
            stored[0] += 1

    try:
        async with running_app(app, settings):
            return await wait_stored(lambda: stored[0], len(texts), 1800)
    finally:
        await store.close()


async def latency(base: Settings, texts: Sequence[str], per_s: float, seconds: float) -> dict[str, float]:
    """Produce ``per_s`` signals/s for ``seconds`` to the default worker (its model process, the settings'
    backend); seconds from ingested_at to the insert returning, per row (a chdb insert is visible to queries
    when it returns). The first 10 s are warm-up."""
    settings = run_settings(base, "lat")
    seen: list[float] = []
    warm_until = [float("inf")]
    first: set[str] = set()

    def timed(rows: Sequence[Sequence[Any]]) -> None:
        now = datetime.now(timezone.utc)
        for row in rows:
            if row[9].timestamp() >= warm_until[0] and row[0] not in first:
                first.add(row[0])
                seen.append((now - row[9]).total_seconds())

    async with running_worker(settings) as app:
        watch_inserts(app, timed)
        async with SignalProducer(settings) as producer:
            started = time.monotonic()
            warm_until[0] = time.time() + 10
            sent, counted, futures = 0, 0, []
            while time.monotonic() - started < seconds + 10:
                due = int((time.monotonic() - started) * per_s)
                while sent < due:
                    text = texts[sent % len(texts)]
                    signal = signals_of("lat", [text])[0]
                    signal = RawSignal(**{**signal.__dict__, "source_id": f"lat-{sent}"})
                    futures.append(await producer.send(signal))
                    sent += 1
                    counted += signal.ingested_at.timestamp() >= warm_until[0]
                await asyncio.sleep(0.02)
            await asyncio.gather(*futures)
        deadline = time.monotonic() + 120
        while len(seen) < counted and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
    seen.sort()

    def pct(p: float) -> float:
        return seen[min(len(seen) - 1, int(p * len(seen)))] if seen else float("nan")

    return {"per_s": per_s, "n": len(seen), "p50": pct(0.5), "p95": pct(0.95), "p99": pct(0.99), "max": seen[-1] if seen else float("nan")}


@dataclass
class ModelShare:
    """Every model call of each end-to-end run: when it started and ended, and the CPU its thread used
    (timed where the models ran: the worker's thread or its model process, pipeline/inference.py)."""

    runs: list[list[tuple[float, float, float]]] = field(default_factory=list)

    @contextlib.contextmanager
    def watching(self, models: Models) -> Iterator[None]:
        calls: list[tuple[float, float, float]] = []
        self.runs.append(calls)
        run = models.run

        def timed(*args: Any) -> ModelRun:
            done = run(*args)
            calls.append((done.started, done.started + done.seconds, done.cpu_seconds))
            return done

        models.run = timed  # type: ignore[method-assign]
        try:
            yield
        finally:
            del models.run  # the class's method again

    def shares(self) -> list[tuple[float, float]]:
        """Per run: (inside the models / the window, on a CPU / inside the models), middle 60% of the calls."""
        found = []
        for run in self.runs:
            calls = sorted(run)
            middle = calls[len(calls) // 5 : len(calls) - len(calls) // 5]
            if len(middle) >= 2:
                inside = sum(end - start for start, end, _ in middle)
                found.append((inside / (middle[-1][1] - middle[0][0]), sum(cpu for *_, cpu in middle) / inside))
        return found


@dataclass
class Figures:
    rates: dict[str, list[float]] = field(default_factory=dict)
    cpu: dict[str, list[tuple[float, float]]] = field(default_factory=dict)  # end-to-end paths: (loop, process) µs/signal
    model_share: dict[str, ModelShare] = field(default_factory=dict)  # torch end to end: where the models ran

    def share(self, name: str) -> ModelShare:
        return self.model_share.setdefault(name, ModelShare())

    def add(self, name: str, value: float | Window) -> None:
        rate, cpu = value, ""
        if isinstance(value, Window):
            self.cpu.setdefault(name, []).append((value.loop_cpu_us, value.process_cpu_us))
            rate, cpu = value.rate, f"; CPU per signal: event loop {value.loop_cpu_us:,.0f} µs, process {value.process_cpu_us:,.0f} µs"
        self.rates.setdefault(name, []).append(rate)
        print(f"  {name}: {rate:,.1f}/s{cpu}", flush=True)

    def median(self, name: str) -> float:
        return statistics.median(self.rates[name])


async def measure(args: argparse.Namespace, base: Settings, texts: list[str], source: str) -> None:
    figures = Figures()
    enricher = Enricher(enricher_config(base))
    torch_encoder = enricher.encoder
    enricher.enrich(texts[:64])  # warm-up
    batch, micro = base.enrich_batch_size, base.encoder_batch_size
    wanted = set(args.only.split(",")) if args.only else None

    def on(section: str) -> bool:
        return wanted is None or section in wanted

    onnx: dict[str, Any] = {}
    int8_enricher = None
    if on("onnx"):
        from touchpoint.models.onnx_encoder import OnnxEncoder

        print("exporting the encoder to ONNX (fp32, int8) unless this toolchain already did...", flush=True)
        for precision in ("fp32", "int8"):
            onnx[precision] = OnnxEncoder.from_torch(torch_encoder, base.data_dir / "models", precision,
                                                     inference_threads(base.torch_threads))  # fmt: skip
            onnx[precision].encode_rich(texts[:64], batch_size=micro)  # warm-up
        int8_enricher = Enricher(enricher_config(base.with_overrides(encoder_backend="onnx-int8")))
        int8_enricher.enrich(texts[:64])
    quality: dict[str, list[Any]] = {"torch": [], "int8": []}

    for round_no in range(args.rounds):
        print(f"round {round_no + 1}/{args.rounds}", flush=True)
        if on("bare"):
            figures.add("bare encoder, torch", bare_encoder_rate(torch_encoder, texts, batch, micro))
        for precision, encoder in onnx.items():
            figures.add(f"bare encoder, ONNX {precision}", bare_encoder_rate(encoder, texts, batch, micro))
        if on("offline"):
            figures.add("offline enricher", offline_rate(enricher, texts, batch, quality["torch"]))
            if int8_enricher is not None:
                figures.add("offline enricher, ONNX int8", offline_rate(int8_enricher, texts, batch, quality["int8"]))
        order = [False, True] if round_no % 2 == 0 else [True, False]
        for polled in order:
            if on("polled" if polled else "e2e"):
                name = "end to end, API polled every 1 s" if polled else "end to end"
                share = None if polled else figures.share(MODEL_PROCESS)
                figures.add(name, await end_to_end(base, None, texts, f"e{round_no}{int(polled)}", polled, share))
        if on("e2e"):  # the models on a thread of the worker's own process, as before pipeline/inference.py
            figures.add("end to end, models on the worker's thread", await end_to_end(
                base, enricher, texts, f"w{round_no}", share=figures.share(WORKER_THREAD)))
        if on("e2e") and int8_enricher is not None:
            figures.add("end to end, ONNX int8", await end_to_end(base, None, texts, f"i{round_no}",
                                                                  encoder_backend="onnx-int8"))  # fmt: skip
    if on("naive"):
        naive_n = min(len(texts), args.naive)
        figures.add("naive per-event agent", await naive_agent(base, enricher, texts[:naive_n], "naive"))
    if on("score"):
        for round_no in range(args.rounds):  # interleaved: today's worker, Faust's own drain, takes of one model batch
            figures.add("score-only, end to end", await end_to_end(base, None, [None] * args.score_only, f"s{round_no}"))
            with faust_own_drain():
                figures.add("score-only, Faust's per-message drain", await end_to_end(
                    base, None, [None] * args.score_only, f"f{round_no}"))
            figures.add("score-only, takes of one model batch", await end_to_end(
                base, None, [None] * args.score_only, f"t{round_no}", enrich_take_size=base.enrich_batch_size))
    lat = None
    if on("latency") and "end to end" in figures.rates:
        # the default path (int8 when it was measured), at half of its own end-to-end rate
        path = "end to end, ONNX int8" if int8_enricher is not None and "end to end, ONNX int8" in figures.rates else "end to end"
        half = figures.median(path) / 2
        print(f"latency on the {path!r} path at {half:.0f} signals/s for {args.latency_s:.0f} s...", flush=True)
        backend = "torch" if path == "end to end" else "onnx-int8"
        lat = await latency(base.with_overrides(encoder_backend=backend), texts, half, args.latency_s)
        lat["path"] = path  # type: ignore[assignment]
    report(figures, lat, args, source, len(texts))
    if quality["torch"] and quality["int8"]:
        pairs = list(zip(quality["torch"], quality["int8"]))
        same_label = sum(a.sentiment_label == b.sentiment_label for a, b in pairs) / len(pairs)
        same_tags = sum(a.touchpoints == b.touchpoints for a, b in pairs) / len(pairs)
        rechecked = int8_enricher.rechecked if int8_enricher is not None else 0
        print(f"int8 vs torch on these texts (last round): sentiment label equal {same_label:.3f}, touchpoint tags "
              f"equal {same_tags:.3f}; texts re-encoded exactly (close decisions, whole run): {rechecked}")  # fmt: skip


def report(figures: Figures, lat: dict[str, float] | None, args: argparse.Namespace, source: str, n: int) -> None:
    load = os.getloadavg()
    print()
    print(f"texts: {n} ({source}); rounds: {args.rounds}; load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}; "
          f"cpus {os.cpu_count()}")  # fmt: skip
    base = figures.median("bare encoder, torch") if "bare encoder, torch" in figures.rates else None
    print(f"{'path':44s} {'signals/s (median)':>18s} {'runs':>24s} {'ratio':>7s}")
    for name, values in figures.rates.items():
        runs = " ".join(f"{v:,.0f}" for v in values)
        ratio = f"{figures.median(name) / base:7.2f}" if base else "      -"
        print(f"{name:44s} {figures.median(name):18,.1f} {runs:>24s} {ratio}")
    if figures.cpu:
        print("CPU per stored signal (median of runs; µs): event loop's thread / whole process (models, store, threads)")
        for name, runs in figures.cpu.items():
            loop, process = statistics.median(r[0] for r in runs), statistics.median(r[1] for r in runs)
            print(f"  {name:42s} {loop:10,.0f} {process:10,.0f}")
    if {"end to end", "end to end, API polled every 1 s"} <= set(figures.rates):
        polled, unpolled = figures.median("end to end, API polled every 1 s"), figures.median("end to end")
        print(f"API polled / unpolled end to end: {polled / unpolled:.2f}")
    for where, share in figures.model_share.items():
        shares = share.shares()
        if shares:
            inside, on_cpu = (" ".join(f"{run[i]:.1%}" for run in shares) for i in (0, 1))
            print(f"torch end to end, models {where} (per run): inside the models {inside} of the time; on a CPU "
                  f"{on_cpu} of that (off it, the thread waits: for the GIL, or for the CPU)")  # fmt: skip
    if lat:
        print(f"latency ingested_at -> queryable ({lat['path']}) at {lat['per_s']:.0f}/s for {args.latency_s:.0f} s (n={lat['n']}): "
              f"p50 {lat['p50']:.2f} s, p95 {lat['p95']:.2f} s, p99 {lat['p99']:.2f} s, max {lat['max']:.2f} s")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=2000, help="texts per measurement")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--naive", type=int, default=500, help="texts for the naive agent (it is slow)")
    parser.add_argument("--score-only", type=int, default=20000)
    parser.add_argument("--latency-s", type=float, default=60.0)
    parser.add_argument("--only", help="comma-separated sections: bare,onnx,offline,e2e,polled,naive,score,latency")
    args = parser.parse_args()
    settings = Settings.load()
    configure_inference(settings.torch_threads)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        with EmbeddedBroker(log_file=root / "broker.log") as broker:
            base = settings.with_overrides(
                kafka_bootstrap=broker.bootstrap, clickhouse_url=f"chdb://{root / 'chdb'}", data_dir=root,
                customer_id_secret="bench-secret-0123456789abcdef", kafka_rebalance_timeout_s=3.0,
                kafka_session_timeout_s=10.0, encoder_backend="torch",  # each section names its backend
            )  # fmt: skip
            texts, source = load_texts(args.n, settings.data_dir)
            asyncio.run(measure(args, base, texts, source))


if __name__ == "__main__":
    main()
