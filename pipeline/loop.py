"""Closing the loop on the worker: the route agent, the case agent and the case gauges.

Registered only when ``routing_rules_path`` is set (no rules, no routing):

1. route: ``signals.enriched`` -> batches -> rules -> ``cx.actions`` (keyed by
   subject, so one customer's actions stay in order in one partition);
2. cases: ``cx.actions`` -> cases in ClickHouse -> deliveries -> their status;
   failures -> ``signals.dead-letter``;
3. a timer sets the case gauges (open, past due, medians, close rate) from ClickHouse.

Like the other agents, a batch's offsets are committed only after its outputs
are safe, and a failed batch is retried in place, never stepped over
(pipeline/acks.py): actions acknowledged by the broker; cases, deliveries and
dead letters recorded. The rules file is checked completely
when the worker starts (every destination must have its URL and secret), so a
mistake stops the start with the line to fix instead of failing later.
"""

from __future__ import annotations

import logging
from typing import Any, Awaitable, Callable, Sequence

import faust

from touchpoint.core import metrics
from touchpoint.core.settings import Settings
from touchpoint.core.status import ComponentStatus
from touchpoint.pipeline.acks import process_in_place
from touchpoint.pipeline.actions import ActionsResult, ActionStage
from touchpoint.pipeline.cases import with_store_retry
from touchpoint.pipeline.delivery import endpoints
from touchpoint.pipeline.enrichment import Incoming
from touchpoint.pipeline.loop_metrics import refresh_gauges
from touchpoint.pipeline.routing import RoutedBatch, RouteStage
from touchpoint.pipeline.rules import RulesSource, load_vocabulary
from touchpoint.pipeline.store import AsyncStore, Store

log = logging.getLogger(__name__)

Send = Callable[[Any, Sequence[tuple[bytes | None, bytes]]], Awaitable[None]]


def rules_source(settings: Settings) -> RulesSource:
    """The rules in force for this worker; raises RulesError (with line numbers) when they cannot be used."""
    return RulesSource(
        settings.routing_rules_path,  # type: ignore[arg-type]
        load_vocabulary(settings.taxonomy_path),
        settings.routing_reload_interval_s,
        check=lambda rules: endpoints(rules, settings),
    )


def register_loop(
    app: faust.App,
    settings: Settings,
    writer: AsyncStore,
    reader: AsyncStore,
    enriched: Any,
    send: Send,
    send_dead: Callable[[Sequence[dict[str, Any]]], Awaitable[None]],
    incoming: Callable[[Sequence[Any]], list[Incoming]],
) -> None:
    """Add the route and case agents and the gauge timer to ``app`` (see the module docstring).

    Cases are written through ``writer`` (one thread, so one batch's reads and writes stay in order);
    the route agent's open-case lookups and the gauges read through ``reader``.
    """
    if not settings.routing_rules_path:
        return
    rules = rules_source(settings)
    actions = app.topic(settings.topic_actions, key_type=bytes, value_type=bytes)
    route_stage = RouteStage(rules, reader, settings.store_retry_initial_s, settings.store_retry_max_s)
    action_stage = ActionStage(rules, writer, settings)
    batches = app.touchpoint["batches"]  # readiness reports a batch that keeps failing
    batches.update(route=ComponentStatus("route_batch"), cases=ComponentStatus("cases_batch"))
    app.touchpoint.update(rules=rules, route=route_stage, actions=action_stage)  # for tools and tests
    retry = {"retry_initial_s": settings.store_retry_initial_s, "retry_max_s": settings.store_retry_max_s}

    @app.agent(enriched, name="route")
    async def route(stream: faust.StreamT) -> None:
        async for events in stream.take_events(settings.route_batch_size, within=settings.route_batch_window_s):
            done: list[RoutedBatch] = []  # rules run once per batch; a retry only re-sends

            async def work() -> None:
                if not done:
                    done.append(await route_stage.process(incoming(events)))
                await send(actions, done[0].outputs)

            await process_in_place(stream, events, work, batches["route"], **retry)
            for action in done[0].actions:
                metrics.ACTIONS_ROUTED.labels(action["team"], action["priority"]).inc()

    @app.agent(actions, name="cases")
    async def cases(stream: faust.StreamT) -> None:
        await with_store_retry(writer, Store.migrate, what="migrations")  # the tables may not exist yet
        async for events in stream.take_events(settings.actions_batch_size, within=settings.actions_batch_window_s):
            done: list[ActionsResult] = []  # cases and deliveries once per batch; a retry only re-sends letters

            async def work() -> None:
                if not done:
                    done.append(await action_stage.process(incoming(events)))
                await send_dead(done[0].dead_letters)

            await process_in_place(stream, events, work, batches["cases"], **retry)

    @app.timer(settings.loop_metrics_interval_s)
    async def case_gauges() -> None:
        try:
            await reader.call(refresh_gauges, settings.loop_metrics_window_days)
        except Exception as exc:  # gauges are best effort; the next tick tries again
            log.warning("case gauges not refreshed: %s", exc)
