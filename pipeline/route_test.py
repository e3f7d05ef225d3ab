"""`touchpoint route test RULES FILE`: which rule each enriched signal hits, with no broker and no store.

FILE is JSON Lines of enriched signals: what `touchpoint enrich` writes, or
enriched records as the worker stores them. The same :class:`RuleSet` the
route agent uses decides, so what this shows is what the worker will do (a
rule on ``open_case`` sees no open case unless ``assume_open_case``).
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import IO, Any, Iterator

from touchpoint.pipeline.rules import Route, RuleSet, SignalFacts


class SignalFileError(ValueError):
    """A line of the signals file is not a JSON object; the message names the line."""


@dataclass(frozen=True)
class RoutedLine:
    line: int
    facts: SignalFacts
    routes: tuple[Route, ...]

    def as_dict(self) -> dict[str, Any]:
        f = self.facts
        return {
            "line": self.line, "signal_id": f.signal_id, "touchpoint": f.primary_touchpoint,
            "touchpoints": list(f.touchpoints), "sentiment": f.sentiment_label, "sentiment_score": f.sentiment_score,
            "score": f"{f.score_metric} {f.score_value:g}" if f.score_metric and f.score_value is not None else None,
            "text": (f.text or "")[:80],
            "routes": [
                {"rule": r.rule, "team": r.team, "priority": r.priority, "sla_hours": round(r.sla.total_seconds() / 3600, 2),
                 "case_touchpoint": r.touchpoint, "destinations": list(r.destinations)}
                for r in self.routes
            ],
        }  # fmt: skip


@dataclass
class RouteSummary:
    signals: int = 0
    routed: int = 0
    actions: int = 0
    by_rule: Counter[str] = field(default_factory=Counter)
    by_team: Counter[str] = field(default_factory=Counter)
    unused_rules: list[str] = field(default_factory=list)


def read_signals(source: IO[str]) -> Iterator[tuple[int, dict[str, Any]]]:
    for number, line in enumerate(source, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError as exc:
            raise SignalFileError(f"line {number}: not JSON ({exc}); each line must be one enriched signal") from None
        if not isinstance(record, dict):
            raise SignalFileError(f"line {number}: a JSON {type(record).__name__}, not an object")
        yield number, record


def route_file(
    rules: RuleSet, source: IO[str], assume_open_case: bool = False, now: datetime | None = None
) -> tuple[list[RoutedLine], RouteSummary]:
    """Every signal of ``source`` with the routes it gets, and a summary per rule and team."""
    rows, summary = [], RouteSummary()
    for number, record in read_signals(source):
        if not record.get("signal_id") and record.get("id") is None:
            record["signal_id"] = f"line-{number}"  # no id to derive one from: the line stands in
        facts = SignalFacts.from_record(record)
        routes = tuple(rules.route(facts, assume_open_case, now))
        rows.append(RoutedLine(number, facts, routes))
        summary.signals += 1
        summary.routed += bool(routes)
        summary.actions += len(routes)
        summary.by_rule.update(r.rule for r in routes)
        summary.by_team.update(r.team for r in routes)
    summary.unused_rules = [rule.name for rule in rules.spec.rules if rule.name not in summary.by_rule]
    return rows, summary
