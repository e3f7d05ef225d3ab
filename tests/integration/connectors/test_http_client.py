"""connectors/http.py against a real aiohttp server on 127.0.0.1: waits, failures, the rate limiter."""

from __future__ import annotations

import socket

import pytest

from touchpoint.connectors.http import HttpClient, HttpFailure, RateLimited, RetryPolicy
from touchpoint.connectors.testing import LocalSource, query_key

PAGES = {None: {"ok": True}, "2": {"ok": 2}}
FAST = RetryPolicy(max_attempts=3, backoff_initial_s=0.01, backoff_max_s=0.05, max_retry_after_s=5)


async def test_long_retry_after_ends_the_call_with_typed_exception() -> None:
    async with LocalSource(PAGES, query_key("page")) as server, HttpClient(server.base_url, name="t", policy=FAST) as http:
        server.fail(None, 429, {"Retry-After": "3600"})
        with pytest.raises(RateLimited) as caught:
            await http.get_json("/feed")
        assert caught.value.retry_after == 3600.0
        assert [hit.status for hit in server.hits] == [429]  # no retry before the hour is up


async def test_auth_failure_is_not_retried_and_never_shows_the_token() -> None:
    async with LocalSource(PAGES, query_key("page"), require_headers={"Authorization": "Bearer right"}) as server:
        async with HttpClient(server.base_url, name="t", headers={"Authorization": "Bearer wrong-s3cret"}, policy=FAST) as http:
            with pytest.raises(HttpFailure) as caught:
                await http.get_json("/feed")
    assert caught.value.status == 401 and "token_env" in str(caught.value)
    assert "s3cret" not in str(caught.value) and len(server.hits) == 1


async def test_server_errors_retry_until_attempts_run_out() -> None:
    async with LocalSource(PAGES, query_key("page")) as server, HttpClient(server.base_url, name="t", policy=FAST) as http:
        server.fail("2", 503, times=2)
        assert await http.get_json("/feed", {"page": 2}) == {"ok": 2}  # third attempt succeeds
        server.fail("2", 502, times=3)
        with pytest.raises(HttpFailure, match="502 after 3 attempt"):
            await http.get_json("/feed", {"page": 2})


async def test_connection_refused_is_retried_then_reported() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed when the block ends: nothing listens there
    async with HttpClient(f"http://127.0.0.1:{port}", name="t", policy=FAST) as http:
        with pytest.raises(HttpFailure, match="failed"):
            await http.get_json("/feed")


async def test_rate_limiter_spaces_requests() -> None:
    async with LocalSource(PAGES, query_key("page")) as server:
        async with HttpClient(server.base_url, name="t", rate_per_s=4, policy=FAST) as http:
            for _ in range(3):
                await http.get_json("/feed")
    gaps = [later.at - earlier.at for earlier, later in zip(server.hits, server.hits[1:])]
    # 4 per second: request starts 0.25 s apart; arrivals may differ by loopback transit (allow 50 ms)
    assert all(gap >= 0.2 for gap in gaps), gaps
