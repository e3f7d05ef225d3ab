"""One watch cycle: evaluate, then open, keep or resolve alerts; what `touchpoint watch`, the worker
timer and bench/alerts.py all run.

* A flagged finding with no open alert for its series and metric opens one,
  explained (pipeline/alerts/explain.py).
* A flagged finding whose alert is open updates it: one alert per anomaly,
  however many evaluations see it.
* An open alert resolves when its test's p-value rises above
  ``alert_resolve_p`` (a looser level than opening: no flapping on the edge),
  or when its series could not be tested for a whole window.
The caller delivers the opened and resolved alerts (as actions).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from touchpoint.core.settings import Settings
from touchpoint.pipeline.alerts import ledger
from touchpoint.pipeline.alerts.detect import Evaluation, evaluate
from touchpoint.pipeline.alerts.explain import explain, window_json
from touchpoint.pipeline.alerts.ledger import Alert
from touchpoint.pipeline.store import Store


@dataclass
class Cycle:
    """What one cycle did."""

    evaluation: Evaluation
    opened: list[Alert] = field(default_factory=list)
    updated: list[Alert] = field(default_factory=list)
    resolved: list[Alert] = field(default_factory=list)

    @property
    def tests(self) -> int:
        return len(self.evaluation.findings)


def watch_once(store: Store, settings: Settings, at: datetime) -> Cycle:
    """Evaluate the windows before ``at`` and bring the alert ledger up to date."""
    evaluation = evaluate(store, settings, at)
    cycle = Cycle(evaluation)
    opened = ledger.open_alerts(store)
    tested = {f.key: f for f in evaluation.findings}
    for finding in evaluation.flagged:
        alert = opened.get(finding.key)
        if alert is not None:
            cycle.updated.append(ledger.updated(alert, finding, evaluation.q))
            continue
        why = explain(store, finding, settings.alert_emotions)
        why["window"] = window_json(finding.windows, finding.baseline_slots)
        cycle.opened.append(ledger.from_finding(finding, evaluation.q, evaluation.end, why))
    for key, alert in opened.items():
        finding = tested.get(key)
        if finding is not None and finding.flagged:
            continue
        if finding is not None and finding.outcome.p_value <= settings.alert_resolve_p:
            continue  # weaker than an alarm, but not back to normal yet
        untested_for = evaluation.end - alert.updated_at
        if finding is None and untested_for < alert.window_end - alert.window_start:
            continue
        cycle.resolved.append(ledger.resolved(alert, evaluation.end))
    ledger.write(store, [*cycle.opened, *cycle.updated, *cycle.resolved])
    return cycle
