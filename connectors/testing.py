"""A test kit for connectors: a real local HTTP source and a standard suite.

Testing a new polling connector takes a payload file and a few lines::

    class TestMyConnector(ConnectorSuite):
        connector_type = "my_type"
        payloads = PAYLOADS / "my_type.json"
        params = {"thing": "42"}
        page_key = query_key("page_token")

The payload file holds the source's pages as it really sends them (first
page under key ``null``) and what must come out::

    {"pages": [{"key": null, "body": {...}}, {"key": "tok2", "body": {...}}],
     "content_type": "application/json",
     "expect": {"source_ids": ["a", "b"],
                "malformed": {"stage": "connector.parse", "reason": "KeyError", "marker": "bad-1"}}}

``{base_url}`` in a body or a param becomes the local server's URL. The
suite runs against the real broker (the ``live_settings`` fixture) and a real
aiohttp server on 127.0.0.1 (:class:`LocalSource`), which can answer 429 with
``Retry-After``, answer 5xx, or hold a request forever to stand for a crash.
"""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, ClassVar

from aiohttp import web

from touchpoint.connectors.config import ConnectorConfig, build_connector
from touchpoint.connectors.framework import Connector, RunStats
from touchpoint.connectors.producer import SignalProducer
from touchpoint.core.checkpoints import CheckpointStore
from touchpoint.core.deadletter import DeadLetterCodec
from touchpoint.core.identity import is_pseudonymous
from touchpoint.core.kafka import read_topic_records
from touchpoint.core.sealing import Sealer
from touchpoint.core.settings import Settings
from touchpoint.schemas.codec import AvroCodec
from touchpoint.schemas.signal import make_signal_id

PageKey = Callable[[web.Request], "str | None"]
REQUEST_BODY: "web.RequestKey[bytes]" = web.RequestKey("body", bytes)  # a POST's body, read before its page key


def query_key(name: str) -> PageKey:
    """Pages addressed by a query parameter (``?next_token=...``)."""
    return lambda request: request.query.get(name)


def json_key(*path: str) -> PageKey:
    """Pages of a POST endpoint addressed inside its JSON body (``pagination.starting_after``)."""

    def key(request: web.Request) -> str | None:
        value: Any = json.loads(request.get(REQUEST_BODY) or b"{}")
        for name in path:
            value = value.get(name) if isinstance(value, dict) else None
        return None if value is None else str(value)

    return key


def path_key(pattern: str) -> PageKey:
    """Pages addressed inside the path (``/page=2/``): the regex's first group."""
    compiled = re.compile(pattern)

    def key(request: web.Request) -> str | None:
        match = compiled.search(request.path)
        return match.group(1) if match else None

    return key


@dataclass(frozen=True)
class Hit:
    """One request the local source saw: when (loop time), which page, what it answered."""

    at: float
    key: str | None
    status: int


@dataclass
class Payloads:
    pages: dict[str | None, Any]
    content_type: str
    expect: dict[str, Any]

    @classmethod
    def load(cls, path: Path) -> "Payloads":
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        pages = {page["key"]: page["body"] for page in data["pages"]}
        return cls(pages, data.get("content_type", "application/json"), data.get("expect", {}))

    @property
    def keys(self) -> list[str | None]:
        return list(self.pages)


@dataclass
class LocalSource:
    """A real aiohttp server on 127.0.0.1 serving pages, with injectable faults."""

    pages: dict[str | None, Any]
    page_key: PageKey
    content_type: str = "application/json"
    require_headers: dict[str, str] = field(default_factory=dict)
    hits: list[Hit] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._faults: dict[str | None, list[tuple[int, dict[str, str]]]] = {}
        self._holds: dict[str | None, tuple[asyncio.Event, asyncio.Event]] = {}
        self._releases: list[asyncio.Event] = []
        self._runner: web.AppRunner | None = None
        self.base_url = ""

    async def __aenter__(self) -> "LocalSource":
        app = web.Application()
        app.router.add_route("GET", "/{tail:.*}", self._handle)
        app.router.add_route("POST", "/{tail:.*}", self._handle)  # search and export-start endpoints
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.base_url = f"http://127.0.0.1:{port}"
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        for release in self._releases:
            release.set()
        if self._runner is not None:
            await self._runner.cleanup()

    def fail(self, key: str | None, status: int, headers: dict[str, str] | None = None, times: int = 1) -> None:
        """Answer the next ``times`` requests for page ``key`` with ``status``."""
        self._faults.setdefault(key, []).extend([(status, headers or {})] * times)

    def hold(self, key: str | None) -> asyncio.Event:
        """Hang the first request for page ``key`` (a crash stand-in); the event fires when it arrives."""
        reached, release = asyncio.Event(), asyncio.Event()
        self._holds[key] = (reached, release)
        self._releases.append(release)
        return reached

    def hits_for(self, key: str | None) -> list[Hit]:
        return [hit for hit in self.hits if hit.key == key]

    def render(self, body: Any) -> str:
        text = body if isinstance(body, str) else json.dumps(body)
        return text.replace("{base_url}", self.base_url)

    def respond(self, key: str | None, body: Any) -> web.StreamResponse:
        """The answer for page ``key`` (override to serve bytes, such as a zipped export)."""
        return web.Response(text=self.render(body), content_type=self.content_type)

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        if request.method == "POST":
            request[REQUEST_BODY] = await request.read()  # page keys of POST endpoints read it (json_key)
        key = self.page_key(request)
        now = asyncio.get_running_loop().time()
        for name, value in self.require_headers.items():
            if request.headers.get(name) != value:
                self.hits.append(Hit(now, key, 401))
                return web.json_response({"title": "Unauthorized"}, status=401)
        faults = self._faults.get(key)
        if faults:
            status, headers = faults.pop(0)
            self.hits.append(Hit(now, key, status))
            return web.json_response({"title": "injected fault", "status": status}, status=status, headers=headers)
        if key in self._holds:
            reached, release = self._holds.pop(key)
            self.hits.append(Hit(now, key, 0))
            reached.set()
            await release.wait()
            return web.Response(status=503)
        if key not in self.pages:
            self.hits.append(Hit(now, key, 404))
            return web.json_response({"error": f"no page {key!r}"}, status=404)
        self.hits.append(Hit(now, key, 200))
        return self.respond(key, self.pages[key])


async def read_topic(settings: Settings, topic: str, subject: str) -> list[tuple[bytes | None, dict[str, Any]]]:
    """Every (key, decoded value) currently in ``topic``, all partitions, from the beginning.

    Sealed fields are opened with the settings' key, as the worker and `dlq replay` do:
    a raw signal's ``text``, a dead letter's original ``payload``.
    """
    codec = AvroCodec.for_subject(subject)
    sealer = Sealer.from_settings(settings)
    letters = DeadLetterCodec(sealer, settings.dead_letter_max_payload_bytes)
    records = []
    for message in await read_topic_records(settings, topic):
        record = letters.decode(message.value) if subject == "dead_letter" else codec.decode(message.value)
        if subject == "dead_letter":
            record["payload"] = letters.original(record)
        elif record.get("text_sealed"):
            record["text"] = sealer.open(record["text_sealed"], aad=record["signal_id"].encode()).decode()
        records.append((message.key, record))
    return records


async def run_pass(connector: Connector, settings: Settings) -> RunStats:
    """One pass of ``connector`` with a fresh producer (as a fresh process would)."""
    checkpoints = CheckpointStore(settings.data_dir / "checkpoints")
    async with SignalProducer(settings) as producer, connector.http:
        return await connector.run_once(producer, checkpoints)


class ConnectorSuite:
    """The standard tests every polling connector passes; subclass it as ``Test<Name>``."""

    connector_type: ClassVar[str]
    payloads: ClassVar[Path]
    params: ClassVar[dict[str, Any]] = {}
    page_key: ClassVar[PageKey]
    token: ClassVar[str | None] = "test-token-not-a-secret"  # served only with this bearer token
    auth_header: ClassVar[str] = "Bearer {token}"
    auth_header_name: ClassVar[str] = "Authorization"
    # Which page answers 503 once in the retry test (index into the payload's keys): the last by
    # default; a source whose last keys are only read by a later pass (an export's continuation) picks another.
    server_error_page: ClassVar[int] = -1

    # --- building blocks a subclass may reuse in its own tests ----------------------------
    def load(self) -> Payloads:
        return Payloads.load(self.payloads)

    def source(self, payloads: Payloads) -> LocalSource:
        required = {self.auth_header_name: self.auth_header.format(token=self.token)} if self.token else {}
        return LocalSource(payloads.pages, type(self).page_key, payloads.content_type, required)

    def connector(self, settings: Settings, server: LocalSource, monkeypatch: Any, name: str = "under-test") -> Connector:
        token_env = None
        if self.token:
            token_env = f"TOUCHPOINT_TEST_TOKEN_{uuid.uuid4().hex[:8].upper()}"
            monkeypatch.setenv(token_env, self.token)
        params = {k: v.replace("{base_url}", server.base_url) if isinstance(v, str) else v for k, v in self.params.items()}
        config = ConnectorConfig(
            name=name, type=self.connector_type, base_url=server.base_url, token_env=token_env,
            brand="acme", params=params, max_retry_after_s=10,
        )  # fmt: skip
        return build_connector(config, settings)

    async def signals(self, settings: Settings) -> list[tuple[bytes | None, dict[str, Any]]]:
        return await read_topic(settings, settings.topic_raw, "raw_signal")

    def assert_each_once(self, messages: list[tuple[bytes | None, dict[str, Any]]], payloads: Payloads) -> None:
        expected = sorted(payloads.expect["source_ids"])
        got = sorted(value["source_id"] for _, value in messages)
        assert got == expected, f"each record exactly once: expected {expected}, topic holds {got}"

    # --- the standard tests ---------------------------------------------------------------
    async def test_restart_mid_source_yields_each_record_once(self, live_settings: Settings, monkeypatch: Any) -> None:
        payloads = self.load()
        keys = payloads.keys
        assert len(keys) >= 3, "the payload file needs at least three pages to crash in the middle"
        crash_at = keys[2]
        async with self.source(payloads) as server:
            reached = server.hold(crash_at)
            first = asyncio.create_task(run_pass(self.connector(live_settings, server, monkeypatch), live_settings))
            waiter = asyncio.create_task(reached.wait())
            await asyncio.wait([first, waiter], return_when=asyncio.FIRST_COMPLETED)
            assert not first.done(), f"the first run ended before asking for page {crash_at!r}: {first.result()!r}"
            first.cancel()  # the crash: the process dies while fetching page 3
            with suppress(asyncio.CancelledError):
                await first
            hits_before = len(server.hits)

            second = await run_pass(self.connector(live_settings, server, monkeypatch), live_settings)
            resumed = server.hits[hits_before:]  # the restarted pass only
            assert resumed[0].key == crash_at, f"restart must resume at page {crash_at!r}, asked for {resumed[0].key!r}"
            assert all(hit.key not in keys[:2] for hit in resumed), "restart re-read pages that were checkpointed"
            assert second.checkpoints >= 1

            third = await run_pass(self.connector(live_settings, server, monkeypatch), live_settings)
            assert third.produced == 0 and third.read == 0, f"a pass with nothing new produced {third}"

        messages = await self.signals(live_settings)
        self.assert_each_once(messages, payloads)
        source = self.connector_source()
        for _, value in messages:
            assert value["signal_id"] == make_signal_id(value["source"], value["source_id"]) and value["source"] == source

    async def test_rate_limit_and_server_errors_are_retried(self, live_settings: Settings, monkeypatch: Any) -> None:
        payloads = self.load()
        keys = payloads.keys
        async with self.source(payloads) as server:
            server.fail(keys[1], 429, {"Retry-After": "1"})
            failing = keys[self.server_error_page]
            server.fail(failing, 503)
            stats = await run_pass(self.connector(live_settings, server, monkeypatch), live_settings)
            limited, retried = server.hits_for(keys[1])[:2]
            assert (limited.status, retried.status) == (429, 200)
            assert retried.at - limited.at >= 1.0, "the retry came before Retry-After allowed"
            assert [hit.status for hit in server.hits_for(failing)][:2] == [503, 200]
        assert stats.produced == len(payloads.expect["source_ids"]) and stats.errors == 0
        self.assert_each_once(await self.signals(live_settings), payloads)

    async def test_malformed_item_is_dead_lettered_while_the_rest_flow(
        self, live_settings: Settings, monkeypatch: Any
    ) -> None:
        payloads = self.load()
        expected = payloads.expect["malformed"]
        async with self.source(payloads) as server:
            stats = await run_pass(self.connector(live_settings, server, monkeypatch), live_settings)
        assert stats.dead_lettered == 1 and stats.produced == len(payloads.expect["source_ids"])
        [(_, letter)] = await read_topic(live_settings, live_settings.topic_dead_letter, "dead_letter")
        assert letter["stage"] == expected["stage"], letter
        assert expected["reason"] in letter["reason"], letter["reason"]
        assert expected["marker"].encode() in letter["payload"], "the dead letter must keep the original item"
        assert letter["origin"] == "connector:under-test" and letter["source"] == self.connector_source()
        messages = await self.signals(live_settings)
        self.assert_each_once(messages, payloads)
        for key, value in messages:  # keyed by customer; never a clear-text identifier
            assert value["customer_id"] is None or is_pseudonymous(value["customer_id"])
            assert key == (value["customer_id"] or value["author"] or value["signal_id"]).encode()

    def connector_source(self) -> str:
        from touchpoint.connectors.config import connector_types

        return str(self.params.get("source") or connector_types()[self.connector_type].source)
