"""Explanation terms (pipeline/alerts/words.py): Monroe et al.'s weighted log-odds, by hand, and the
windows and grid the detector evaluates on (pipeline/alerts/series.py, detect.py)."""

from __future__ import annotations

import math
from collections import Counter
from datetime import datetime, timedelta, timezone

import pytest

from touchpoint.core.settings import Settings
from touchpoint.pipeline.alerts.detect import evaluation_q, window_end
from touchpoint.pipeline.alerts.series import Windows, alert_metrics
from touchpoint.pipeline.alerts.words import over_represented, representative, terms, tokens, weighted_log_odds


def test_weighted_log_odds_matches_the_formula_by_hand() -> None:
    # Monroe, Colaresi & Quinn (2008), eq. 16 and 18, with alpha_0 = 10 spread like the background (5 + 5):
    # delta_late = log((8+5)/(10+10-8-5)) - log((2+5)/(10+10-2-5)) = 2 log(13/7); var = 1/13 + 1/7.
    scored = weighted_log_odds(Counter(late=8, good=2), Counter(late=2, good=8), prior_tokens=10)
    assert scored["late"].log_odds == pytest.approx(2 * math.log(13 / 7))
    assert scored["late"].z == pytest.approx(2.6409, abs=1e-4)
    assert scored["good"].z == pytest.approx(-2.6409, abs=1e-4)
    assert (scored["late"].window_count, scored["late"].baseline_count) == (8, 2)


def test_the_prior_keeps_a_rare_word_below_a_frequent_one() -> None:
    window = Counter({"refund": 60, "zebra": 2, "order": 100})
    baseline = Counter({"refund": 10, "order": 500})
    scored = weighted_log_odds(window, baseline)
    assert scored["refund"].z > scored["zebra"].z > 0 > scored["order"].z


def test_terms_are_words_and_phrases_without_stop_words_or_placeholders() -> None:
    text = "My refund for order [ORDER] never arrived, email me at [EMAIL]!"
    assert tokens(text) == ["my", "refund", "for", "order", "never", "arrived", "email", "me", "at"]
    found = terms(text)
    assert {"refund", "order", "never arrived", "email"} <= set(found)
    # no stop words, no placeholder, and no phrase across a placeholder or punctuation
    assert not {"my", "for", "me", "at", "[order]", "order never", "arrived email"} & set(found)


def test_over_represented_terms_and_representative_verbatims() -> None:
    window = ["the courier left my parcel in the rain"] * 20 + ["love the new app design"] * 20
    baseline = ["love the new app design"] * 80 + ["checkout was quick"] * 40
    top = over_represented(window, baseline, limit=5)
    assert top and top[0].term in {"courier", "parcel", "rain", "courier left", "left parcel", "parcel rain", "left"}
    assert all(t.z > 1.96 for t in top) and "love" not in {t.term for t in top}
    quotes = representative(window + ["short"], top, limit=3)
    assert quotes[0] == "the courier left my parcel in the rain" and "short" not in quotes and len(quotes) == 2


def test_weekly_windows_take_the_same_hours_of_earlier_weeks() -> None:
    end = datetime(2026, 11, 20, 18, tzinfo=timezone.utc)
    weekly = Windows(end, timedelta(hours=3), "weekly", 4)
    assert weekly.bounds(0) == (end - timedelta(hours=3), end)
    assert weekly.bounds(2) == (end - timedelta(days=14, hours=3), end - timedelta(days=14))
    trailing = Windows(end, timedelta(hours=24), "trailing", 7)
    assert trailing.bounds(1) == (end - timedelta(hours=48), end - timedelta(hours=24))
    assert list(weekly.slots()) == [0, 1, 2, 3, 4]


def test_windows_end_on_the_grid_after_settling() -> None:
    settings = Settings(alert_step_min=15, alert_settle_min=10)
    at = datetime(2026, 11, 20, 18, 7, 30, tzinfo=timezone.utc)
    assert window_end(at, settings) == datetime(2026, 11, 20, 17, 45, tzinfo=timezone.utc)
    assert window_end(at + timedelta(minutes=3), settings) == datetime(2026, 11, 20, 18, 0, tzinfo=timezone.utc)
    # 0.5 false alarms a week over 672 evaluations of 15 minutes
    assert evaluation_q(settings) == pytest.approx(0.5 / 672)


def test_alert_metrics_refuse_an_emotion_that_is_not_a_name() -> None:
    assert {m.key for m in alert_metrics(["anger"])} == {"volume_spike", "volume_drop", "sentiment", "nps", "csat", "anger"}
    with pytest.raises(ValueError, match="not an emotion name"):
        alert_metrics(["anger'); DROP TABLE signals; --"])
