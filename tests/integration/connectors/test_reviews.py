"""Google Business Profile reviews and App Store reviews through the standard connector suite."""

from __future__ import annotations

from pathlib import Path

from touchpoint.connectors.testing import ConnectorSuite, path_key, query_key

PAYLOADS = Path(__file__).parent / "payloads"


class TestGoogleBusinessReviews(ConnectorSuite):
    connector_type = "google_business_reviews"
    payloads = PAYLOADS / "google_business_reviews.json"
    params = {"account": "106874535128423851", "location": "4930234235923489", "page_size": 3}
    page_key = query_key("pageToken")


class TestAppStoreReviews(ConnectorSuite):
    connector_type = "app_store_reviews"
    payloads = PAYLOADS / "app_store_reviews.json"
    params = {"app_id": "1049473288", "country": "us"}
    page_key = path_key(r"/page=(\d+)/")
    token = None  # a public feed: no credential
