"""A paged Atom feed (RFC 5005 rel=next) through the standard connector suite."""

from __future__ import annotations

from pathlib import Path

from touchpoint.connectors.testing import ConnectorSuite, LocalSource, query_key, read_topic, run_pass

PAYLOADS = Path(__file__).parent / "payloads"


class TestAtomFeed(ConnectorSuite):
    connector_type = "rss"
    payloads = PAYLOADS / "rss_atom.json"
    params = {"url": "{base_url}/feeds/reviews.atom", "channel": "review", "source": "reviewhub"}
    page_key = query_key("page")
    token = None


RSS2 = """<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0" xmlns:dc="http://purl.org/dc/elements/1.1/">
<channel>
  <title>Acme community forum: complaints</title>
  <link>https://forum.example/c/complaints</link>
  <description>Latest topics</description>
  <item>
    <title>Refund still missing</title>
    <link>https://forum.example/t/refund-still-missing/812</link>
    <guid isPermaLink="false">forum.example-topic-812</guid>
    <pubDate>Thu, 19 Nov 2026 16:05:00 +0000</pubDate>
    <dc:creator>maria_k</dc:creator>
    <description><![CDATA[<p>Returned my order <b>three weeks</b> ago &amp; no refund yet.</p>]]></description>
  </item>
  <item>
    <title>Great onboarding call</title>
    <link>https://forum.example/t/great-onboarding-call/811</link>
    <pubDate>Thu, 19 Nov 2026 11:00:00 GMT</pubDate>
    <description>The setup call was quick and friendly.</description>
  </item>
</channel>
</rss>
"""


async def test_rss2_items_map_guid_date_author_and_plain_text(live_settings, monkeypatch) -> None:
    kit = TestAtomFeed()
    server = LocalSource({None: RSS2}, query_key("page"), content_type="application/rss+xml")
    async with server:
        connector = kit.connector(live_settings, server, monkeypatch)
        stats = await run_pass(connector, live_settings)
    assert (stats.produced, stats.dead_lettered) == (2, 0)
    signals = {v["source_id"]: v for _, v in await read_topic(live_settings, live_settings.topic_raw, "raw_signal")}
    first = signals["forum.example-topic-812"]  # the guid, not the link
    assert first["text"] == "Refund still missing\n\nReturned my order three weeks ago & no refund yet."
    assert first["author"] == "maria_k" and first["occurred_at"].isoformat() == "2026-11-19T16:05:00+00:00"
    assert first["channel"] == "review" and first["kind"] == "indirect" and first["source"] == "reviewhub"
    assert "https://forum.example/t/great-onboarding-call/811" in signals  # no guid: the link identifies it
