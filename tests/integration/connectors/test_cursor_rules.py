"""The cursor rules of newest-first sources, on Reddit listings (time positions) from a real local server.

Pages are shaped like Reddit's /r/{subreddit}/new.json Listing (reddit.com/dev/api#GET_new);
see payloads/reddit_listing.json for a full example.
"""

from __future__ import annotations

import asyncio
from contextlib import suppress
from typing import Any

from prometheus_client import REGISTRY

from touchpoint.connectors.testing import ConnectorSuite, LocalSource, query_key, read_topic, run_pass
from touchpoint.core.settings import Settings


def post(post_id: str, created_utc: float, title: str) -> dict[str, Any]:
    return {"kind": "t3", "data": {
        "id": post_id, "name": f"t3_{post_id}", "title": title, "selftext": "", "author": f"u_{post_id}",
        "author_fullname": f"t2_{post_id}", "created_utc": created_utc, "permalink": f"/r/acme/comments/{post_id}/",
        "subreddit": "acme", "score": 1, "num_comments": 0,
    }}  # fmt: skip


def listing(posts: list[dict[str, Any]], after: str | None) -> dict[str, Any]:
    return {"kind": "Listing", "data": {"after": after, "dist": len(posts), "children": posts}}


class Reddit(ConnectorSuite):
    connector_type = "reddit_listing"
    params = {"subreddit": "acme", "limit": 2}
    page_key = query_key("after")

    def serve(self, pages: dict[str | None, Any]) -> LocalSource:
        return LocalSource(pages, type(self).page_key, "application/json", {"Authorization": f"Bearer {self.token}"})


async def ids_in_topic(settings: Settings) -> list[str]:
    return sorted(record["source_id"] for _, record in await read_topic(settings, settings.topic_raw, "raw_signal"))


async def test_a_late_item_that_shares_the_watermark_time_is_not_lost(live_settings: Settings, monkeypatch) -> None:
    suite = Reddit()
    first = {None: listing([post("a", 100.0, "first at 100"), post("b", 90.0, "older")], None)}
    async with suite.serve(first) as server:
        assert (await run_pass(suite.connector(live_settings, server, monkeypatch), live_settings)).produced == 2
    # the source now also shows a post from the same second as the watermark, which arrived late
    later = {None: listing([post("d", 110.0, "new"), post("c", 100.0, "late, same second")], "t3_c"),
             "t3_c": listing([post("a", 100.0, "first at 100"), post("b", 90.0, "older")], None)}  # fmt: skip
    async with suite.serve(later) as server:
        stats = await run_pass(suite.connector(live_settings, server, monkeypatch), live_settings)
    assert stats.produced == 2, stats  # d and c; a (seen at the watermark) and b (older) are not re-sent
    assert await ids_in_topic(live_settings) == ["a", "b", "c", "d"]


async def test_an_expired_page_token_falls_back_to_the_time_cursor(live_settings: Settings, monkeypatch) -> None:
    suite = Reddit()
    pages = {None: listing([post("p5", 500.0, "five"), post("p4", 400.0, "four")], "t3_p4"),
             "t3_p4": listing([post("p3", 300.0, "three"), post("p2", 200.0, "two")], "t3_p2"),
             "t3_p2": listing([post("p1", 100.0, "one")], None)}  # fmt: skip
    before = REGISTRY.get_sample_value("touchpoint_connector_page_token_resets_total", {"connector": "under-test"}) or 0
    async with suite.serve(pages) as server:
        server.hold("t3_p2")  # the first pass dies while fetching page 3: its cursor keeps token t3_p2
        crashed = asyncio.create_task(run_pass(suite.connector(live_settings, server, monkeypatch), live_settings))
        while not server.hits_for("t3_p2"):
            await asyncio.sleep(0.05)
        crashed.cancel()
        with suppress(asyncio.CancelledError):
            await crashed
        # Meanwhile a new post arrived, the page boundaries moved and the saved token expired: the
        # source refuses it (400), and a fresh walk from the top gets tokens of its own.
        server.fail("t3_p2", 400, times=1)
        server.pages.clear()
        server.pages.update({
            None: listing([post("p6", 600.0, "six"), post("p5", 500.0, "five")], "t3_p5"),
            "t3_p5": listing([post("p4", 400.0, "four"), post("p3", 300.0, "three")], "t3_p3"),
            "t3_p3": listing([post("p2", 200.0, "two"), post("p1", 100.0, "one")], None),
        })  # fmt: skip
        stats = await run_pass(suite.connector(live_settings, server, monkeypatch), live_settings)
    assert stats.errors == 0 and stats.checkpoints >= 1
    # nothing lost; what the fresh walk read twice is the same signal (same signal_id), stored once
    assert sorted(set(await ids_in_topic(live_settings))) == ["p1", "p2", "p3", "p4", "p5", "p6"]
    after = REGISTRY.get_sample_value("touchpoint_connector_page_token_resets_total", {"connector": "under-test"})
    assert after - before == 1
