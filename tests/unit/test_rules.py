"""Routing rules: the file a CX lead edits is checked line by line, every condition routes as
documented, and an edit takes effect without a restart (a broken edit keeps the last good rules).

Signals are enriched records in the shape the worker stores (tests/cx_rows.py builds them from the
Avro schema's fields) or the shape `touchpoint enrich` writes (its README contract)."""

from __future__ import annotations

import json
import os
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from tests.cx_rows import T0, signal
from touchpoint.cli import main
from touchpoint.pipeline.rules import RulesError, RulesSource, SignalFacts, load_rules, load_vocabulary, parse_rules
from touchpoint.samples import sample_path


@pytest.fixture(scope="module")
def vocabulary():
    return load_vocabulary()


def facts(**fields) -> SignalFacts:
    return SignalFacts.from_record(signal(1, **fields))


def rules(when: dict, **extra) -> str:
    return json.dumps({"rules": [{"name": "r", "when": when, "team": "t", "sla": "1d", **extra}]})


def test_the_bundled_example_loads_and_names_known_touchpoints(vocabulary) -> None:
    example = load_rules(sample_path("routing_rules.yaml"), vocabulary)
    assert example.spec.mode == "first_match" and len(example.spec.rules) >= 5
    assert {"cx-slack", "case-webhook"} == set(example.spec.destinations)


BAD_FILE = """\
version: 1
mode: first-match
destinations:
  slack: {type: slack}
rules:
  - name: app
    when:
      chanel: survey
      nps: detracter
      touchpoint_any: [mobile-app]
      regex: "(unclosed"
    team: mobile
    priority: critical
    sla: 2 days
"""


def test_every_mistake_is_reported_with_its_line_and_the_fix(vocabulary) -> None:
    with pytest.raises(RulesError) as caught:
        parse_rules(BAD_FILE, "rules.yaml", vocabulary)
    lines = str(caught.value).splitlines()
    expected = [
        ("rules.yaml:2:", "mode", "first_match"),
        ("rules.yaml:8:", "unknown key 'chanel'", "did you mean 'channel'"),
        ("rules.yaml:9:", "nps[0]", "'detractor', 'passive' or 'promoter'"),
        ("rules.yaml:10:", "'mobile-app' is not a known touchpoint", "did you mean 'mobile_app'"),
        ("rules.yaml:11:", "regex", "not a valid regular expression"),
        ("rules.yaml:13:", "priority", "'low', 'normal', 'high' or 'urgent'"),
        ("rules.yaml:14:", "sla", "write 30m, 4h, 2d, 1w"),
    ]
    assert len(lines) == len(expected), lines
    for line, (where, what, fix) in zip(lines, expected):
        assert line.startswith(where) and what in line and fix in line, line


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("rules:\n  - name: a\n    team: t\n    destinations: [slak]\ndestinations:\n  slack: {type: slack}\n",
         "rules:4: rules[0].destinations[0]: destination 'slak' is not defined; did you mean 'slack'?"),
        ("rules:\n  - name: a\n    team: t\n  - name: a\n    team: u\n", "rule names must be unique; used more than once: a"),
        ("rules:\n  - name: a\n    team: [t\n", "rules:4: not valid YAML"),
        ("- just a list\n", "must be a mapping with `rules:`"),
        ("mode: all_match\n", "no rules and no default"),
        ("rules:\n  - name: a\n", "rules:2: rules[0].team: team is required here"),
        ("rules:\n  - name: a\n    team: t\n    when: {sentiment_score_at_least: 0.5, sentiment_score_at_most: -0.5}\n",
         "nothing can match"),
    ],
)  # fmt: skip
def test_structural_mistakes_name_the_fix(text: str, message: str) -> None:
    with pytest.raises(RulesError) as caught:
        parse_rules(text, "rules")
    assert message in str(caught.value)


# condition, matching signal fields, not-matching signal fields
CASES = [
    ({"brand": "acme"}, {"brand": "ACME"}, {"brand": "globex"}),
    ({"channel": ["chat", "email"]}, {"channel": "chat"}, {"channel": "survey"}),
    ({"source": "zendesk"}, {"source": "zendesk"}, {"source": "typeform"}),
    ({"kind": "indirect"}, {"kind": "indirect"}, {"kind": "direct"}),
    ({"touchpoint": "delivery"}, {"touchpoints": ["delivery", "billing"]}, {"touchpoints": ["billing", "delivery"]}),
    ({"touchpoint_any": ["delivery"]}, {"touchpoints": ["billing", "delivery"]}, {"touchpoints": ["billing"]}),
    ({"stage": "support"}, {"journey_stage": "support"}, {"journey_stage": "usage"}),
    ({"nps": "detractor"}, {"metric": "nps", "value": 6}, {"metric": "nps", "value": 7}),
    ({"nps": ["passive"]}, {"metric": "nps", "value": 8}, {"metric": "nps", "value": 9}),
    ({"nps": "promoter"}, {"metric": "nps", "value": 9}, {"metric": "csat", "value": 5}),
    ({"csat_at_most": 2}, {"metric": "csat", "value": 2}, {"metric": "csat", "value": 3}),
    ({"ces_at_most": 3}, {"metric": "ces", "value": 3}, {"metric": "nps", "value": 1}),
    ({"sentiment": "negative"}, {"label": "negative"}, {"label": "neutral"}),
    ({"sentiment_score_at_most": -0.5}, {"sentiment_score": -0.5}, {"sentiment_score": -0.49}),
    ({"sentiment_score_at_least": 0.5}, {"sentiment_score": 0.9}, {"sentiment_score": None}),
    ({"emotions": ["anger", "urgency"]}, {"emotions": ["urgency"]}, {"emotions": ["joy"]}),
    ({"language": "de"}, {"language": "de"}, {"language": "en"}),
    ({"keywords": ["refund", "charged twice"]}, {"text_redacted": "I was CHARGED TWICE!"}, {"text_redacted": "refunds page"}),
    ({"regex": r"order #\d{5}"}, {"text_redacted": "about order #12345"}, {"text_redacted": None}),
]  # fmt: skip


@pytest.mark.parametrize(("when", "hit", "miss"), CASES, ids=[next(iter(c[0])) + str(i) for i, c in enumerate(CASES)])
def test_each_condition_matches_what_it_says_and_nothing_else(when: dict, hit: dict, miss: dict) -> None:
    ruleset = parse_rules(rules(when))
    assert [r.rule for r in ruleset.route(facts(**hit))] == ["r"]
    assert ruleset.route(facts(**miss)) == []


def test_open_case_condition_uses_what_the_store_says() -> None:
    ruleset = parse_rules(rules({"open_case": False}))
    assert ruleset.uses_open_case
    assert ruleset.route(facts(), has_open_case=False) and not ruleset.route(facts(), has_open_case=True)
    assert not parse_rules(rules({"sentiment": "negative"})).uses_open_case


def test_all_conditions_must_hold() -> None:
    ruleset = parse_rules(rules({"nps": "detractor", "touchpoint_any": "mobile_app"}))
    assert ruleset.route(facts(metric="nps", value=2, touchpoints=["mobile_app"]))
    assert not ruleset.route(facts(metric="nps", value=2, touchpoints=["delivery"]))
    assert not ruleset.route(facts(metric="nps", value=9, touchpoints=["mobile_app"]))


MODES = """
mode: {mode}
rules:
  - {{name: app, when: {{touchpoint_any: mobile_app}}, team: app, priority: high, sla: 4h}}
  - {{name: angry, when: {{sentiment: negative}}, team: care, sla: 1d}}
{default}
"""


def test_first_match_all_match_and_the_default() -> None:
    angry_app = facts(touchpoints=["checkout", "mobile_app"], label="negative")
    happy = facts(label="positive")
    first = parse_rules(MODES.format(mode="first_match", default=""))
    assert [(r.rule, r.team, r.priority, r.sla) for r in first.route(angry_app)] == [("app", "app", "high", timedelta(hours=4))]
    assert first.route(happy) == []
    every = parse_rules(MODES.format(mode="all_match", default=""))
    assert [r.rule for r in every.route(angry_app)] == ["app", "angry"]
    with_default = parse_rules(MODES.format(mode="first_match", default="default: {team: triage, priority: low, sla: 5d}"))
    [route] = with_default.route(happy)
    assert (route.rule, route.team, route.priority, route.sla) == ("default", "triage", "low", timedelta(days=5))


def test_the_case_is_about_the_touchpoint_the_rule_asked_for() -> None:
    ruleset = parse_rules(MODES.format(mode="all_match", default=""))
    routes = ruleset.route(facts(touchpoints=["checkout", "mobile_app"], label="negative"))
    assert [(r.rule, r.touchpoint) for r in routes] == [("app", "mobile_app"), ("angry", "checkout")]
    assert ruleset.route(facts(touchpoints=[], label="negative"))[0].touchpoint == "other"


def test_max_signal_age_keeps_backfills_out() -> None:
    ruleset = parse_rules(rules({}).replace('"rules"', '"max_signal_age": "7d", "rules"'))
    now = T0 + timedelta(days=7, hours=1)
    assert ruleset.route(facts(at=T0), now=now) == []
    assert ruleset.route(facts(at=T0 + timedelta(days=1)), now=now)


def test_enrich_output_and_stored_records_are_read_alike() -> None:
    # the `touchpoint enrich` contract (README): input fields plus sentiment {label, score}, emotions, ...
    offline = {"id": "r-1", "channel": "survey", "source": "typeform", "text": "x", "nps": 3,
               "occurred_at": "2026-11-02T12:00:00Z", "sentiment": {"label": "negative", "score": -0.8},
               "emotions": ["anger"], "touchpoints": ["billing"], "journey_stage": "billing_renewal",
               "language": "en", "text_redacted": "x"}  # fmt: skip
    a = SignalFacts.from_record(offline)
    b = facts(metric="nps", value=3, label="negative", sentiment_score=-0.8, emotions=["anger"], touchpoints=["billing"],
              journey_stage="billing_renewal")  # fmt: skip
    for name in ("channel", "source", "kind", "score_metric", "score_value", "sentiment_label", "sentiment_score",
                 "emotions", "touchpoints", "stage", "language"):  # fmt: skip
        assert getattr(a, name) == getattr(b, name), name
    assert a.signal_id and a.occurred_at == datetime(2026, 11, 2, 12, tzinfo=timezone.utc)


def test_an_edit_applies_without_restart_and_a_broken_edit_keeps_the_last_good_rules(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(rules({"sentiment": "negative"}))
    source = RulesSource(path, check_every_s=0)
    first = source.current()
    assert first.route(facts(label="negative"))

    path.write_text(rules({"sentiment": "positive"}))
    os.utime(path, (1, 1))  # a new stamp even within the file system's time resolution
    second = source.current()
    assert second.version != first.version and second.route(facts(label="positive"))

    path.write_text(rules({"sentiment": "furious"}))
    os.utime(path, (2, 2))
    assert source.current() is second  # still in force
    assert "rules.yaml:1:" in source.last_error and "furious" in source.last_error

    path.write_text(rules({"sentiment": "neutral"}))
    os.utime(path, (3, 3))
    assert source.current().route(facts(label="neutral")) and source.last_error is None


def test_route_test_command_shows_which_rule_each_signal_hits(tmp_path: Path, capsys) -> None:
    rules_file = tmp_path / "rules.yaml"
    rules_file.write_text(MODES.format(mode="first_match", default=""))
    signals = tmp_path / "enriched.jsonl"
    records = [
        {"id": "1", "channel": "review", "source": "app_store", "touchpoints": ["mobile_app"], "sentiment": {"label": "negative", "score": -0.9}, "text_redacted": "crashes"},
        {"id": "2", "channel": "chat", "source": "zendesk", "touchpoints": ["billing"], "sentiment": {"label": "negative", "score": -0.7}, "text_redacted": "wrong bill"},
        {"id": "3", "channel": "chat", "source": "zendesk", "touchpoints": ["delivery"], "sentiment": {"label": "positive", "score": 0.9}, "text_redacted": "fast"},
    ]  # fmt: skip
    signals.write_text("".join(json.dumps(r) + "\n" for r in records))
    assert main(["route", "test", str(rules_file), str(signals), "--format", "json"]) == 0
    captured = capsys.readouterr()
    shown = [json.loads(line) for line in captured.out.splitlines()]
    assert [(s["line"], [r["team"] for r in s["routes"]]) for s in shown] == [(1, ["app"]), (2, ["care"])]
    assert "routed 2 of 3 signals" in captured.err

    rules_file.write_text(BAD_FILE)
    assert main(["route", "test", str(rules_file), str(signals)]) == 2
    assert f"{rules_file}:8:" in capsys.readouterr().err.replace("\n", "")
