"""Social posts: X (Twitter) API v2 recent search, Reddit listings, Mastodon hashtags (indirect signals).

All three are newest-first paged sources walked by ``Connector.newest_first``: a
pass reads from the newest post down to where the previous pass began, and a
restart mid-pass continues from the saved page token.

The public author handle goes to ``author``; the platform's account id (never
shown in clear) becomes the pseudonymous ``customer_id``, so one account's
posts stay in one partition.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, AsyncIterator

from touchpoint.connectors.framework import Connector, SourceRecord, html_to_text
from touchpoint.connectors.http import Page, token_pages
from touchpoint.core.checkpoints import Cursor
from touchpoint.core.times import parse_timestamp
from touchpoint.schemas.signal import RawSignal


class XRecentSearch(Connector):
    """X API v2 ``GET /2/tweets/search/recent`` (bearer token; last 7 days).

    Docs: https://docs.x.com/x-api/posts/search-recent-posts (formerly
    developer.twitter.com .../api-reference/get-tweets-search-recent). Response:
    ``data[]`` posts with ``id``, ``text``, ``created_at``, ``author_id``,
    ``lang`` (fields requested with ``tweet.fields``); ``includes.users[]``
    (``id``, ``username``, ``name``) when ``expansions=author_id``;
    ``meta.newest_id`` / ``oldest_id`` / ``result_count`` / ``next_token``.
    Pages go newest to oldest via ``next_token``; ``since_id`` limits a pass
    to posts newer than the last pass. 429 answers carry
    ``x-rate-limit-reset`` (Unix time), which connectors/http.py honours.

    params: ``query`` (required), ``max_results`` (10-100, default 100).
    """

    name = "x_recent_search"
    source = "x"
    channel = "social"
    cursor_field = "id"
    default_base_url = "https://api.x.com"
    path = "/2/tweets/search/recent"

    def records(self, cursor: Cursor | None) -> AsyncIterator[SourceRecord]:
        query = self.required_param("query", "an X search query")
        watermark = (cursor or {}).get("watermark")
        params = {
            "query": query,
            "max_results": self.params.get("max_results", 100),
            "since_id": watermark,
            "tweet.fields": "created_at,author_id,lang,conversation_id",
            "expansions": "author_id",
            "user.fields": "username,name",
        }

        def pages(start: str | None) -> AsyncIterator[Page]:
            return token_pages(
                self.http, self.path, params=params, token_param="next_token",
                next_token_of=lambda body: (body.get("meta") or {}).get("next_token"), start=start,
            )  # fmt: skip

        return self.newest_first(pages, cursor, items_of=_posts_with_authors, position_of=lambda i: int(i["post"]["id"]))

    def to_signal(self, item: dict[str, Any]) -> RawSignal:
        post, user = item["post"], item.get("author") or {}
        post_id = str(post["id"])
        if not post_id.isdigit():
            raise ValueError(f"post id {post_id!r} is not an X id (digits)")
        handle = user.get("username")
        return self.signal(
            source_id=post_id,
            occurred_at=parse_timestamp(post["created_at"]),
            text=post["text"],
            author=f"@{handle}" if handle else None,
            customer_id=self.customer("account", post.get("author_id")),
            url=f"https://x.com/{handle or 'i'}/status/{post_id}",
            attributes={k: str(post[k]) for k in ("lang", "conversation_id") if post.get(k)},
        )


def _posts_with_authors(body: dict[str, Any]) -> list[dict[str, Any]]:
    """Each post with its expanded author (``includes.users`` joined on ``author_id``)."""
    users = {u.get("id"): u for u in (body.get("includes") or {}).get("users", []) if isinstance(u, dict)}
    posts = body.get("data") or []
    return [{"post": p, "author": users.get(p.get("author_id")) if isinstance(p, dict) else None} for p in posts]


class RedditListing(Connector):
    """Reddit listings: a subreddit's ``/r/{sub}/new`` or a search with ``sort=new``.

    Docs: https://www.reddit.com/dev/api/#GET_new and #listings. A listing is
    ``{"kind": "Listing", "data": {"after", "before", "dist", "children":
    [{"kind": "t3", "data": {...}}]}}``; a post (t3) has ``id``, ``name``
    (fullname ``t3_<id>``), ``title``, ``selftext``, ``author``,
    ``author_fullname``, ``created_utc``, ``permalink``, ``subreddit``,
    ``score``, ``num_comments``. ``after`` (a fullname) pages to older posts.
    Default base URL ``https://oauth.reddit.com`` wants an OAuth bearer token
    (token_env); ``https://www.reddit.com`` serves the same JSON without one.
    429 answers carry ``x-ratelimit-reset`` (seconds).

    params: ``subreddit`` (required), ``query`` (optional: search instead of
    new), ``limit`` (default 100).
    """

    name = "reddit_listing"
    source = "reddit"
    channel = "social"
    cursor_field = "created_utc"
    default_base_url = "https://oauth.reddit.com"

    def records(self, cursor: Cursor | None) -> AsyncIterator[SourceRecord]:
        subreddit = self.required_param("subreddit", "the subreddit name, without r/")
        params: dict[str, Any] = {"limit": self.params.get("limit", 100), "raw_json": 1}
        if self.params.get("query"):
            path = f"/r/{subreddit}/search.json"
            params.update(q=self.params["query"], sort="new", restrict_sr=1)
        else:
            path = f"/r/{subreddit}/new.json"

        def pages(start: str | None) -> AsyncIterator[Page]:
            return token_pages(
                self.http, path, params=params, token_param="after",
                next_token_of=lambda body: (body.get("data") or {}).get("after"), start=start,
            )  # fmt: skip

        return self.newest_first(pages, cursor, items_of=_listing_posts, position_of=lambda p: float(p["created_utc"]))

    def to_signal(self, post: dict[str, Any]) -> RawSignal:
        title, body = post["title"], post.get("selftext") or ""
        author = post.get("author")
        public_author = author if author and author != "[deleted]" else None
        return self.signal(
            source_id=post["id"],
            occurred_at=datetime.fromtimestamp(float(post["created_utc"]), tz=timezone.utc),
            text=f"{title}\n\n{body}".strip(),
            author=f"u/{public_author}" if public_author else None,
            customer_id=self.customer("account", post.get("author_fullname")),
            url=f"https://www.reddit.com{post['permalink']}" if post.get("permalink") else None,
            attributes={k: str(post[k]) for k in ("subreddit", "num_comments") if post.get(k) is not None},
        )


def _listing_posts(body: dict[str, Any]) -> list[Any]:
    children = (body.get("data") or {}).get("children") or []
    return [c["data"] if isinstance(c, dict) and isinstance(c.get("data"), dict) else c for c in children]


class MastodonHashtag(Connector):
    """Mastodon (any instance) public hashtag timeline ``GET /api/v1/timelines/tag/:hashtag``.

    Docs: https://docs.joinmastodon.org/methods/timelines/#tag and the Status
    entity (https://docs.joinmastodon.org/entities/Status/). The body is a
    JSON array of statuses, newest first: ``id`` (string, ordered),
    ``created_at``, ``content`` (HTML), ``language``, ``url``, ``account``
    (``id``, ``acct``, ``url``), ``reblog`` (a boost wraps another status; boosts
    are skipped). Older pages: ``max_id`` = the last id of a page (the same
    cursor the ``Link: rel="next"`` header carries). No token needed for public
    timelines on most instances.

    params: ``hashtag`` (required, without #), ``limit`` (max 40),
    ``max_pages`` (how deep a pass walks back; default 10).
    """

    name = "mastodon_hashtag"
    source = "mastodon"
    channel = "social"
    cursor_field = "id"
    default_base_url = "https://mastodon.social"

    def records(self, cursor: Cursor | None) -> AsyncIterator[SourceRecord]:
        hashtag = self.required_param("hashtag", "a hashtag, with or without #").lstrip("#")
        watermark = (cursor or {}).get("watermark")
        params = {"limit": self.params.get("limit", 40), "since_id": watermark}

        def pages(start: str | None) -> AsyncIterator[Page]:
            return token_pages(
                self.http, f"/api/v1/timelines/tag/{hashtag}", params=params, token_param="max_id",
                next_token_of=lambda body: str(body[-1]["id"]) if body else None, start=start,
            )  # fmt: skip

        return self.newest_first(
            pages, cursor, items_of=lambda body: [s for s in body if not (isinstance(s, dict) and s.get("reblog"))],
            position_of=lambda status: int(status["id"]), max_pages=int(self.params.get("max_pages", 10)),
        )  # fmt: skip

    def to_signal(self, status: dict[str, Any]) -> RawSignal:
        account = status["account"]
        return self.signal(
            source_id=status["id"],
            occurred_at=parse_timestamp(status["created_at"]),
            text=html_to_text(status["content"]) or None,
            author=f"@{account['acct']}",
            customer_id=self.customer("account", account.get("url") or account["acct"]),
            url=status.get("url"),
            attributes={"language": status["language"]} if status.get("language") else {},
        )
