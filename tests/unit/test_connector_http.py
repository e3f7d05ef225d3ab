"""The HTTP helper's tables and Retry-After parsing, the checkpoint store, the connectors config."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime
from pathlib import Path

import aiohttp
import pytest

from touchpoint.connectors.config import connector_types, load_config, parse_config
from touchpoint.connectors.http import (
    Action,
    RetryPolicy,
    classify_exception,
    classify_status,
    parse_retry_after,
    retry_after_of,
)
from touchpoint.core.checkpoints import CheckpointStore

NOW = datetime(2026, 11, 20, 9, 0, 0, tzinfo=timezone.utc)
ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("value", "seconds"),
    [("1", 1.0), ("0", 0.0), (" 120 ", 120.0), ("2.5", 2.5), ("-3", 0.0), (None, None), ("", None), ("soon", None)],
)
def test_retry_after_in_seconds(value: str | None, seconds: float | None) -> None:
    assert parse_retry_after(value, NOW) == seconds


def test_retry_after_as_http_date() -> None:
    later = format_datetime(NOW + timedelta(seconds=90), usegmt=True)  # "Fri, 20 Nov 2026 09:01:30 GMT"
    assert parse_retry_after(later, NOW) == 90.0
    assert parse_retry_after(format_datetime(NOW - timedelta(hours=1), usegmt=True), NOW) == 0.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", NOW) == 0.0  # RFC 9110's example, long past


def test_retry_after_wins_over_reset_headers() -> None:
    assert retry_after_of({"Retry-After": "7", "x-ratelimit-reset": "60"}) == 7.0
    assert retry_after_of({"x-ratelimit-reset": "42"}) == 42.0  # Reddit: seconds
    assert retry_after_of({}) is None


@pytest.mark.parametrize(
    ("status", "action"),
    [
        (200, Action.OK), (204, Action.OK), (301, Action.FAIL), (400, Action.FAIL), (401, Action.FAIL),
        (403, Action.FAIL), (404, Action.FAIL), (408, Action.RETRY), (429, Action.RATE_LIMITED),
        (500, Action.RETRY), (501, Action.FAIL), (502, Action.RETRY), (503, Action.RETRY), (504, Action.RETRY),
        (599, Action.RETRY), (199, Action.FAIL),
    ],
)  # fmt: skip
def test_status_table(status: int, action: Action) -> None:
    assert classify_status(status) is action


@pytest.mark.parametrize(
    ("error", "action"),
    [
        (aiohttp.ServerDisconnectedError(), Action.RETRY),
        (aiohttp.ClientPayloadError("cut short"), Action.RETRY),
        (asyncio.TimeoutError(), Action.RETRY),
        (aiohttp.InvalidURL("not a url"), Action.FAIL),
        (aiohttp.ClientResponseError(None, (), status=400), Action.FAIL),  # type: ignore[arg-type]
        (ValueError("anything else"), Action.FAIL),
    ],
)
def test_exception_table(error: BaseException, action: Action) -> None:
    assert classify_exception(error) is action


def test_backoff_grows_with_jitter_and_is_capped() -> None:
    policy = RetryPolicy(backoff_initial_s=0.5, backoff_max_s=4)
    assert all(0.25 <= policy.backoff(1) <= 0.5 for _ in range(50))
    assert all(1.0 <= policy.backoff(3) <= 2.0 for _ in range(50))
    assert all(2.0 <= policy.backoff(20) <= 4.0 for _ in range(50))


def test_checkpoint_round_trip_is_atomic(tmp_path: Path) -> None:
    store = CheckpointStore(tmp_path / "checkpoints")
    assert store.load_sync("x-acme") is None
    store.save_sync("x-acme", {"watermark": 1859871207543517186, "page": "b26v89", "newest": None})
    store.save_sync("x-acme", {"watermark": 1859871207543517186, "page": None, "newest": None})
    assert store.load_sync("x-acme") == {"watermark": 1859871207543517186, "page": None, "newest": None}
    assert [p.name for p in (tmp_path / "checkpoints").iterdir()] == ["x-acme.json"]  # no temp files left
    (tmp_path / "checkpoints" / "x-acme.json").write_text("{half")
    with pytest.raises(ValueError, match="delete it to start over"):
        store.load_sync("x-acme")


def test_example_config_parses_and_names_known_types() -> None:
    configs = load_config(ROOT / "deploy" / "connectors.example.yaml")
    assert {c.type for c in configs} <= set(connector_types())
    assert {c.type for c in configs} == set(connector_types())  # the example shows every type
    assert all(c.brand == "acme" for c in configs)


def test_config_rejects_duplicates_and_inline_secrets() -> None:
    one = {"name": "a", "type": "rss", "params": {"url": "http://x"}}
    with pytest.raises(ValueError, match="unique"):
        parse_config({"connectors": [one, one]})
    with pytest.raises(ValueError, match="token_env"):
        parse_config({"connectors": [{**one, "headers": {"Authorization": "Bearer s3cret"}}]})
    with pytest.raises(ValueError, match="poll_interval_s"):
        parse_config({"connectors": [{**one, "poll_interval_s": 0}]})
    assert json.loads(parse_config({"connectors": [one]})[0].model_dump_json())["name"] == "a"
