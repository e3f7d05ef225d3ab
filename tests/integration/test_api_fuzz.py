"""The API never answers 5xx, whatever a client sends: schemathesis against the live API, bounded.

It reads the API's own OpenAPI document and generates requests from it
(valid and invalid parameters, bodies, paths), and checks that no answer is a
server error and that answers match the documented schemas.
"""

from __future__ import annotations

import asyncio
import shutil
import sys
from pathlib import Path

from aiohttp import web

from tests.integration.test_api import free_port, seed
from touchpoint.core.settings import Settings
from touchpoint.pipeline.api import build_web_app
from touchpoint.pipeline.store import AsyncStore, Store


async def test_no_request_makes_the_api_fail(store: Store, settings: Settings, tmp_path: Path) -> None:
    seed(store)
    reader = AsyncStore.from_settings(settings, threads=2)
    runner = web.AppRunner(build_web_app(reader, settings))
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    schemathesis = shutil.which("schemathesis", path=str(Path(sys.executable).parent))
    assert schemathesis, "schemathesis is a test dependency: make install"
    try:
        process = await asyncio.create_subprocess_exec(
            schemathesis, "run", f"http://127.0.0.1:{port}/api/v1/openapi.json",
            "--checks", "not_a_server_error,status_code_conformance,content_type_conformance",
            "--max-examples", "25", "--seed", "42", "--phases", "examples,coverage,fuzzing",
            "--request-timeout", "20", "--report-dir", str(tmp_path / "st"),
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, cwd=tmp_path,
        )  # fmt: skip
        out, _ = await asyncio.wait_for(process.communicate(), 600)
    finally:
        await runner.cleanup()
        await reader.close()
    text = out.decode(errors="replace")
    assert process.returncode == 0, text[-6000:]
