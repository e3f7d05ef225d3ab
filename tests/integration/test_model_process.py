"""The models in a child process (pipeline/inference.py): the same enrichments as on a thread, and the
faults a process adds: the child killed mid-stream, killed every time, failing to load, orphaned.

Every test runs the real packaged models in a real child process; faults are real SIGKILLs."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import replace
from datetime import datetime, timezone

import pytest
from prometheus_client import REGISTRY

from touchpoint.core.sealing import Sealer
from touchpoint.pipeline.enrichment import EnrichStage, Incoming, enricher_config
from touchpoint.pipeline.inference import ModelProcess, ModelProcessDied
from touchpoint.schemas.codec import AvroCodec
from touchpoint.schemas.signal import RawSignal, Score

TEXTS = ["The checkout queue took two hours.", None, "Lovely crew, write to me at jo@example.com",
         "Le personnel était très aimable.", "My bag never arrived and nobody answers the phone."]  # fmt: skip
HINTS = [None, "checkout", None, None, "delivery"]  # ids of the default taxonomy (models/taxonomy.yaml)


def torch_config(settings):  # the conftest enricher is torch; compare like with like
    return enricher_config(settings.with_overrides(encoder_backend="torch"))


def messages(n: int) -> list[Incoming]:
    codec = AvroCodec.for_subject("raw_signal")
    out = []
    for i in range(n):
        signal_ = RawSignal(source="typeform", source_id=f"m{i}", channel="survey", brand="acme",
                            occurred_at=datetime(2026, 11, 2, 9, 30, tzinfo=timezone.utc),
                            text=TEXTS[i % len(TEXTS)] or "Fine.", score=Score("nps", i % 11, 0, 10))  # fmt: skip
        out.append(Incoming(f"k{i}".encode(), codec.encode(signal_.to_record()), "t.raw", 0, i))
    return out


def events_in() -> float:
    return REGISTRY.get_sample_value("touchpoint_enrich_events_in_total") or 0.0


def gone(pid: int, within_s: float) -> bool:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.1)
    return False


def test_the_model_process_enriches_exactly_like_the_models_on_a_thread(enricher, settings) -> None:
    models = ModelProcess(torch_config(settings)).start()
    try:
        assert models.pid not in (None, os.getpid())
        run = models.run(TEXTS, HINTS, ["acme"] * len(TEXTS))
        assert models.version == enricher.version
        assert run.enrichments == enricher.enrich(TEXTS, HINTS, brands=["acme"] * len(TEXTS))
        assert run.enrichments[2].pii_found == ["email"] and run.enrichments[1].touchpoints == ["checkout"]
        assert 0 < run.cpu_seconds and 0 < run.seconds and run.truncated == 0
    finally:
        pid = models.pid
        models.close()
    assert pid is not None and gone(pid, 5)  # closing the pipe ends the child


async def test_a_model_process_killed_mid_stream_loses_and_doubles_nothing(settings) -> None:
    stage = EnrichStage(lambda: ModelProcess(torch_config(settings)).start(), Sealer.from_settings(settings))
    models = await stage.load()
    try:
        first = models.pid
        assert first is not None
        os.kill(first, signal.SIGKILL)  # the kernel's OOM killer, or an operator
        before = events_in()
        take = messages(6)
        result = await stage.process(take, model_batch=4)
        assert len(result.outputs) == len(take) and result.dead_letters == []  # produced = enriched + dead-lettered
        codec = AvroCodec.for_subject("enriched_signal")
        assert sorted(codec.decode(v)["source_id"] for _, v in result.outputs) == [f"m{i}" for i in range(6)]
        assert events_in() - before == len(take)  # counted once, though the first model batch ran twice
        assert models.pid not in (None, first)  # a new child took over
    finally:
        await stage.close()


async def test_records_the_models_die_on_every_time_are_dead_lettered_with_the_reason(settings) -> None:
    """The negative control of the test above: when every child is killed, nothing is enriched, and
    every record is a dead letter saying so (none is lost, none is passed on unenriched)."""
    stage = EnrichStage(lambda: ModelProcess(torch_config(settings)).start(), Sealer.from_settings(settings))
    models = await stage.load()
    stop = threading.Event()

    def kill_every_child() -> None:
        while not stop.is_set():
            pid = models.pid
            if pid is not None:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            time.sleep(0.005)

    killer = threading.Thread(target=kill_every_child, daemon=True)
    killer.start()
    try:
        take = messages(3)
        result = await stage.process(take, model_batch=3)
    finally:
        stop.set()
        killer.join()
        await stage.close()
    assert result.outputs == [] and len(result.dead_letters) == len(take)
    assert {letter["stage"] for letter in result.dead_letters} == {"enrich"}
    assert all("exited with SIGKILL" in letter["reason"] for letter in result.dead_letters)


def test_a_model_that_cannot_load_says_why_in_the_worker(settings, tmp_path) -> None:
    config = replace(torch_config(settings), taxonomy_path=str(tmp_path / "missing-taxonomy.yaml"))
    from touchpoint.models.enricher import Enricher

    with pytest.raises(Exception) as here:  # what the same config raises in this process
        Enricher(config)
    with pytest.raises(type(here.value)) as there:
        ModelProcess(config).start()
    assert str(there.value) == str(here.value)


def test_a_worker_killed_with_sigkill_leaves_no_model_process_behind(settings) -> None:
    script = (
        "import sys, time\n"
        "from touchpoint.core.settings import Settings\n"
        "from touchpoint.pipeline.enrichment import enricher_config\n"
        "from touchpoint.pipeline.inference import ModelProcess\n"
        "models = ModelProcess(enricher_config(Settings(encoder_backend='torch'))).start()\n"
        "print(models.pid, flush=True)\n"
        "time.sleep(600)\n"
    )
    worker = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, stdin=subprocess.DEVNULL)
    try:
        child = int(worker.stdout.readline())  # type: ignore[union-attr]
        assert not gone(child, 0.5)  # alive while its worker is
        worker.kill()
        worker.wait()
        assert gone(child, 10), "the model process outlived its worker"
    finally:
        worker.kill()


def test_a_dead_model_process_is_named_with_its_exit(settings) -> None:
    models = ModelProcess(torch_config(settings)).start()
    pid = models.pid
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    with pytest.raises(ModelProcessDied, match=rf"pid {pid}\) exited with SIGKILL while enriching 1 signals"):
        models.run(["Late again."], [None], [None])
    assert models.run(["Late again."], [None], [None]).enrichments[0].language == "en"  # the next call starts anew
    models.close()
