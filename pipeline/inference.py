"""Where the models run: in a child process of their own (the worker's default), or on the caller's thread.

Why a process: eager torch gives the GIL back around every operator and must
take it back after each one. In the worker's process the event loop, the store
thread and the producer hold the GIL part of the time, so a model thread there
waits between operators: bench/e2e.py measured the torch path end to end at
0.80x the bare encoder that way, against 0.96x with the models in their own
process, in the same run. A child
process has an interpreter and a GIL of its own. It reads batches from a pipe,
runs the enricher and sends the enrichments back, while the worker decodes,
produces and inserts.

Faults, and what each one costs:

* the worker ends, SIGKILL included: the child reads the end of its pipe and
  exits (after the batch in hand);
* the child dies mid-batch (killed, out of memory, a crash in native code):
  the call raises :class:`ModelProcessDied` and the next call starts a new
  child. The enrich stage retries a failed batch record by record, so only a
  record that kills the models every time is dead-lettered, with this reason;
* a model raises on a batch: the child sends the exception back and stays up.
"""

from __future__ import annotations

import logging
import pickle
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any, Protocol, Sequence

from touchpoint.models.encoder import configure_inference
from touchpoint.models.enricher import Enricher, EnricherConfig, Enrichment

log = logging.getLogger(__name__)
STOP_WAIT_S = 10.0  # a child finishing its batch after its pipe closed, before it is killed


@dataclass(frozen=True)
class ModelRun:
    """One batch through the models, and what it cost where it ran."""

    enrichments: list[Enrichment]
    started: float  # time.perf_counter() (system-wide on Linux: comparable across processes)
    seconds: float  # wall time inside the models
    cpu_seconds: float  # CPU time of the thread that ran them (torch's other threads not included)
    truncated: int  # texts the encoder cut at max_tokens


class Models(Protocol):
    """The enricher wherever it runs; :meth:`run` blocks (call it from one thread, not the event loop)."""

    version: str

    def run(self, texts: Sequence[str | None], hints: Sequence[str | None], brands: Sequence[str | None]) -> ModelRun: ...

    def close(self) -> None: ...


class ModelProcessDied(Exception):
    """The model process exited while it had a batch; the next call starts a new one."""


def count_truncated(enricher: Enricher, texts: Sequence[str | None]) -> int:
    """Texts the encoder cuts at max_tokens. Only texts with more characters than the
    token budget can be cut (every token covers at least one character), so only
    those few are tokenized again."""
    encoder = getattr(enricher, "encoder", None)
    limit = getattr(encoder, "max_tokens", None)
    tokenizer = getattr(encoder, "tokenizer", None)
    if limit is None or tokenizer is None:
        return 0
    long = [t for t in texts if t and len(t) > limit - 2]
    if not long:
        return 0
    # tokenize one past the limit: enough to know, and no "sequence too long" warning
    ids = tokenizer(long, add_special_tokens=True, truncation=True, max_length=limit + 1)["input_ids"]
    return sum(1 for tokens in ids if len(tokens) > limit)


def run_models(
    enricher: Enricher, texts: Sequence[str | None], hints: Sequence[str | None], brands: Sequence[str | None]
) -> ModelRun:
    """Enrich one batch on this thread, timed."""
    started, cpu = time.perf_counter(), time.thread_time()
    enrichments = enricher.enrich(texts, hints, brands=brands)
    seconds, cpu_seconds = time.perf_counter() - started, time.thread_time() - cpu
    return ModelRun(enrichments, started, seconds, cpu_seconds, count_truncated(enricher, texts))


class LocalModels:
    """The enricher on the calling thread: tests and benchmarks that share one loaded enricher, and
    ``TOUCHPOINT_INFERENCE_PROCESS=false`` (one process, less memory, slower with torch)."""

    def __init__(self, enricher: Enricher) -> None:
        self.enricher = enricher
        self.version = enricher.version

    def run(self, texts: Sequence[str | None], hints: Sequence[str | None], brands: Sequence[str | None]) -> ModelRun:
        return run_models(self.enricher, texts, hints, brands)

    def close(self) -> None:
        """Nothing to release: the enricher belongs to whoever made it."""


class ModelProcess:
    """The enricher in a child process: a fresh interpreter (``python -c``, so nothing of the worker's
    ``__main__`` or threads is copied), talking over one socket pair."""

    def __init__(self, config: EnricherConfig) -> None:
        self.config = config
        self.version = ""
        self._process: subprocess.Popen[bytes] | None = None
        self._conn: Connection | None = None

    @property
    def pid(self) -> int | None:
        """The child's process id while one runs."""
        return self._process.pid if self._process is not None else None

    def start(self) -> "ModelProcess":
        """Start a child and wait until its models are loaded; a load error is raised here, as it was raised there."""
        ours, theirs = socket.socketpair()
        try:
            command = [sys.executable, "-c", f"from {__name__} import main; main({theirs.fileno()})"]
            self._process = subprocess.Popen(command, pass_fds=(theirs.fileno(),), stdin=subprocess.DEVNULL)
        finally:
            theirs.close()  # the child holds the only other end: it reads EOF when this process is gone
        self._conn = Connection(ours.detach())
        try:
            self._conn.send(self.config)
            status, payload = self._conn.recv()
        except (EOFError, OSError) as exc:
            raise self._died("while loading the models") from exc
        if status == "failed":
            self.close()
            raise payload
        self.version = payload
        log.info("models loaded in process %s (%s)", self._process.pid, self.version)
        return self

    def run(self, texts: Sequence[str | None], hints: Sequence[str | None], brands: Sequence[str | None]) -> ModelRun:
        if self._conn is None:
            self.start()
        assert self._conn is not None
        try:
            self._conn.send((list(texts), list(hints), list(brands)))
            status, payload = self._conn.recv()
        except (EOFError, OSError) as exc:  # the pipe closed: BrokenPipeError and ConnectionResetError are OSErrors
            raise self._died(f"while enriching {len(texts)} signals") from exc
        if status == "error":
            raise payload
        return payload  # type: ignore[no-any-return]

    def _died(self, doing: str) -> ModelProcessDied:
        process = self._process
        assert process is not None
        self._forget()
        reap(process)  # a child whose pipe broke but lives on is of no use now
        return ModelProcessDied(
            f"the model process (pid {process.pid}) exited {exit_reason(process.returncode)} {doing}; the next batch "
            "starts a new one. A record that does this every time is dead-lettered. If every batch does it, "
            "give the worker more memory (the kernel's OOM killer sends SIGKILL) or lower TOUCHPOINT_ENRICH_BATCH_SIZE"
        )

    def _forget(self) -> None:
        if self._conn is not None:
            self._conn.close()
        self._process, self._conn = None, None

    def close(self) -> None:
        """Close the pipe (the child exits after its batch in hand); kill a child that does not."""
        process = self._process
        self._forget()
        if process is not None:
            reap(process)


def reap(process: subprocess.Popen[bytes]) -> None:
    """Wait for a child whose pipe is closed to exit (it finishes the batch in hand), killing it after STOP_WAIT_S."""
    try:
        process.wait(STOP_WAIT_S)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def exit_reason(code: int | None) -> str:
    """How a child ended, in words: 'with SIGKILL', 'with code 1'."""
    if code is None:
        return "(still running)"
    if code < 0:
        try:
            return f"with {signal.Signals(-code).name}"
        except ValueError:
            return f"with signal {-code}"
    return f"with code {code}"


def main(fd: int) -> None:
    """The child's entry point: serve on the socket ``fd`` the worker passed down."""
    serve(Connection(fd))


def serve(conn: Connection) -> None:
    """The child: read the config, load the models, then answer batches until the pipe closes."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole process group; the worker decides
    try:
        config = conn.recv()
        configure_inference(config.inference_threads)
        try:
            enricher = Enricher(config)
        except Exception as exc:
            conn.send(("failed", portable(exc)))
            return
        conn.send(("ready", enricher.version))
    except (EOFError, OSError):  # the worker went away while the models loaded
        return
    while True:
        try:
            texts, hints, brands = conn.recv()
        except (EOFError, OSError):  # the worker is gone or closed the pipe
            return
        try:
            reply: tuple[str, Any] = ("ok", run_models(enricher, texts, hints, brands))
        except Exception as exc:
            reply = ("error", portable(exc))
        try:
            conn.send(reply)
        except OSError:
            return


def portable(exc: Exception) -> Exception:
    """The exception itself when it survives pickling (its type and message reach the worker), else a RuntimeError."""
    try:
        pickle.loads(pickle.dumps(exc))
        return exc
    except Exception:
        return RuntimeError(f"{type(exc).__name__}: {exc}")
