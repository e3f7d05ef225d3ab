"""Field mappings for imports: any export's columns -> raw signals, and --dry-run's preview (no broker)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from touchpoint.connectors.files import preview_file
from touchpoint.connectors.mapping import MappingError, build_mapping
from touchpoint.core.identity import Identity, pseudonymize

SECRET = "id-secret"
IDENTITY = Identity(SECRET)
ISSUE_MAP = ["id=response_id", "occurred_at=submitted_at", "nps=nps", "comment=comment", "email=email"]


def write_csv(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def survey_export(tmp_path: Path) -> Path:
    """A survey tool's export in its own column names (the case the issue could not import)."""
    return write_csv(tmp_path / "export.csv", ["response_id", "submitted_at", "nps", "comment", "email", "first_name"], [
        ["r-1", "2026-11-02T10:15:00Z", "9", "Fast delivery.", "Ann.Smith@Example.com", "Ann"],
        ["r-2", "1793000000", "3", "Parcel was damaged.", "bob@example.com", "Bob"],
        ["r-3", "2026-11-02 11:00:00", "14", "Out of scale.", "", "Cy"],
        ["", "2026-11-02T12:00:00Z", "7", "No id.", "", "Di"],
        ["r-1", "2026-11-02T10:15:00Z", "9", "Fast delivery.", "Ann.Smith@Example.com", "Ann"],
    ])  # fmt: skip


def test_the_issue_export_maps_with_options(tmp_path: Path) -> None:
    preview = preview_file(survey_export(tmp_path), channel="survey", source="acme-survey", brand="acme",
                           identity=IDENTITY, mapping=build_mapping(ISSUE_MAP), show=10)  # fmt: skip
    assert (preview.read, preview.produced, preview.dead_lettered, preview.skipped_duplicates) == (5, 2, 2, 1)
    first, second = preview.records
    assert first["score"] == {"metric": "nps", "value": 9.0, "scale_min": 0, "scale_max": 10}
    assert first["text"] == "Fast delivery." and first["customer_id"] == pseudonymize("email", "ann.smith@example.com", SECRET)
    assert second["occurred_at"].timestamp() == 1793000000  # Unix seconds
    assert first["attributes"] == {}  # unmapped columns (first_name) are not read
    reasons = {number: reason for number, _, reason in preview.letters}
    assert "column 'nps'" in reasons[3] and "outside its scale" in reasons[3]
    assert "column 'response_id' (id) is empty" in reasons[4]
    assert preview.ignored_columns == ["first_name"]
    shown = json.dumps(preview.records, default=str).lower()
    assert "ann.smith" not in shown and '"ann"' not in shown  # neither the email nor the name


def test_a_yaml_mapping_with_scales_identity_touchpoint_brand_and_attributes(tmp_path: Path) -> None:
    mapping_file = tmp_path / "mapping.yaml"
    mapping_file.write_text("""
id: ticket
occurred_at: when
scores:
  - {column: stars, metric: rating, scale: [1, 5]}
  - {column: sat, metric: csat}
comment: [liked, disliked]
identity: {phone: mobile, account: crm}
touchpoint: step
brand: shop
attributes: [store]
""")
    path = write_csv(tmp_path / "t.csv", ["ticket", "when", "stars", "sat", "liked", "disliked", "mobile", "crm", "step", "shop", "store"],
                     [["t-9", "1793000000123", "2", "4", "Staff", "Queue", "(415) 555-0132", "", "checkout", "acme-eu", "berlin-1"]])  # fmt: skip
    [record] = preview_file(path, channel="review", source="s", brand="default", identity=IDENTITY,
                            mapping=build_mapping(["comment=missing_column"], mapping_file)).records  # fmt: skip
    assert record["score"] == {"metric": "rating", "value": 2.0, "scale_min": 1, "scale_max": 5}
    assert record["attributes"] == {"store": "berlin-1", "score.sat": "csat 4"}
    assert record["text"] == "Staff\nQueue" and record["touchpoint_hint"] == "checkout" and record["brand"] == "acme-eu"
    assert record["customer_id"] == pseudonymize("phone", "+14155550132", SECRET)
    assert record["occurred_at"].timestamp() == pytest.approx(1793000000.123)  # Unix milliseconds


def test_nested_jsonl_columns(tmp_path: Path) -> None:
    path = tmp_path / "export.jsonl"
    path.write_text(json.dumps({"uid": "j-1", "at": "2026-11-02T10:00:00Z", "answers": {"ces": 6}, "customer": {"email": "e@x.org"}}) + "\n")
    mapping = build_mapping(["id=uid", "occurred_at=at", "ces=answers.ces", "email=customer.email"])
    [record] = preview_file(path, channel="survey", source="s", brand="b", identity=IDENTITY, mapping=mapping).records
    assert (record["score"]["metric"], record["score"]["value"]) == ("ces", 6.0)
    assert record["customer_id"] == pseudonymize("email", "e@x.org", SECRET)


@pytest.mark.parametrize(
    ("options", "message"),
    [(["nps=nps"], "needs id and occurred_at"), (ISSUE_MAP + ["csat=sat:1-10"], "map it as rating=sat:1-10"),
     (ISSUE_MAP + ["rating=stars"], "a rating needs its scale"), (ISSUE_MAP + ["attribute=email"], "map it under identity"),
     (ISSUE_MAP + ["colour=c"], "is not one of"), (["id"], "is not KEY=COLUMN")],
)  # fmt: skip
def test_mapping_mistakes_say_what_to_write(options: list[str], message: str) -> None:
    with pytest.raises(MappingError, match=message):
        build_mapping(options)


def test_no_mapping_keeps_the_generic_shape() -> None:
    assert build_mapping([], None) is None
