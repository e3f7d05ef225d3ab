"""Public reviews: Google Business Profile and the Apple App Store (indirect signals).

Star ratings become ``Score(metric="rating", value=1..5, scale 1-5)``, not
CSAT: CSAT (top-2-box) is defined over answers to a satisfaction question the
brand asked (a direct survey signal); a public review's stars are
self-selected and feed their own metric, so mixing them into CSAT would bias
it. The schema's ``rating`` metric carries its scale, so analysts can still
put both side by side.
"""

from __future__ import annotations

import re
from typing import Any, AsyncIterator

from touchpoint.connectors.framework import Connector, SourceRecord
from touchpoint.connectors.http import Page, numbered_pages, token_pages
from touchpoint.core.checkpoints import Cursor
from touchpoint.core.times import parse_timestamp
from touchpoint.schemas.signal import RawSignal, Score

STARS = {"ONE": 1, "TWO": 2, "THREE": 3, "FOUR": 4, "FIVE": 5}


def _epoch(value: str) -> float:
    return parse_timestamp(value).timestamp()


class GoogleBusinessReviews(Connector):
    """Google Business Profile ``accounts.locations.reviews.list`` (OAuth bearer token).

    Docs: https://developers.google.com/my-business/reference/rest/v4/accounts.locations.reviews/list
    ``GET /v4/accounts/{account}/locations/{location}/reviews?pageSize=50&
    orderBy=updateTime desc&pageToken=...`` answers ``{"reviews": [...],
    "averageRating", "totalReviewCount", "nextPageToken"}``. A review has
    ``name``, ``reviewId``, ``reviewer`` (``displayName``,
    ``profilePhotoUrl``, ``isAnonymous``), ``starRating`` (``ONE``..``FIVE``
    or ``STAR_RATING_UNSPECIFIED``), ``comment`` (optional), ``createTime``,
    ``updateTime`` and ``reviewReply``. The cursor follows ``updateTime``; an
    edited review keeps its reviewId, so it stays one signal (first version).

    params: ``account``, ``location`` (ids, required), ``page_size`` (max 50).
    """

    name = "google_business_reviews"
    source = "google_business"
    channel = "review"
    cursor_field = "updateTime"
    default_base_url = "https://mybusiness.googleapis.com"

    def records(self, cursor: Cursor | None) -> AsyncIterator[SourceRecord]:
        account = self.required_param("account", "the Business Profile account id")
        location = self.required_param("location", "the location id")
        path = f"/v4/accounts/{account}/locations/{location}/reviews"
        params = {"pageSize": self.params.get("page_size", 50), "orderBy": "updateTime desc"}

        def pages(start: str | None) -> AsyncIterator[Page]:
            return token_pages(
                self.http, path, params=params, token_param="pageToken",
                next_token_of=lambda body: body.get("nextPageToken"), start=start,
            )  # fmt: skip

        return self.newest_first(
            pages, cursor, items_of=lambda body: body.get("reviews") or [], position_of=lambda r: _epoch(r["updateTime"])
        )

    def to_signal(self, review: dict[str, Any]) -> RawSignal:
        stars = review.get("starRating", "STAR_RATING_UNSPECIFIED")
        if stars != "STAR_RATING_UNSPECIFIED" and stars not in STARS:
            raise ValueError(f"starRating {stars!r} is not ONE..FIVE")
        reviewer = review.get("reviewer") or {}
        attributes = {"location": str(self.params.get("location")), "updated_at": review["updateTime"]}
        if review.get("reviewReply"):
            attributes["replied"] = "true"
        return self.signal(
            source_id=review["reviewId"],
            occurred_at=parse_timestamp(review["createTime"]),
            text=review.get("comment") or None,
            score=Score("rating", STARS[stars], 1, 5) if stars in STARS else None,
            author=None if reviewer.get("isAnonymous") else reviewer.get("displayName"),
            attributes=attributes,
        )


class AppStoreReviews(Connector):
    """Apple App Store customer reviews, the public iTunes RSS feed as JSON (no key).

    URL: ``{base}/{country}/rss/customerreviews/page={n}/id={app}/sortby=mostrecent/json``
    (documented in Apple's RSS feed generator, rss.applemarketingtools.com /
    the iTunes RSS feeds; at most 10 pages of 50). Body: ``{"feed": {"entry":
    [...]}}``; ``entry`` is a list, a single object when there is one review,
    and absent past the last page. Each value is wrapped as ``{"label": ...}``:
    ``id``, ``author.name``, ``author.uri`` (the reviewer's profile URL,
    ``.../reviews/id<digits>``), ``im:rating`` (1-5), ``im:version``,
    ``title``, ``content``, ``updated`` (ISO 8601 with offset), ``im:voteSum``.
    Older feeds put the app itself first on page 1 (``im:name``, no
    ``im:rating``); it is skipped.

    params: ``app_id`` (required), ``country`` (default ``us``), ``max_pages`` (default 10).
    """

    name = "app_store_reviews"
    source = "app_store"
    channel = "review"
    cursor_field = "updated"
    default_base_url = "https://itunes.apple.com"

    def records(self, cursor: Cursor | None) -> AsyncIterator[SourceRecord]:
        app = self.required_param("app_id", "the numeric App Store id")
        country = self.params.get("country", "us")

        def pages(start: str | None) -> AsyncIterator[Page]:
            return numbered_pages(
                self.http, lambda n: f"/{country}/rss/customerreviews/page={n}/id={app}/sortby=mostrecent/json",
                is_empty=lambda body: not _entries(body), last=int(self.params.get("max_pages", 10)), start=start,
            )  # fmt: skip

        return self.newest_first(pages, cursor, items_of=_entries, position_of=lambda e: _epoch(_label(e, "updated")))

    def to_signal(self, entry: dict[str, Any]) -> RawSignal:
        rating = int(_label(entry, "im:rating"))
        title, content = _label(entry, "title", ""), _label(entry, "content", "")
        author = entry.get("author") or {}
        reviewer = re.search(r"/id(\d+)", str((author.get("uri") or {}).get("label", "")))
        attributes = {"app_id": str(self.params.get("app_id")), "country": str(self.params.get("country", "us"))}
        if entry.get("im:version"):
            attributes["app_version"] = _label(entry, "im:version")
        return self.signal(
            source_id=_label(entry, "id"),
            occurred_at=parse_timestamp(_label(entry, "updated")),
            text=f"{title}\n\n{content}".strip() or None,
            score=Score("rating", rating, 1, 5),
            author=(author.get("name") or {}).get("label"),
            customer_id=self.customer("account", reviewer.group(1)) if reviewer else None,
            attributes=attributes,
        )


def _label(entry: dict[str, Any], key: str, default: Any = ...) -> Any:
    """``entry[key]["label"]``; KeyError (a parse error) when required and missing."""
    value = entry.get(key)
    if isinstance(value, dict) and "label" in value:
        return value["label"]
    if default is ...:
        raise KeyError(f"{key}.label")
    return default


def _entries(body: dict[str, Any]) -> list[Any]:
    entries = (body.get("feed") or {}).get("entry") or []
    entries = [entries] if isinstance(entries, dict) else entries
    return [e for e in entries if not (isinstance(e, dict) and "im:name" in e and "im:rating" not in e)]
