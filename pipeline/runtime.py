"""Running the Faust worker inside this process (demo, `touchpoint up`, tests).

chdb allows one engine per process, so the embedded stack runs the worker in
the same process as whatever reads the store afterwards.
"""

from __future__ import annotations

import asyncio
import logging
from contextlib import asynccontextmanager
from typing import AsyncIterator

import faust

from touchpoint.core.settings import Settings
from touchpoint.models.enricher import Enricher
from touchpoint.pipeline.app import create_app

log = logging.getLogger(__name__)


@asynccontextmanager
async def running_worker(settings: Settings, enricher: Enricher | None = None) -> AsyncIterator[faust.App]:
    """Start a worker for ``settings``; stop it (committing offsets) on exit."""
    app = create_app(settings, enricher)
    worker = faust.Worker(
        app,
        loop=asyncio.get_running_loop(),
        daemon=False,
        loglevel=settings.log_level,
        quiet=True,
        override_logging=False,
        redirect_stdouts=False,
    )
    try:
        await worker.start()  # inside the try: a start cancelled halfway (the broker died) still stops
        yield app
    finally:
        await stop_within(worker, app, settings.shutdown_timeout_s)
        for name in ("store", "reader", "enrich"):  # an enrich-only worker has no store, a sink-only one no models
            if name in app.touchpoint:
                await app.touchpoint[name].close()


async def stop_within(worker: faust.Worker, app: faust.App, timeout_s: float) -> None:
    """Stop the worker, committing what it can; never wait longer than ``timeout_s``.

    With the broker gone, Kafka clients retry their goodbyes (commit, leave
    group) for a minute or more. Past the deadline the consumer's thread is
    halted instead: whatever was not committed is redelivered to the next
    worker, which is the normal at-least-once path, not a loss.
    """
    try:
        await asyncio.wait_for(worker.stop(), timeout_s)
    except asyncio.TimeoutError:
        log.error("the worker did not stop within %.0fs (is the broker unreachable?); halting its Kafka threads, "
                  "uncommitted offsets will be redelivered", timeout_s)  # fmt: skip
        thread = getattr(app.consumer, "_thread", None)  # Faust runs the consumer on a ServiceThread
        if thread is not None:
            thread.thread_loop.call_soon_threadsafe(thread.thread_loop.stop)
