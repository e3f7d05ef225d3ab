"""Running the Faust worker inside this process (demo, `touchpoint up`, tests).

chdb allows one engine per process, so the embedded stack runs the worker in
the same process as whatever reads the store afterwards.
"""

from __future__ import annotations

import asyncio
from contextlib import asynccontextmanager
from typing import AsyncIterator

import faust

from touchpoint.core.settings import Settings
from touchpoint.models.enricher import Enricher
from touchpoint.pipeline.app import create_app


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
    await worker.start()
    try:
        yield app
    finally:
        await worker.stop()
        await app.touchpoint["store"].close()
        await app.touchpoint["reader"].close()
