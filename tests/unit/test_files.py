import json

import pytest

from touchpoint.connectors.files import read_lines, to_signal
from touchpoint.core.identity import Identity
from touchpoint.schemas.signal import InvalidSignal

IDENTITY = Identity("test-secret")


def test_generic_shape_maps_to_raw_signal() -> None:
    signal = to_signal(
        {"id": "42", "text": "Slow checkout", "nps": "3", "occurred_at": "2026-11-02T10:15:00Z",
         "touchpoint": "checkout", "store": "berlin-1"},
        channel="survey", source="typeform", brand="acme", identity=IDENTITY,
    )  # fmt: skip
    record = signal.to_record()
    assert record["score"] == {"metric": "nps", "value": 3.0, "scale_min": 0, "scale_max": 10}
    assert record["touchpoint_hint"] == "checkout"
    assert record["attributes"] == {"store": "berlin-1"}
    assert record["occurred_at"].tzinfo is not None


@pytest.mark.parametrize(
    ("obj", "message"),
    [
        ({"text": "no id", "occurred_at": "2026-11-02"}, "id is missing"),
        ({"id": "1", "text": "x", "occurred_at": "last tuesday"}, "not ISO 8601"),
        ({"id": "1", "text": "x"}, "occurred_at is missing"),
        ({"id": "1", "csat": "great", "occurred_at": "2026-11-02"}, "not a number"),
    ],
)
def test_bad_records_say_what_to_fix(obj: dict, message: str) -> None:
    with pytest.raises(InvalidSignal, match=message):
        to_signal(obj, channel="survey", source="typeform", brand="acme", identity=IDENTITY).to_record()


def test_jsonl_reader_keeps_bad_lines_as_errors(tmp_path) -> None:
    path = tmp_path / "in.jsonl"
    path.write_bytes(b'{"id": "1"}\n\n[1, 2]\n{"id": \n')
    rows = list(read_lines(path, "jsonl"))
    assert [isinstance(parsed, InvalidSignal) for _, parsed in rows] == [False, True, True]
    assert rows[2][0] == b'{"id": '


def test_csv_reader(tmp_path) -> None:
    path = tmp_path / "in.csv"
    path.write_text("id,text,csat,occurred_at\n7,\"Great, thanks\",5,2026-11-02\n")
    [(payload, parsed)] = list(read_lines(path, "csv"))
    assert parsed == {"id": "7", "text": "Great, thanks", "csat": "5", "occurred_at": "2026-11-02"}
    assert json.dumps(parsed)
