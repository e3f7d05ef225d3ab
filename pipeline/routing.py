"""The route stage: enriched signals in, actions out (one per signal and matching rule).

Stateless apart from the rules file: the same signal under the same rules
gives the same actions (ids from the signal and the rule; ``created_at`` is the
signal's ``enriched_at``, not the clock), so a redelivered batch produces the
same action ids and the case store ignores the repeats. Rules that ask whether the customer
has an open case read it from ClickHouse for the whole batch, once.

An enriched message that cannot be decoded is skipped here and counted: the
sink agent reads the same message and dead-letters it, once.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Sequence

from touchpoint.core import metrics
from touchpoint.pipeline.cases import with_store_retry
from touchpoint.pipeline.enrichment import Incoming
from touchpoint.pipeline.rules import Route, RulesSource, SignalFacts
from touchpoint.pipeline.store import AsyncStore, Store
from touchpoint.schemas.action import OPEN_STATUSES, make_action_id
from touchpoint.schemas.codec import AvroCodec, DecodeError

log = logging.getLogger(__name__)


def action_record(facts: SignalFacts, route: Route, rules_version: str) -> dict[str, Any]:
    """The Avro action for one signal and one route (schemas/avro/action.v1.avsc)."""
    score = facts.score or None
    created = facts.routed_at or facts.occurred_at or datetime.now(timezone.utc)
    return {
        "action_id": make_action_id("signal", facts.signal_id, route.rule),
        "origin": "signal", "origin_id": facts.signal_id, "rule": route.rule, "rules_version": rules_version,
        "subject": facts.subject, "customer_id": facts.customer_id, "brand": facts.brand, "team": route.team,
        "priority": route.priority, "sla_seconds": int(route.sla.total_seconds()), "touchpoint": route.touchpoint,
        "journey_stage": facts.stage, "destinations": list(route.destinations), "created_at": created,
        "occurred_at": facts.occurred_at, "channel": facts.channel, "source": facts.source, "summary": facts.text,
        "score": None if score is None else {
            "metric": str(score["metric"]), "value": float(score["value"]),
            "scale_min": score.get("scale_min"), "scale_max": score.get("scale_max"),
        },
        "sentiment_label": facts.sentiment_label, "sentiment_score": facts.sentiment_score,
        "emotions": list(facts.emotions), "language": facts.language, "url": facts.url, "attributes": {},
    }  # fmt: skip


def subjects_with_open_cases(store: Store, subjects: Sequence[str]) -> set[str]:
    rows = store.query(
        "SELECT DISTINCT subject FROM {db}.cases FINAL WHERE subject IN {subjects:Array(String)} "
        "AND status IN {open:Array(String)}",
        {"subjects": sorted(set(subjects)), "open": list(OPEN_STATUSES)},
    )
    return {row["subject"] for row in rows}


@dataclass
class RoutedBatch:
    outputs: list[tuple[bytes, bytes]]  # (key = subject, Avro action)
    actions: list[dict[str, Any]]
    skipped: int = 0


class RouteStage:
    def __init__(self, rules: RulesSource, store: AsyncStore, retry_initial_s: float = 0.5, retry_max_s: float = 30.0) -> None:
        self.rules = rules
        self.store = store
        self.retry = {"initial_s": retry_initial_s, "max_s": retry_max_s}
        self.enriched_codec = AvroCodec.for_subject("enriched_signal")
        self.action_codec = AvroCodec.for_subject("action")
        self.evaluated = 0  # messages this process routed and actions it made (progress counts for tools, not state)
        self.produced = 0

    async def process(self, messages: Sequence[Incoming], now: datetime | None = None) -> RoutedBatch:
        rules = self.rules.current()
        batch = RoutedBatch([], [])
        signals: list[SignalFacts] = []
        for message in messages:
            try:
                signals.append(SignalFacts.from_record(self.enriched_codec.decode(message.value)))
            except DecodeError:
                batch.skipped += 1  # the sink dead-letters it
        metrics.ROUTE_SIGNALS.inc(len(signals))
        open_subjects: set[str] = set()
        if rules.uses_open_case and signals:
            open_subjects = await with_store_retry(
                self.store, subjects_with_open_cases, [s.subject for s in signals], what="open-case lookup", **self.retry
            )
        for facts in signals:
            for route in rules.route(facts, facts.subject in open_subjects, now):
                action = action_record(facts, route, rules.version)
                batch.actions.append(action)
                batch.outputs.append((facts.subject.encode(), self.action_codec.encode(action)))
        self.evaluated += len(messages)
        self.produced += len(batch.outputs)
        return batch
