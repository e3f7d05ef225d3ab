"""Closing the loop in `touchpoint demo`: the bundled example rules, and a local inbox for deliveries.

The demo routes its sample with ``touchpoint.samples`` ``routing_rules.yaml``
(or the rules file the settings name). Destinations with no URL configured
are pointed at :class:`LocalInbox`, a real HTTP server on 127.0.0.1 that
stands in for Slack and a ticket system: it checks what it receives (Slack's
``text``/``blocks`` shape; the HMAC signature of signed webhooks, with the
receiver's own check) and counts it, so the demo shows real deliveries
without leaving the machine. Cases live in the demo's ClickHouse, so a second
run recognises every action and opens no new case.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from rich.console import Console
from rich.table import Table

from touchpoint.connectors.surveys import SignatureError, verify_generic
from touchpoint.core.localhttp import start_local
from touchpoint.core.settings import Settings
from touchpoint.pipeline.loop_metrics import open_now
from touchpoint.pipeline.rules import load_rules
from touchpoint.pipeline.store import Store
from touchpoint.samples import sample_path

EXAMPLE_RULES = "routing_rules.yaml"


@dataclass
class LocalInbox:
    """A local stand-in for Slack (POST /slack) and a signed-webhook receiver (POST /webhook)."""

    secret: str = field(default_factory=lambda: secrets.token_hex(16))
    received: dict[str, int] = field(default_factory=lambda: {"slack": 0, "webhook": 0, "refused": 0})
    port: int = 0
    _runner: web.AppRunner | None = None

    def url(self, kind: str) -> str:
        return f"http://127.0.0.1:{self.port}/{kind}"

    async def _slack(self, request: web.Request) -> web.Response:
        try:
            message = json.loads(await request.read())
            ok = isinstance(message.get("text"), str) and isinstance(message.get("blocks"), list)
        except ValueError:
            ok = False
        self.received["slack" if ok else "refused"] += 1
        return web.Response(text="ok") if ok else web.Response(status=400, text="invalid_payload")

    async def _webhook(self, request: web.Request) -> web.Response:
        body = await request.read()
        try:
            verify_generic(body, request.headers, self.secret, time.time(), 300)
        except SignatureError as exc:
            self.received["refused"] += 1
            return web.Response(status=401, text=str(exc))
        self.received["webhook"] += 1
        return web.json_response({"received": True})

    async def __aenter__(self) -> "LocalInbox":
        app = web.Application()
        app.router.add_post("/slack", self._slack)
        app.router.add_post("/webhook", self._webhook)
        self._runner, self.port = await start_local(app)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


def demo_routing(settings: Settings, inbox: LocalInbox) -> Settings:
    """The example rules (unless the settings name a rules file), unset destinations pointed at the inbox."""
    path = settings.routing_rules_path or str(sample_path(EXAMPLE_RULES))
    urls, keys = dict(settings.routing_destination_urls), dict(settings.routing_destination_secrets)
    for name, destination in load_rules(path).spec.destinations.items():
        if name not in urls and not destination.url:
            urls[name] = inbox.url("slack" if destination.type == "slack" else "webhook")
            keys.setdefault(name, inbox.secret)
    return settings.with_overrides(routing_rules_path=path, routing_destination_urls=urls, routing_destination_secrets=keys)


async def wait_until_routed(app: Any, signals: int, deadline: float) -> None:
    """Until the route agent evaluated every stored signal and the case agent handled every action."""
    route, cases = app.touchpoint["route"], app.touchpoint["actions"]
    while time.monotonic() < deadline:
        if route.evaluated >= signals and cases.handled >= route.produced:
            return
        await asyncio.sleep(0.5)


def open_cases_by_team(settings: Settings, brand: str) -> list[dict[str, Any]]:
    store = Store.from_settings(settings)
    try:
        return open_now(store, brand)
    finally:
        store.close()


def print_loop(console: Console, rows: list[dict[str, Any]], opened_now: int, received: dict[str, int]) -> None:
    table = Table(title="Closing the loop: open cases per team (example routing rules)")
    for column in ("team", "priority", "open", "acknowledged", "past SLA"):
        table.add_column(column, justify="left" if column in ("team", "priority") else "right")
    for row in rows:
        table.add_row(row["team"], row["priority"], str(row["open"]), str(row["acknowledged"]), str(row["breached"]))
    console.print(table)
    total = sum(row["open_total"] for row in rows)
    console.print(
        f"{total} open cases; {opened_now} opened by this run (a second run opens none: actions and cases are "
        f"deduplicated in ClickHouse); delivered {received['slack']} Slack-style and {received['webhook']} signed "
        f"webhook notifications to the local inbox ({received['refused']} refused). "
        "Work them with `touchpoint cases list|ack|close`.",
        highlight=False,
    )
