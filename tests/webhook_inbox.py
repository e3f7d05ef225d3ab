"""A real HTTP receiver on 127.0.0.1 for delivery tests: records every POST and answers from a
script per path (e.g. 500, then 429 with Retry-After, then 200), like a flaky Slack or ticket system."""

from __future__ import annotations

import json
import time
from collections import defaultdict, deque
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from touchpoint.core.localhttp import start_local


@dataclass(frozen=True)
class Hit:
    path: str
    at: float
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class WebhookInbox:
    """``async with WebhookInbox() as inbox: inbox.script("/hook", (500, {}), (429, {"Retry-After": "1"}))``;
    a path answers 200 ("ok", as Slack does) once its script is used up."""

    def __init__(self) -> None:
        self.hits: list[Hit] = []
        self._scripts: dict[str, deque[tuple[int, dict[str, str]]]] = defaultdict(deque)
        self._always: dict[str, tuple[int, dict[str, str]]] = {}
        self._runner: web.AppRunner | None = None
        self.port = 0

    def script(self, path: str, *answers: tuple[int, dict[str, str]]) -> None:
        self._scripts[path].extend(answers)

    def always(self, path: str, status: int, headers: dict[str, str] | None = None) -> None:
        self._always[path] = (status, headers or {})

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def at(self, path: str) -> list[Hit]:
        return [hit for hit in self.hits if hit.path == path]

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        path = request.path
        if self._scripts[path]:
            status, headers = self._scripts[path].popleft()
        else:
            status, headers = self._always.get(path, (200, {}))
        self.hits.append(Hit(path, time.monotonic(), status, dict(request.headers), body))
        return web.Response(status=status, headers=headers, text="ok" if status < 300 else f"error {status}")

    async def __aenter__(self) -> "WebhookInbox":
        app = web.Application()
        app.router.add_post("/{tail:.*}", self._handle)
        self._runner, self.port = await start_local(app)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
