"""The case stage: actions from ``cx.actions`` become cases in ClickHouse, new cases are announced.

Per batch, in this order (the agent commits the batch's offsets only after
all of it, pipeline/acks.py):

1. decode; an undecodable action becomes a dead letter (stage ``decode``);
2. record: open or join cases in ClickHouse (pipeline/cases.py), waiting out
   a store that is down; a redelivered action is recognised by its id; an
   action whose rows ClickHouse refuses is dead-lettered (stage ``store``);
3. deliver: every destination of every action that opened a case, except
   those ClickHouse says were delivered already (pipeline/delivery.py), each
   destination in order, destinations side by side;
4. record each delivery's outcome; a failed one is dead-lettered (stage
   ``deliver``) with the reason and the original action bytes, so
   `touchpoint dlq replay` can try again once the destination is fixed.

Alerts (issue 16) are actions too: whatever produced them, they go through
the same steps.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Sequence

import aiohttp

from touchpoint.core import metrics
from touchpoint.core.deadletter import dead_letter
from touchpoint.core.settings import Settings
from touchpoint.pipeline.cases import Recorded, delivered_pairs, record_actions, record_deliveries, with_store_retry
from touchpoint.pipeline.delivery import Deliverer, DeliveryFailed, Endpoint, Outcome, endpoints
from touchpoint.pipeline.enrichment import Incoming
from touchpoint.pipeline.rules import RulesSource
from touchpoint.pipeline.store import AsyncStore
from touchpoint.pipeline.store_errors import StoreAction, StoreError
from touchpoint.schemas.codec import AvroCodec, DecodeError

log = logging.getLogger(__name__)


def refused_as_data(exc: BaseException) -> bool:
    """Rows ClickHouse (or building them) will never take: retrying cannot help. A store that is down is
    not among them: pipeline/cases.py with_store_retry waits that out."""
    if isinstance(exc, StoreError):
        return exc.action is StoreAction.BAD_ROWS
    return isinstance(exc, (TypeError, ValueError, ArithmeticError))  # e.g. a due time past year 9999


@dataclass
class ActionsResult:
    recorded: list[Recorded] = field(default_factory=list)
    outcomes: list[Outcome] = field(default_factory=list)
    dead_letters: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class Job:
    """One announcement to send: an action that opened a case, to one destination."""

    message: Incoming
    recorded: Recorded
    destination: str


class ActionStage:
    def __init__(self, rules: RulesSource, store: AsyncStore, settings: Settings, deliverer: Deliverer | None = None) -> None:
        self.rules = rules
        self.store = store
        self.settings = settings
        self.deliverer = deliverer or Deliverer(settings)
        self.codec = AvroCodec.for_subject("action")
        self.retry = {"initial_s": settings.store_retry_initial_s, "max_s": settings.store_retry_max_s}
        self.handled = 0  # messages this process finished, cases it opened (progress counts for tools, not state)
        self.opened = 0

    async def process(self, messages: Sequence[Incoming], now: datetime | None = None) -> ActionsResult:
        result = ActionsResult()
        decoded: list[tuple[Incoming, dict[str, Any]]] = []
        for message in messages:
            try:
                decoded.append((message, self.codec.decode(message.value)))
            except DecodeError as exc:
                result.dead_letters.append(message.dead("decode", str(exc), exc))
        if decoded:
            recorded = await self._record(decoded, now or datetime.now(timezone.utc), result)
            result.recorded = [item for _, item in recorded]
            self._count(result.recorded)
            self.opened += sum(1 for r in result.recorded if r.new and r.disposition == "opened")
            jobs = await self._jobs(recorded)
            if jobs:
                await self._deliver(jobs, result)
        self.handled += len(messages)
        return result

    async def _record(
        self, decoded: list[tuple[Incoming, dict[str, Any]]], now: datetime, result: ActionsResult
    ) -> list[tuple[Incoming, Recorded]]:
        """Record the batch (a store that is down is waited out); actions ClickHouse refuses as data are
        found by halving the batch and dead-lettered (stage ``store``), the rest recorded."""
        try:
            recorded = await with_store_retry(
                self.store, record_actions, [action for _, action in decoded], now, what="cases", **self.retry
            )
        except Exception as exc:
            if not refused_as_data(exc):
                raise  # the agent retries the whole batch in place (pipeline/acks.py)
            if len(decoded) == 1:
                message = decoded[0][0]
                result.dead_letters.append(message.dead("store", f"ClickHouse refused this action's case rows: {exc}", exc))
                return []
            middle = len(decoded) // 2
            return await self._record(decoded[:middle], now, result) + await self._record(decoded[middle:], now, result)
        return list(zip((message for message, _ in decoded), recorded))

    @staticmethod
    def _count(recorded: Sequence[Recorded]) -> None:
        for item in recorded:
            if item.new:
                counter = metrics.CASES_OPENED if item.disposition == "opened" else metrics.CASE_SIGNALS_ATTACHED
                counter.labels(item.action["team"], item.action["priority"]).inc()

    async def _jobs(self, recorded: list[tuple[Incoming, Recorded]]) -> list[Job]:
        wanted = [(message, item) for message, item in recorded if item.announces and item.action["destinations"]]
        if not wanted:
            return []
        done = await with_store_retry(
            self.store, delivered_pairs, [item.action["action_id"] for _, item in wanted], what="deliveries", **self.retry
        )
        jobs, seen = [], set()
        for message, item in wanted:
            for destination in item.action["destinations"]:
                pair = (item.action["action_id"], destination)
                if pair not in done and pair not in seen:
                    seen.add(pair)
                    jobs.append(Job(message, item, destination))
        return jobs

    async def _deliver(self, jobs: list[Job], result: ActionsResult) -> None:
        rules = self.rules.current()
        try:
            known = endpoints(rules, self.settings)
        except ValueError as exc:  # the worker checked at start; a reload cannot break it (RulesSource)
            known, problem = {}, str(exc)
        else:
            problem = None
        by_destination: dict[str, list[Job]] = defaultdict(list)
        for job in jobs:
            by_destination[job.destination].append(job)

        async def in_order(session: aiohttp.ClientSession, name: str, queue: list[Job]) -> list[tuple[Job, Outcome]]:
            endpoint = known.get(name)
            if endpoint is None:
                why = problem or f"destination {name!r} is not in the rules file in force ({rules.origin}, version {rules.version})"
                return [(job, Outcome(name, False, 0, None, why)) for job in queue]
            return [
                (job, await self.deliverer.deliver(session, endpoint, job.recorded.action, job.recorded.case_id))
                for job in queue
            ]

        async with aiohttp.ClientSession() as session:
            done = await asyncio.gather(*(in_order(session, n, q) for n, q in by_destination.items()))
        finished = [pair for pairs in done for pair in pairs]
        rows = [self._row(job, outcome, known.get(job.destination)) for job, outcome in finished]
        await with_store_retry(self.store, record_deliveries, rows, what="delivery status", **self.retry)
        for job, outcome in finished:
            result.outcomes.append(outcome)
            if not outcome.delivered:
                result.dead_letters.append(self._letter(job, outcome))

    @staticmethod
    def _row(job: Job, outcome: Outcome, endpoint: Endpoint | None) -> dict[str, Any]:
        return {
            "action_id": job.recorded.action["action_id"], "destination": job.destination,
            "case_id": job.recorded.case_id, "kind": endpoint.kind if endpoint else "unknown",
            "status": "delivered" if outcome.delivered else "failed", "attempts": outcome.attempts,
            "http_status": outcome.http_status, "reason": outcome.reason,
            "idempotency_key": job.recorded.action["action_id"], "updated_at": datetime.now(timezone.utc),
        }  # fmt: skip

    @staticmethod
    def _letter(job: Job, outcome: Outcome) -> dict[str, Any]:
        message = job.message
        return dead_letter(
            "deliver", outcome.reason or "delivery failed", message.value, error=DeliveryFailed(outcome.reason),
            key=message.key, topic=message.topic, partition=message.partition, offset=message.offset,
            origin=f"{message.topic} -> {job.destination}",  # one letter per destination that failed
            source=job.recorded.action.get("source"),  # its signal is stored: the source's balance is not touched
            signal_id=job.recorded.action["origin_id"] if job.recorded.action["origin"] == "signal" else None,
            context={"destination": job.destination, "case_id": job.recorded.case_id,
                     "action_id": job.recorded.action["action_id"], "http_status": outcome.http_status or ""},
        )  # fmt: skip
