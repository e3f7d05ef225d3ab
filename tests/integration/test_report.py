"""`touchpoint report`: one self-contained HTML file, opened in headless Chromium (Debian's package)."""

from __future__ import annotations

import random
import re
import shutil
import subprocess
from datetime import timedelta
from pathlib import Path

import pytest

from tests.alert_rows import SPIKE, signals
from tests.cx_rows import T0, signal, store_signals
from touchpoint.pipeline.alerts.watch import watch_once
from touchpoint.pipeline.queries import Filters
from touchpoint.pipeline.report import write_report

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed: run `make system-deps`")
CHARTS = ("kpis", "trend", "heatmap", "touchpoints", "channels", "kinds", "emotions", "negative")


def seed(store, count: int = 300) -> None:
    rng = random.Random(5)
    rows = []
    for i in range(count):
        channel = rng.choice(["survey", "survey", "chat", "email", "review", "social"])
        label = rng.choice(["positive", "negative", "negative", "neutral"])
        tp = rng.choice(["delivery", "checkout", "mobile_app", "billing", "contact_center"])
        metric = rng.choice(["nps", "csat", "ces"]) if channel == "survey" else None
        value = {"nps": rng.randint(0, 10), "csat": rng.randint(1, 5), "ces": rng.randint(1, 7)}.get(metric)
        rows.append(signal(
            i, metric=metric, value=value, label=label, touchpoints=(tp,), channel=channel,
            kind="indirect" if channel in ("review", "social") else "direct",
            emotions=["frustration"] if label == "negative" and i % 3 == 0 else [],
            text_redacted=f"The {tp.replace('_', ' ')} experience ({label}) for order [ORDER] took ages, case {i}",
            at=T0 - timedelta(days=rng.randint(0, 80), hours=rng.randint(0, 23)),
        ))  # fmt: skip
    store_signals(store, rows)


def dump_dom(html: Path, profile: Path) -> str:
    command = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
               f"--user-data-dir={profile}", "--dump-dom", html.resolve().as_uri()]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def section(dom: str, element_id: str, until: str = "</section>") -> str:
    start = dom.index(f'id="{element_id}"')
    return dom[start : dom.find(until, start)]


def test_the_report_is_one_self_contained_file(store, settings, tmp_path: Path) -> None:
    seed(store, 60)
    html = write_report(settings, tmp_path / "report.html").read_text(encoding="utf-8")
    assert not re.search(r"<(script|link|img|iframe)[^>]+(src|href)=", html), "the report must not load anything"
    assert "http://" not in html.replace('"http://www.w3.org/2000/svg"', "") and "https://" not in html
    assert '<script id="report-data" type="application/json">{' in html


@needs_chromium
def test_chromium_renders_every_chart_with_counts(store, settings, tmp_path: Path) -> None:
    seed(store)
    path = write_report(settings, tmp_path / "report.html", Filters(brand="acme"))
    dom = dump_dom(path, tmp_path / "profile")
    assert 'data-render="ok"' in dom and 'id="render-error"' not in dom
    marks = {"trend": 8, "heatmap": 10, "touchpoints": 5, "channels": 5, "kinds": 2, "emotions": 1}
    for chart, least in marks.items():
        assert section(dom, chart, "</svg>").count('class="mark"') >= least, chart
    assert section(dom, "trend").count("<circle") >= 8  # weekly points of two lines
    for kpi in ("nps", "csat", "ces", "sentiment", "volume"):
        card = dom[dom.index(f'data-metric="{kpi}"') :][:800]
        assert "n=" in card, kpi
    negative = section(dom, "negative")
    assert negative.count('class="verbatim"') >= 3 and "[ORDER]" in negative
    assert negative.count("n=") >= 3


@needs_chromium
def test_alerts_show_their_numbers_and_why(store, settings, tmp_path: Path) -> None:
    store_signals(store, signals(SPIKE[1], changes=True))  # a volume spike in product_quality (tests/alert_rows.py)
    opened = watch_once(store, settings, SPIKE[0] + timedelta(hours=3, minutes=10)).opened
    alert = next(a for a in opened if a.key == ("acme", "touchpoint", "product_quality", "volume_spike"))
    dom = dump_dom(write_report(settings, tmp_path / "report.html"), tmp_path / "profile")
    assert 'data-render="ok"' in dom
    card = section(dom, "alerts-card")
    assert card.count('class="alert-card') >= 1 and f'data-alert="{alert.alert_id}"' in card
    shown = card[card.index(f'data-alert="{alert.alert_id}"') :]
    shown = shown[: shown.find("data-alert=", 10) if "data-alert=" in shown[10:] else None]  # this card only
    assert "Volume spike · touchpoint product quality" in shown and 'data-state="open"' in dom
    assert f"n={alert.n:,}" in shown and "baseline n=" in shown and "z=+" in shown
    assert '<span class="term"' in shown and "battery" in shown
    assert shown.count('class="alert-verbatim"') == 3 and "by channel: review" in shown


@needs_chromium
def test_an_empty_store_still_renders_a_page_that_says_so(store, settings, tmp_path: Path) -> None:
    path = write_report(settings, tmp_path / "empty.html")
    dom = dump_dom(path, tmp_path / "profile")
    assert 'data-render="ok"' in dom and "No signals stored yet" in dom


@needs_chromium
def test_a_report_without_alerts_says_so(store, settings, tmp_path: Path) -> None:
    seed(store, 60)
    dom = dump_dom(write_report(settings, tmp_path / "report.html"), tmp_path / "profile")
    assert "nothing moved beyond its usual range" in section(dom, "alerts-card")


@needs_chromium
def test_closing_the_loop_section_shows_cases_by_team(store, settings, tmp_path: Path) -> None:
    from datetime import datetime, timezone

    from touchpoint.pipeline.cases import record_actions, transition
    from touchpoint.pipeline.routing import action_record
    from touchpoint.pipeline.rules import Route, SignalFacts

    seed(store, 40)
    now = datetime.now(timezone.utc)
    actions = [
        action_record(SignalFacts.from_record(signal(900 + i, customer_id=f"c{i}", touchpoints=[tp], enriched_at=now - timedelta(hours=30))),
                      Route("r", team, priority, timedelta(hours=24), (), tp), "v1")
        for i, (team, priority, tp) in enumerate([("mobile-app", "high", "mobile_app"), ("mobile-app", "high", "mobile_app"),
                                                  ("logistics", "normal", "delivery")])
    ]  # fmt: skip
    cases = record_actions(store, actions)
    transition(store, cases[0].case_id, "acknowledge", "ana", now=now - timedelta(hours=29))
    transition(store, cases[0].case_id, "close", "ana", note="called back", now=now - timedelta(hours=28))
    empty_dom = dump_dom(write_report(settings, tmp_path / "before.html", Filters(brand="globex")), tmp_path / "p0")
    assert "No cases routed in this period" in section(empty_dom, "loop")  # negative control: another brand has none
    dom = dump_dom(write_report(settings, tmp_path / "report.html", Filters(brand="acme")), tmp_path / "profile")
    assert 'data-render="ok"' in dom
    loop = section(dom, "loop")
    assert "Open cases now" in loop and "2 past their SLA" in loop  # the two still open, 30 h into a 24 h SLA
    assert "33.3%" in loop and "n=3 routed" in loop  # one of three closed within its SLA
    assert "1.0 h" in loop  # acknowledged an hour after opening
    open_rows = section(dom, "loop-open", "</table>")
    assert open_rows.count("<tr data-n=") == 2 and "mobile-app" in open_rows and "logistics" in open_rows
    rate_rows = section(dom, "loop-rate", "</table>")
    assert rate_rows.count("<tr data-n=") == 2 and "50%" in rate_rows  # mobile-app / mobile app: 1 of 2
