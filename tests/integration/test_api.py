"""The metric API over real HTTP: the worker's Faust web server on 127.0.0.1, real chdb behind it."""

from __future__ import annotations

import socket
from datetime import timedelta
from typing import Any, AsyncIterator

import aiohttp
import pytest
from aiohttp import web

from tests.alert_rows import SPIKE, signals
from tests.cx_rows import T0, signal, store_signals
from touchpoint.pipeline.alerts.watch import watch_once
from touchpoint.pipeline.api import build_web_app
from touchpoint.pipeline.app import create_app
from touchpoint.pipeline.metrics_sql import DIMENSIONS, METRICS
from touchpoint.pipeline.queries import metric_by
from touchpoint.pipeline.store import AsyncStore, Store


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def seed(store: Store) -> None:
    rows = [signal(i, metric="nps", value=v, label="negative" if v < 7 else "positive", touchpoints=(tp,),
                   text_redacted=f"{tp} problem number {i}, call [PHONE]", at=T0 + timedelta(days=i % 10))
            for i, (v, tp) in enumerate([(9, "delivery"), (3, "delivery"), (10, "checkout"), (2, "billing"), (6, "billing"), (8, "delivery")])]  # fmt: skip
    rows += [
        signal(50, customer_id="c-42", channel="chat", at=T0 + timedelta(days=3)),
        signal(51, customer_id="c-42", channel="survey", metric="csat", value=2, at=T0 + timedelta(days=1)),
    ]
    store_signals(store, rows)
    store_signals(store, rows[:3])  # redelivered


@pytest.fixture
async def api(store: Store, settings) -> AsyncIterator[str]:
    """The real worker app's web server (Faust's aiohttp), started on its own, on 127.0.0.1."""
    seed(store)
    port = free_port()
    app = create_app(settings.with_overrides(web_enabled=True, web_port=port))
    app.conf.web_bind = "127.0.0.1"
    await app.web.start()
    try:
        yield f"http://127.0.0.1:{port}/api/v1"
    finally:
        await app.web.stop()
        await app.touchpoint["store"].close()
        await app.touchpoint["reader"].close()


async def get(url: str) -> tuple[int, Any]:
    async with aiohttp.ClientSession() as http, http.get(url) as response:
        assert response.content_type == "application/json"
        return response.status, await response.json()


async def test_metric_endpoint_matches_the_query_layer(api: str, store: Store, settings) -> None:
    status, body = await get(f"{api}/metrics/nps?by=touchpoint")
    assert status == 200 and body["metric"] == "nps" and body["by"] == "touchpoint"
    direct = metric_by(store, "nps", "touchpoint", min_n=settings.min_responses)
    assert [(r["touchpoint"], r["nps"], r["n"], r["low_confidence"]) for r in body["rows"]] == [
        (r["touchpoint"], r["nps"], r["n"], r["low_confidence"]) for r in direct
    ]
    assert sum(r["n"] for r in body["rows"]) == 6  # the redelivered rows count once
    assert body["min_responses"] == settings.min_responses


async def test_every_metric_and_dimension_answers(api: str) -> None:
    for metric in METRICS:
        for by in ("channel", "week", "total"):
            status, body = await get(f"{api}/metrics/{metric}?by={by}&since=2026-11-01&until=2026-12-01")
            assert status == 200, (metric, by, body)
            assert all("n" in row and by in row for row in body["rows"])
    _, body = await get(f"{api}/metrics/volume?by=day")
    assert body["rows"][0]["day"] == "2026-11-02"


async def test_by_touchpoint_the_answer_says_which_view_it_counts(api: str, store: Store) -> None:
    store_signals(store, [signal(60, metric="nps", value=10, touchpoints=("billing", "delivery"), touchpoint_hint="billing")])
    status, body = await get(f"{api}/metrics/nps?by=touchpoint")
    assert status == 200 and body["view"] == "primary" and "once" in body["view_definition"]
    assert sum(r["n"] for r in body["rows"]) == 7 and {r["view"] for r in body["rows"]} == {"primary"}
    assert "primary touchpoint" in body["definition"]
    status, body = await get(f"{api}/metrics/nps?by=touchpoint&view=mentions")
    assert status == 200 and body["view"] == "mentions" and sum(r["n"] for r in body["rows"]) == 8  # 60 counts twice
    status, body = await get(f"{api}/metrics/sentiment?by=touchpoint")
    assert body["view"] == "mentions" and {r["view"] for r in body["rows"]} == {"mentions"}
    status, body = await get(f"{api}/metrics/nps?by=channel")
    assert body["view"] is None and "view" not in body["rows"][0]


async def test_change_versus_previous_period(api: str) -> None:
    status, body = await get(f"{api}/metrics/volume?by=total&since=2026-11-07&until=2026-11-12&compare=true")
    assert status == 200
    [row] = body["rows"]
    assert {"previous", "previous_n", "change"} <= set(row)
    assert row["change"] == row["volume"] - row["previous"]


@pytest.mark.parametrize(
    ("query", "parameter"),
    [
        ("metrics/happiness?by=channel", "metric"),
        ("metrics/nps?by=planet", "by"),
        ("metrics/nps?by=channel&since=yesterday-ish", "since"),
        ("metrics/nps?by=channel&since=2026-11-05&until=2026-11-01", "until"),
        ("metrics/nps?by=channel&colour=red", "colour"),
        ("metrics/nps?by=channel&compare=true", "since"),
        ("metrics/nps?by=day&since=7d&compare=true", "compare"),
        ("metrics/nps?by=channel&compare=maybe", "compare"),
        ("metrics/nps?brand=" + "x" * 300, "brand"),
        ("metrics/nps?by=touchpoint&view=everything", "view"),
        ("metrics/nps?by=channel&view=primary", "view"),
        ("top-negative?limit=0", "limit"),
        ("top-negative?limit=ten", "limit"),
        ("top-negative?verbatims=99", "verbatims"),
        ("journey/c-42?limit=-1", "limit"),
        ("alerts?state=closed", "state"),
        ("alerts?limit=0", "limit"),
        ("alerts?since=soonish", "since"),
    ],
)  # fmt: skip
async def test_bad_parameters_get_a_clear_400(api: str, query: str, parameter: str) -> None:
    status, body = await get(f"{api}/{query}")
    assert status == 400
    assert body["parameter"] == parameter and body["error"]


async def test_parameters_are_bound_not_pasted(api: str) -> None:
    status, body = await get(f"{api}/metrics/volume?by=brand&brand=acme%27%20OR%201%3D1%20--")
    assert (status, body["rows"]) == (200, [])
    status, body = await get(f"{api}/metrics/volume?by=brand&brand=acme")
    assert body["rows"][0]["n"] == 8


async def test_journey_and_top_negative(api: str) -> None:
    status, body = await get(f"{api}/journey/c-42")
    assert status == 200 and body["n"] == 2
    assert [s["channel"] for s in body["signals"]] == ["survey", "chat"]
    assert body["signals"][0]["occurred_at"].endswith("Z")
    status, body = await get(f"{api}/journey/nobody")
    assert status == 404 and "nobody" in body["error"]
    status, body = await get(f"{api}/top-negative?verbatims=2")
    assert status == 200
    # billing is worse (-100) but rests on 2 < min_responses signals: reliable delivery ranks first
    assert [(r["touchpoint"], r["low_confidence"]) for r in body["rows"]][:2] == [("delivery", False), ("billing", True)]
    assert all("[PHONE]" in q["text"] for r in body["rows"] for q in r["verbatims"])


async def test_alerts_come_with_their_numbers_and_why(api: str, store: Store, settings) -> None:
    store_signals(store, signals(SPIKE[1], changes=True))  # a volume spike in product_quality (tests/alert_rows.py)
    opened = watch_once(store, settings, SPIKE[0] + timedelta(hours=3, minutes=10)).opened
    assert opened
    status, body = await get(f"{api}/alerts?state=open")
    assert status == 200 and {a["alert_id"] for a in body["alerts"]} == {a.alert_id for a in opened}
    spike = next(a for a in body["alerts"] if a["metric"] == "volume_spike" and a["value"] == "product_quality")
    assert spike["state"] == "open" and spike["n"] >= 30 and spike["current_low"] > spike["expected"]
    assert {"terms", "verbatims", "contributions", "window"} <= set(spike["explanation"])
    assert spike["window_end"].endswith("Z") and "n=" in spike["summary"]
    status, body = await get(f"{api}/alerts?brand=globex")
    assert (status, body["alerts"]) == (200, [])


async def test_openapi_describes_every_route_and_choice(api: str) -> None:
    status, doc = await get(f"{api}/openapi.json")
    assert status == 200 and doc["openapi"].startswith("3.")
    paths = doc["paths"]
    assert set(paths) == {f"/api/v1/{p}" for p in ("metrics/{metric}", "top-negative", "journey/{customer_id}", "alerts", "openapi.json",
                                                  "cases", "cases/{case_id}", "cases/{case_id}/acknowledge",
                                                  "cases/{case_id}/close", "cases/{case_id}/reopen", "loop", "read")}  # fmt: skip
    params = {p["name"]: p for p in paths["/api/v1/metrics/{metric}"]["get"]["parameters"]}
    assert params["metric"]["schema"]["enum"] == list(METRICS)
    assert params["by"]["schema"]["enum"] == list(DIMENSIONS)
    assert params["view"]["schema"]["enum"] == ["primary", "mentions"] and "by=touchpoint" in params["view"]["description"]
    for path, item in paths.items():
        for operation in item.values():
            declared = {p["name"] for p in operation.get("parameters", []) if p["in"] == "path"}
            assert declared == {part.strip("{}") for part in path.split("/") if part.startswith("{")}, path


async def test_a_standalone_aiohttp_app_serves_the_same_handlers(store: Store, settings) -> None:
    seed(store)
    async_store = AsyncStore.from_settings(settings)
    runner = web.AppRunner(build_web_app(async_store, settings))
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        status, body = await get(f"http://127.0.0.1:{port}/api/v1/metrics/csat?by=channel")
        assert status == 200 and body["rows"] == [
            {"channel": "survey", "csat": 0.0, "n": 1, "low_confidence": True}
        ]
    finally:
        await runner.cleanup()
        await async_store.close()
