"""Generic RSS / Atom feeds (review sites, forums, status pages), parsed by feedparser.

feedparser (https://feedparser.readthedocs.io) reads RSS 0.9x/1.0/2.0 and
Atom 0.3/1.0 and normalises them: ``entries[]`` with ``id`` (guid),
``link``, ``title``, ``summary``, ``author``, ``published_parsed`` /
``updated_parsed`` (UTC struct_time). Archived and paged feeds (RFC 5005)
link older pages with ``<link rel="next" href="...">``, which this connector
follows; a plain feed is one page.

params: ``url`` (the feed; absolute, or a path under base_url), ``channel``
(review | social, default review), ``source`` (default ``rss``), ``max_pages``.
"""

from __future__ import annotations

import calendar
from datetime import datetime, timezone
from typing import Any, AsyncIterator

import feedparser

from touchpoint.connectors.framework import Connector, SourceRecord, html_to_text
from touchpoint.connectors.http import Page, link_pages
from touchpoint.core.checkpoints import Cursor
from touchpoint.schemas.signal import CHANNELS, RawSignal


class FeedConnector(Connector):
    """Any RSS/Atom feed; the cursor follows each entry's published (else updated) time."""

    name = "rss"
    source = "rss"
    channel = "review"
    cursor_field = "published"

    def __init__(self, config: Any, settings: Any) -> None:
        super().__init__(config, settings)
        channel = self.params.get("channel", "review")
        if channel not in CHANNELS:
            raise ValueError(f"connector {config.name!r}: params.channel {channel!r} is not one of {CHANNELS}")
        self.channel = channel  # type: ignore[misc]  # per instance: a feed can be reviews or social posts
        self.source = str(self.params.get("source", "rss"))  # type: ignore[misc]

    def records(self, cursor: Cursor | None) -> AsyncIterator[SourceRecord]:
        url = self.required_param("url", "the feed's URL")
        max_pages = int(self.params.get("max_pages", 50))

        def pages(start: str | None) -> AsyncIterator[Page]:
            walk = link_pages(self.http, self.http.url_for(url), parse=feedparser.parse, next_url_of=_next_link, start=start)
            return _limited(walk, max_pages)

        return self.newest_first(pages, cursor, items_of=lambda feed: list(feed.entries), position_of=_when)

    def to_signal(self, entry: Any) -> RawSignal:
        source_id = entry.get("id") or entry.get("link")
        if not source_id:
            raise ValueError("entry has neither an id (guid) nor a link to identify it")
        title = html_to_text(entry.get("title"))
        summary = html_to_text(entry.get("summary") or (entry.get("content") or [{}])[0].get("value"))
        return self.signal(
            source_id=source_id,
            occurred_at=datetime.fromtimestamp(_when(entry), tz=timezone.utc),
            text="\n\n".join(part for part in (title, summary) if part) or None,
            author=entry.get("author") or None,
            url=entry.get("link") or None,
            attributes={"feed": str(self.params.get("url"))},
        )


def _when(entry: Any) -> float:
    stamp = entry.get("published_parsed") or entry.get("updated_parsed")
    if stamp is None:
        raise ValueError("entry has no readable published/updated date")
    return float(calendar.timegm(stamp))


def _next_link(feed: Any) -> str | None:
    for link in feed.feed.get("links", []):
        if link.get("rel") == "next" and link.get("href"):
            return str(link["href"])
    return None


async def _limited(pages: AsyncIterator[Page], limit: int) -> AsyncIterator[Page]:
    """Stop after ``limit`` pages (a misconfigured feed could link to itself forever)."""
    count = 0
    async for page in pages:
        count += 1
        if count >= limit:
            yield Page(page.body, page.token, None)
            return
        yield page
