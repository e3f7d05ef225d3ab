"""Zendesk conversation export -> one signal per ticket, customer turns only."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from touchpoint.connectors.conversations import read_zendesk, zendesk_to_signal
from touchpoint.connectors.files import read_lines, to_signal
from touchpoint.core.identity import Identity, pseudonymize
from touchpoint.schemas.signal import InvalidSignal

EXPORT = Path(__file__).parents[1] / "fixtures" / "zendesk_incremental_export.json"
SECRET = "id-secret"


def signals() -> list:
    out = []
    for _, parsed in read_zendesk(EXPORT):
        try:
            out.append(zendesk_to_signal(parsed, channel="chat", source="zendesk", brand="acme", identity=Identity(SECRET)).to_record())
        except InvalidSignal as exc:
            out.append(exc)
    return out


def test_chat_ticket_keeps_customer_turns_agent_and_rating() -> None:
    record = signals()[0]
    assert record["source_id"] == "35436" and record["channel"] == "chat"
    assert "refund for order A-99812" in record["text"] and "two weeks" in record["text"]
    assert "Let me check" not in record["text"] and "Internal note" not in record["text"]  # agent turns stay out
    assert record["text"].endswith("Took three chats to get an answer.")
    assert record["score"] == {"metric": "csat", "value": 1.0, "scale_min": 1, "scale_max": 5}
    assert record["attributes"]["agent_name"] == "Kim Agent" and record["attributes"]["agent_id"] == "235323"
    assert record["attributes"]["satisfaction"] == "bad" and record["attributes"]["customer_turns"] == "2"
    assert record["customer_id"] == pseudonymize("email", "ann.smith@example.com", SECRET)
    assert "ann.smith" not in json.dumps(record, default=str)


def test_email_ticket_uses_the_sender_address_and_good_rating() -> None:
    record = signals()[1]
    assert record["score"]["value"] == 5.0
    assert record["customer_id"] == pseudonymize("email", "bo@example.org", SECRET)
    assert record["text"] == "Parcel arrived a day early, great job."


def test_ticket_with_no_customer_words_and_no_rating_is_invalid() -> None:
    assert isinstance(signals()[2], InvalidSignal) and "neither text nor score" in str(signals()[2])


def test_jsonl_export_and_broken_line(tmp_path: Path) -> None:
    document = json.loads(EXPORT.read_text())
    path = tmp_path / "tickets.jsonl"
    lines = [json.dumps({"users": document["users"]}), json.dumps(document["tickets"][0]), '{"id": ']
    path.write_text("\n".join(lines) + "\n")
    rows = list(read_zendesk(path))
    assert len(rows) == 2 and isinstance(rows[1][1], InvalidSignal)
    signal = zendesk_to_signal(rows[0][1], channel="chat", source="zendesk", brand="acme", identity=Identity(SECRET))
    assert signal.attributes["agent_name"] == "Kim Agent"


@pytest.mark.parametrize(
    ("column", "value", "kind"),
    [("email", "Ann@Example.com", "email"), ("customer_phone", "+1 415 555 0100", "phone"),
     ("customer_id", "ann@example.com", "email"), ("customer_id", "acct-9", "account")],
)  # fmt: skip
def test_file_rows_pseudonymize_identifiers(column: str, value: str, kind: str) -> None:
    row = {"id": "1", "text": "ok", "occurred_at": "2026-11-02", column: value}
    record = to_signal(row, channel="survey", source="csv", brand="acme", identity=Identity(SECRET)).to_record()
    assert record["customer_id"] == pseudonymize(kind, value, SECRET)
    assert value not in json.dumps(record, default=str)


def test_zendesk_format_through_the_file_reader() -> None:
    assert len(list(read_lines(EXPORT, "zendesk"))) == 4


def test_odd_ticket_shape_is_an_invalid_record_not_a_crash() -> None:
    from touchpoint.connectors.conversations import BUILDERS

    odd = {"ticket": {"id": 1, "requester_id": 2, "via": "chat", "comments": [], "description": "hi",
                      "created_at": "2026-11-02T10:00:00Z"}, "users": {}}  # fmt: skip
    with pytest.raises(InvalidSignal, match="unexpected ticket shape"):
        BUILDERS["zendesk"](odd, channel="chat", source="zendesk", brand="acme", identity=Identity(SECRET))
