"""Intercom conversations: by webhook and by a polling backfill, one chat signal per conversation.

Shapes from Intercom's OpenAPI description (github.com/intercom/Intercom-OpenAPI,
``descriptions/2.11``): a conversation has ``id``, ``created_at`` and
``updated_at`` (Unix seconds), ``source`` (the opening message: ``body`` HTML
and ``author`` {``type``, ``id``, ``name``, ``email``}), ``contacts.contacts[]``
(``id``, ``external_id``), ``state``, ``admin_assignee_id``,
``team_assignee_id``, ``tags``, ``conversation_rating`` (``rating`` 1-5,
``remark``, ``teammate``) and, when retrieved one by one,
``conversation_parts.conversation_parts[]`` (``part_type``, ``body`` HTML,
``author``).

Mapping (:func:`conversation_to_signal`): the text is the customer's own turns
only (the opening message and every part authored by a ``user``, ``lead`` or
``contact``), HTML stripped, plus the rating's remark; the conversation rating
is CSAT 1-5; the customer is the customer author's email, else the contact's
``external_id`` (the brand's own user id), else the Intercom contact id
(namespaced). Teammates' turns and notes never enter the text.

Webhook (``POST /webhooks/intercom``, developers.intercom.com "Webhooks"):
``{"type": "notification_event", "topic", "id", "created_at", "data":
{"type": "notification_event_data", "item": conversation}}`` for
``conversation.user.created``, ``conversation.user.replied``,
``conversation.admin.closed`` and ``conversation.rating.added``; other topics
(``ping`` included) are answered 200 and skipped. Signed ``X-Hub-Signature:
sha1=HEX(HMAC-SHA1(app client secret, raw body))``. With
``TOUCHPOINT_INTERCOM_ACCESS_TOKEN`` set, the receiver fetches the whole
conversation (``GET /conversations/{id}``), since a notification may carry
only its newest parts; every delivery is the same signal_id, the latest wins.

Polling (``intercom_conversations``): ``POST /conversations/search`` for
``updated_at`` at or after the newest update of the last finished pass,
cursor-paged by ``pages.next.starting_after`` (a cursor, so pages do not
shift), then ``GET /conversations/{id}`` for each conversation's parts.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import TYPE_CHECKING, Any, AsyncIterator, Mapping

from touchpoint.connectors.framework import Connector, SourceRecord, html_to_text
from touchpoint.connectors.http import HttpFailure
from touchpoint.connectors.surveys import (
    Ignored,
    ParseContext,
    SurveyTool,
    check_signature_header,
    join_text,
    require_dict,
    scored,
)  # fmt: skip
from touchpoint.core.checkpoints import Cursor
from touchpoint.core.identity import Identity
from touchpoint.core.times import parse_timestamp
from touchpoint.schemas.signal import InvalidSignal, RawSignal

if TYPE_CHECKING:
    from touchpoint.connectors.http import HttpClient
    from touchpoint.core.settings import Settings

API_VERSION = "2.11"  # the Intercom-Version these shapes come from
CUSTOMER_AUTHORS = frozenset({"user", "lead", "contact"})
TOPICS = frozenset({"conversation.user.created", "conversation.user.replied", "conversation.admin.closed",
                    "conversation.rating.added"})  # fmt: skip


def _parts(conversation: Mapping[str, Any]) -> list[dict[str, Any]]:
    parts = (conversation.get("conversation_parts") or {}).get("conversation_parts") or []
    return [p for p in parts if isinstance(p, dict)]


def conversation_to_signal(conversation: Any, *, brand: str, identity: Identity) -> RawSignal:
    """One Intercom conversation (with its parts) as one chat signal (module docstring)."""
    conversation = require_dict(conversation, "the conversation")
    if not conversation.get("id"):
        raise InvalidSignal("conversation id is missing; it identifies the conversation")
    turns = [conversation.get("source") or {}, *_parts(conversation)]
    customer_turns = [t for t in turns if (t.get("author") or {}).get("type") in CUSTOMER_AUTHORS and t.get("body")]
    texts = [html_to_text(t["body"]) for t in customer_turns]
    rating = conversation.get("conversation_rating") or {}
    score = scored("csat", rating["rating"]) if isinstance(rating, dict) and rating.get("rating") is not None else None
    if isinstance(rating, dict) and rating.get("remark"):
        texts.append(str(rating["remark"]))
    contacts = (conversation.get("contacts") or {}).get("contacts") or [{}]
    contact = contacts[0] if isinstance(contacts[0], dict) else {}
    email = next((t["author"].get("email") for t in customer_turns if t["author"].get("email")), None)
    customer = identity.customer_id(email=email, account=contact.get("external_id")) or identity.of(
        "account", contact.get("id"), "intercom"
    )
    attributes = {
        "state": str(conversation.get("state") or ""), "customer_turns": str(len(customer_turns)),
        "agent_id": str(conversation.get("admin_assignee_id") or ""), "team_id": str(conversation.get("team_assignee_id") or ""),
        "tags": ",".join(t.get("name", "") for t in (conversation.get("tags") or {}).get("tags") or [] if isinstance(t, dict)),
    }  # fmt: skip
    return RawSignal(
        source="intercom", source_id=str(conversation["id"]), channel="chat", brand=brand,
        occurred_at=parse_timestamp(conversation.get("created_at"), "created_at"), text=join_text(texts),
        score=score, customer_id=customer, attributes={k: v for k, v in attributes.items() if v},
    )  # fmt: skip


# ---------------------------------------------------------------- webhook


def sign_intercom(body: bytes, client_secret: str) -> str:
    return "sha1=" + hmac.new(client_secret.encode(), body, hashlib.sha1).hexdigest()


def verify_intercom(body: bytes, headers: Mapping[str, str], secret: str, now: float, tolerance_s: float) -> None:
    check_signature_header(headers, "X-Hub-Signature", sign_intercom(body, secret))


async def fetch_intercom(notification: Any, ctx: ParseContext, http: "HttpClient | None") -> dict[str, Any]:
    """The notification's conversation, whole from the API when a token is set (module docstring)."""
    notification = require_dict(notification, "the Intercom notification")
    if notification.get("topic") not in TOPICS:
        raise Ignored(f"topic {notification.get('topic')!r} is not a conversation reply, close or rating")
    item = require_dict((notification.get("data") or {}).get("item"), "data.item")
    if http is None or not item.get("id"):
        return item
    return require_dict(await http.get_json(f"/conversations/{item['id']}"), "the conversation")


def parse_intercom(conversation: Any, ctx: ParseContext) -> RawSignal:
    return conversation_to_signal(conversation, brand=ctx.brand, identity=ctx.identity)


def _api(settings: "Settings") -> tuple[str, dict[str, str]] | None:
    token = settings.intercom_access_token
    if not token:
        return None
    return settings.intercom_base_url, {"Authorization": f"Bearer {token}", "Intercom-Version": API_VERSION}


WEBHOOK = SurveyTool("intercom", "intercom_client_secret", verify_intercom, parse_intercom, fetch=fetch_intercom, api=_api)


# ---------------------------------------------------------------- polling


class IntercomConversations(Connector):
    """Search conversations by ``updated_at``, then get each with its parts (module docstring).

    Cursor: ``since`` (the pass's lower bound, Unix seconds), ``seen`` (ids
    already sent at exactly ``since``: search has no "at or after", so the
    pass asks for ``> since - 1`` and skips those), ``page`` (the next
    ``starting_after`` of an unfinished pass) and ``newest``/``newest_ids``
    (what the unfinished pass has seen). params: ``per_page`` (max 150,
    default 50), ``since`` (first pass only: ISO 8601 or Unix seconds).
    token_env: an access token.
    """

    name = "intercom_conversations"
    source = "intercom"
    channel = "chat"
    cursor_field = "updated_at"
    default_base_url = "https://api.intercom.io"

    def auth_headers(self, token: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}", "Intercom-Version": API_VERSION}  # the version the shapes follow

    async def records(self, cursor: Cursor | None) -> AsyncIterator[SourceRecord]:  # type: ignore[override]  # an async generator
        state = dict(cursor or {})
        first = self.params.get("since")
        since = state.get("since", int(parse_timestamp(first, "params.since").timestamp()) if first else None)
        seen = set(state.get("seen") or [])
        newest, newest_ids = state.get("newest"), list(state.get("newest_ids") or [])
        token = state.get("page")
        query = {"field": "updated_at", "operator": ">", "value": str(since - 1 if since is not None else 0)}
        while True:
            pagination = {"per_page": int(self.params.get("per_page", 50)), "starting_after": token}
            body = await self.http.post_json("/conversations/search", {"query": query, "pagination": pagination})
            for listed in body.get("conversations") or []:
                updated = listed.get("updated_at")
                if since is not None and updated is not None and (updated < since or (updated == since and listed.get("id") in seen)):
                    continue  # already sent by an earlier pass
                if updated is not None and (newest is None or updated >= newest):
                    newest_ids = (newest_ids if updated == newest else []) + [listed.get("id")]
                    newest = updated
                yield await self._whole(listed)
            token = ((body.get("pages") or {}).get("next") or {}).get("starting_after")
            if not token:
                done = newest is not None and (since is None or newest >= since)
                yield SourceRecord.checkpoint({"since": newest, "seen": newest_ids} if done else {"since": since, "seen": sorted(seen)})
                return
            yield SourceRecord.checkpoint({"since": since, "seen": sorted(seen), "page": token, "newest": newest, "newest_ids": newest_ids})

    async def _whole(self, listed: dict[str, Any]) -> SourceRecord:
        """The listed conversation with its parts (404: it was deleted since; a dead letter says so)."""
        if not listed.get("id"):
            return SourceRecord(listed, error="a listed conversation has no id, so its parts cannot be fetched")
        try:
            return SourceRecord(await self.http.get_json(f"/conversations/{listed['id']}"))
        except HttpFailure as exc:
            if exc.status == 404:
                return SourceRecord(listed, error=f"conversation {listed['id']} is gone (404) since it was listed")
            raise

    def to_signal(self, item: dict[str, Any]) -> RawSignal:
        return conversation_to_signal(item, brand=self.brand, identity=self.identity)
