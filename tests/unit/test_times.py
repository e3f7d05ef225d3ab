"""The one time parser: every form a source or a person sends, and the rule for times without a zone."""

from datetime import datetime, timedelta, timezone

import pytest

from touchpoint.core.times import InvalidTime, parse_time_expression, parse_timestamp
from touchpoint.schemas.signal import InvalidSignal

UTC = timezone.utc
NOON = datetime(2026, 11, 2, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    "value",
    ["2026-11-02T12:00:00Z", "2026-11-02T12:00:00+00:00", "2026-11-02T13:00:00+01:00", "2026-11-02 12:00:00",
     "2026-11-02T12:00:00", 1793620800, 1793620800.0, "1793620800", 1793620800000, datetime(2026, 11, 2, 12, 0)],
)  # fmt: skip
def test_every_accepted_form_gives_the_same_aware_utc_time(value) -> None:
    stamp = parse_timestamp(value)
    assert stamp == NOON and stamp.tzinfo == UTC  # a time without a zone is UTC, on every path


@pytest.mark.parametrize(
    ("value", "message"),
    [(None, "submitted_at is missing"), ("", "submitted_at is missing"), ("yesterday", "not ISO 8601"),
     (True, "not a time"), ("0001-01-01", "outside 1970..2200"), (1e20, "not a Unix time")],
)  # fmt: skip
def test_bad_times_name_the_field_and_what_is_accepted(value, message: str) -> None:
    with pytest.raises(InvalidTime, match=message) as caught:
        parse_timestamp(value, "submitted_at")
    assert isinstance(caught.value, InvalidSignal)  # a bad time in a record dead-letters that record


def test_people_type_spans_dates_and_times() -> None:
    assert parse_time_expression("7d", now=NOON) == NOON - timedelta(days=7)
    assert parse_time_expression("24h", now=NOON) == NOON - timedelta(hours=24)
    assert parse_time_expression("2026-11-02") == datetime(2026, 11, 2, tzinfo=UTC)
    for bad, message in (("99999999999d", "before year 1"), ("0001-01-01", "outside 1970..2200"), ("soon", "not a date")):
        with pytest.raises(ValueError, match=message):
            parse_time_expression(bad)


@pytest.mark.parametrize(
    ("value", "seconds"), [("90s", 90), ("30m", 1800), ("4h", 14400), ("2d", 172800), ("1w", 604800), ("1.5h", 5400), (600, 600)]
)
def test_durations_a_person_writes(value, seconds: float) -> None:
    from touchpoint.core.times import parse_duration

    assert parse_duration(value).total_seconds() == seconds


@pytest.mark.parametrize("value", ["soon", "4 hours", "-1h", 0, True, None, "0m"])
def test_bad_durations_say_what_is_accepted(value) -> None:
    from touchpoint.core.times import parse_duration

    with pytest.raises(ValueError, match="sla"):
        parse_duration(value, "sla")
