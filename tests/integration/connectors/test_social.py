"""X recent search and Reddit listings through the standard connector suite (real broker, local HTTP)."""

from __future__ import annotations

from pathlib import Path

from touchpoint.connectors.testing import ConnectorSuite, query_key

PAYLOADS = Path(__file__).parent / "payloads"


class TestXRecentSearch(ConnectorSuite):
    connector_type = "x_recent_search"
    payloads = PAYLOADS / "x_recent_search.json"
    params = {"query": "acme -is:retweet", "max_results": 10}
    page_key = query_key("next_token")


class TestRedditListing(ConnectorSuite):
    connector_type = "reddit_listing"
    payloads = PAYLOADS / "reddit_listing.json"
    params = {"subreddit": "acme", "limit": 3}
    page_key = query_key("after")


class TestMastodonHashtag(ConnectorSuite):
    connector_type = "mastodon_hashtag"
    payloads = PAYLOADS / "mastodon_hashtag.json"
    params = {"hashtag": "acme", "limit": 3}
    page_key = query_key("max_id")
    token = None  # public timeline
