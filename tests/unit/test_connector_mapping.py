"""Each polling connector maps the real-shaped payloads (tests/integration/connectors/payloads) field by field."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from touchpoint.connectors.config import ConnectorConfig, build_connector
from touchpoint.connectors.reviews import _entries
from touchpoint.connectors.social import _listing_posts, _posts_with_authors
from touchpoint.core.identity import pseudonymize
from touchpoint.core.settings import Settings
from touchpoint.schemas.signal import Score

PAYLOADS = Path(__file__).resolve().parents[1] / "integration" / "connectors" / "payloads"


def first_page(name: str) -> Any:
    return json.loads((PAYLOADS / f"{name}.json").read_text())["pages"][0]["body"]


def connector(settings: Settings, kind: str, **params: Any) -> Any:
    return build_connector(ConnectorConfig(name="t", type=kind, base_url="http://127.0.0.1:1", brand="acme", params=params), settings)


def test_x_post_gets_handle_from_includes_and_a_pseudonymous_customer(settings: Settings) -> None:
    item = _posts_with_authors(first_page("x_recent_search"))[0]
    signal = connector(settings, "x_recent_search", query="acme").to_signal(item)
    assert signal.author == "@danak" and signal.url == "https://x.com/danak/status/1859871207543517186"
    assert signal.customer_id == pseudonymize("account", "x:2244994945", settings.customer_id_secret)
    assert signal.occurred_at == datetime(2026, 11, 20, 9, 14, 3, tzinfo=timezone.utc)
    assert (signal.channel, signal.kind, signal.source, signal.attributes["lang"]) == ("social", "indirect", "x", "en")
    assert "2244994945" not in signal.kafka_key.decode()


def test_reddit_post_joins_title_and_body(settings: Settings) -> None:
    post = _listing_posts(first_page("reddit_listing"))[0]
    signal = connector(settings, "reddit_listing", subreddit="acme").to_signal(post)
    assert signal.text.startswith("Acme delivery never showed up\n\nTracking says delivered")
    assert signal.author == "u/throwaway_mk" and signal.source_id == "1gvx9k2"
    assert signal.url == "https://www.reddit.com/r/acme/comments/1gvx9k2/acme_delivery_never_showed_up/"
    assert signal.occurred_at.timestamp() == 1763630043.0 and signal.customer_id.startswith("cust_")


def test_mastodon_status_html_becomes_plain_text(settings: Settings) -> None:
    status = first_page("mastodon_hashtag")[0]
    signal = connector(settings, "mastodon_hashtag", hashtag="acme").to_signal(status)
    assert signal.text == "The #acme courier left my parcel in the rain & it was soaked"
    assert signal.author == "@ines@mstdn.example" and signal.attributes == {"language": "en"}


def test_google_review_stars_become_a_rating_not_csat(settings: Settings) -> None:
    reviews = first_page("google_business_reviews")["reviews"]
    gbp = connector(settings, "google_business_reviews", account="1", location="2")
    one = gbp.to_signal(reviews[0])
    assert one.score == Score("rating", 1, 1, 5) and one.author == "Priya S"
    assert one.occurred_at == datetime(2026, 11, 19, 18, 2, 11, 482913, tzinfo=timezone.utc)  # nanos trimmed
    five = gbp.to_signal(reviews[2])
    assert five.score == Score("rating", 5, 1, 5) and five.attributes["replied"] == "true"
    with pytest.raises(ValueError, match="ONE..FIVE"):
        gbp.to_signal({**reviews[0], "starRating": "SIX"})


def test_app_store_skips_the_app_entry_and_reads_labels(settings: Settings) -> None:
    entries = _entries(first_page("app_store_reviews"))
    assert all("im:rating" in e for e in entries)  # the app's own entry is gone
    signal = connector(settings, "app_store_reviews", app_id="1049473288").to_signal(entries[0])
    assert signal.text == "Crashes at checkout\n\nEvery time I tap pay the app closes. Lost my cart twice."
    assert signal.score == Score("rating", 1, 1, 5) and signal.author == "kj_reviews"
    assert signal.customer_id == pseudonymize("account", "app_store:638572168", settings.customer_id_secret)
    assert signal.occurred_at == datetime(2026, 11, 20, 8, 12, 33, tzinfo=timezone.utc)  # -07:00 to UTC
    assert signal.attributes["app_version"] == "4.12.0"
    single = {"feed": {"entry": entries[0]}}  # one review: the feed sends an object, not a list
    assert len(_entries(single)) == 1
