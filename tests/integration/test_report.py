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


TOUCHPOINTS = ["delivery", "checkout", "mobile_app", "billing", "contact_center"]


def seed(store, count: int = 300, brands: tuple[str, ...] = ("acme",), second_tags: bool = False) -> list[dict]:
    """Signals over 80 days; with ``second_tags`` a survey answer carries its hint plus a model tag."""
    rng = random.Random(5)
    rows = []
    for i in range(count):
        channel = rng.choice(["survey", "survey", "chat", "email", "review", "social"])
        label = rng.choice(["positive", "negative", "negative", "neutral"])
        tp = rng.choice(TOUCHPOINTS)
        metric = rng.choice(["nps", "csat", "ces"]) if channel == "survey" else None
        value = {"nps": rng.randint(0, 10), "csat": rng.randint(1, 5), "ces": rng.randint(1, 7)}.get(metric)
        tags = (tp, TOUCHPOINTS[(TOUCHPOINTS.index(tp) + 1) % 5]) if second_tags else (tp,)
        rows.append(signal(
            i, metric=metric, value=value, label=label, touchpoints=tags, channel=channel,
            kind="indirect" if channel in ("review", "social") else "direct", brand=brands[i % len(brands)],
            emotions=["frustration"] if label == "negative" and i % 3 == 0 else [],
            text_redacted=f"The {tp.replace('_', ' ')} experience ({label}) for order [ORDER] took ages, case {i}",
            at=T0 - timedelta(days=rng.randint(0, 80), hours=rng.randint(0, 23)),
            touchpoint_hint=tp if second_tags and metric else None,
        ))  # fmt: skip
    return store_signals(store, rows)


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


# --- what the report says it shows (issue 17, item 5); numbers by hand, as in tests/unit/test_store.py ------

MINUS = "\u2212"


def number(text: str) -> float:
    """A number as the report prints it (U+2212 minus, thousands commas, % suffix)."""
    return float(text.replace(MINUS, "-").replace(",", "").rstrip("%").lstrip("+"))


def text_of(fragment: str) -> str:
    return " ".join(re.sub(r"<[^>]+>", " ", fragment).split())


def score(metric: str, values: list[float]) -> float:
    if metric == "nps":
        return 100 * (sum(v >= 9 for v in values) - sum(v <= 6 for v in values)) / len(values)
    if metric == "csat":
        return 100 * sum(v >= 4 for v in values) / len(values)
    return sum(values) / len(values)  # ces


def scored(rows: list[dict], metric: str) -> list[dict]:
    return [r for r in rows if r["score"] and r["score"]["metric"] == metric]


def net(rows: list[dict]) -> float:
    labels = [r["sentiment_label"] for r in rows if r["sentiment_label"]]
    return 100 * (labels.count("positive") - labels.count("negative")) / len(labels)


def stamp(at) -> str:
    return at.strftime("%Y-%m-%d %H:%M")


@needs_chromium
def test_the_report_states_its_period_and_the_window_of_its_headline_cards(store, settings, tmp_path: Path) -> None:
    rows = seed(store)
    first, last = min(r["occurred_at"] for r in rows), max(r["occurred_at"] for r in rows)
    end = last + timedelta(seconds=1)
    since = end - timedelta(days=28)  # 80 days of data: the headline window is the last 28 of them
    dom = dump_dom(write_report(settings, tmp_path / "report.html"), tmp_path / "profile")
    scope = text_of(section(dom, "scope"))
    assert f"Period: {stamp(first)} → {stamp(end)} UTC" in scope and f"{len(rows)} signals" in scope
    assert f"Headline cards: the last 28 days of it, {stamp(since)} → {stamp(end)} UTC" in scope
    assert f"compared with the 28 days before ({stamp(since - timedelta(days=28))} → {stamp(since)})" in scope
    assert "each response once, under its primary touchpoint" in scope
    window = [r for r in rows if since <= r["occurred_at"] < end]
    expected = {m: (score(m, [r["score"]["value"] for r in scored(window, m)]), len(scored(window, m)))
                for m in ("nps", "csat", "ces")}  # fmt: skip
    expected["sentiment"] = (net(window), sum(bool(r["sentiment_label"]) for r in window))
    expected["volume"] = (len(window), len(window))
    for metric, (value, n) in expected.items():
        card = text_of(dom[dom.index(f'data-metric="{metric}"') :][:900].split('class="card kpi"')[0])
        assert "last 28 days" in card, card
        shown = re.search(r"last 28 days ([−+]?[\d.,]+)%?", card)
        assert shown and abs(number(shown[1]) - value) <= 0.051, (metric, card, value)
        assert re.search(rf"n={n:,} (responses|signals)", card), (metric, card, n)


@needs_chromium
def test_csat_and_ces_trends_end_on_the_numbers_of_the_last_week(store, settings, tmp_path: Path) -> None:
    rows = seed(store)
    dom = dump_dom(write_report(settings, tmp_path / "report.html"), tmp_path / "profile")
    for metric, fmt in (("csat", "{:.1f}%"), ("ces", "{:.2f}")):
        chart = section(dom, f"trend-{metric}", "</svg>")
        weeks = {(r["occurred_at"] - timedelta(days=r["occurred_at"].weekday())).date() for r in scored(rows, metric)}
        assert chart.count("<circle") == len(weeks)
        latest = [r["score"]["value"] for r in scored(rows, metric)
                  if (r["occurred_at"] - timedelta(days=r["occurred_at"].weekday())).date() == max(weeks)]  # fmt: skip
        assert f"{fmt.format(round(score(metric, latest), 2))} (n={len(latest)})" in chart, metric


@needs_chromium
def test_brands_are_compared_when_there_is_more_than_one(store, settings, tmp_path: Path) -> None:
    rows = seed(store, brands=("acme", "globex", "initech"))
    dom = dump_dom(write_report(settings, tmp_path / "report.html"), tmp_path / "profile")
    table = section(dom, "brands", "</table>")
    assert table.count("<tr data-brand=") == 3
    for brand in ("acme", "globex", "initech"):
        mine = [r for r in rows if r["brand"] == brand]
        line = table[table.index(f'data-brand="{brand}"') :].split("</tr>")[0]
        for metric in ("nps", "csat", "ces"):
            values = [r["score"]["value"] for r in scored(mine, metric)]
            cell = text_of(line[line.index(f'data-metric="{metric}"') :].split("</td>")[0].split(">", 1)[1])
            shown = re.match(r"([−+]?[\d.]+)%? \(n=(\d+)\)", cell)
            assert shown and abs(number(shown[1]) - score(metric, values)) <= 0.051 and int(shown[2]) == len(values), cell
        assert f">{len(mine)}</td>" in line
    one = dump_dom(write_report(settings, tmp_path / "acme.html", Filters(brand="acme")), tmp_path / "p2")
    assert 'data-render="ok"' in one and 'id="brands-card"' not in one  # negative control: one brand, no comparison


@needs_chromium
def test_nps_by_touchpoint_over_time_counts_each_response_once(store, settings, tmp_path: Path) -> None:
    rows = seed(store, second_tags=True)  # every answer carries its hint and a second model tag
    dom = dump_dom(write_report(settings, tmp_path / "report.html"), tmp_path / "profile")
    cells = section(dom, "nps-heatmap", "</svg>")
    shown = [int(n) for n in re.findall(r'class="mark" data-n="(\d+)"', cells)]
    assert sum(shown) == len(scored(rows, "nps"))  # not twice as many, as mentions would give
    heading = dom[dom.index("NPS by touchpoint over time") : dom.index('id="nps-heatmap"')]
    assert "Primary attribution: each response counts once" in heading and "fewer than 3 behind it" in heading
    by_cell: dict[tuple[str, str], list[float]] = {}
    for r in scored(rows, "nps"):
        week = (r["occurred_at"] - timedelta(days=r["occurred_at"].weekday())).strftime("%m-%d")
        by_cell.setdefault((r["touchpoint_hint"], week), []).append(r["score"]["value"])
    titles = re.findall(r"<title>(\w+) · \d{4}-(\d\d-\d\d) · NPS ([^ ]+) · n=(\d+) responses", cells)
    assert len(titles) == len(by_cell)
    for touchpoint, week, value, n in titles:
        values = by_cell[(touchpoint, week)]
        assert int(n) == len(values) and abs(number(value) - score("nps", values)) <= 0.051


def luminance(colour: tuple[float, float, float]) -> float:
    """WCAG 2 relative luminance of an sRGB colour."""
    linear = [c / 255 / 12.92 if c / 255 <= 0.03928 else ((c / 255 + 0.055) / 1.055) ** 2.4 for c in colour]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def contrast(a: tuple[float, float, float], b: tuple[float, float, float]) -> float:
    high, low_ = sorted((luminance(a), luminance(b)), reverse=True)
    return (high + 0.05) / (low_ + 0.05)


@needs_chromium
def test_low_n_heatmap_cells_are_readable_and_marked(store, settings, tmp_path: Path) -> None:
    seed(store)
    dom = dump_dom(write_report(settings, tmp_path / "report.html"), tmp_path / "profile")
    found = {"true": 0, "false": 0}
    for chart in ("nps-heatmap", "heatmap"):
        for few, body in re.findall(r'<g class="cell" data-low="(true|false)">(.*?)</g>', section(dom, chart, "</svg>")):
            rect = body[: body.index(">")]
            assert "opacity" not in rect  # nothing faded: the page background would show through the text
            fill = tuple(int(c) for c in re.search(r'fill="rgb\((\d+),(\d+),(\d+)\)"', rect).groups())
            n = int(re.search(r'data-n="(\d+)"', rect)[1])
            texts = re.findall(r'<text[^>]* fill="#(fff|000)"[^>]*>([^<]+)</text>', body)
            assert len(texts) == 2 and texts[1][1].startswith(f"n={n}"), body
            for ink, _ in texts:  # WCAG AA for normal text
                assert contrast(fill, (255, 255, 255) if ink == "fff" else (0, 0, 0)) >= 4.5, (fill, ink)
            assert (few == "true") is (n < settings.min_responses)
            if few == "true":
                assert 'stroke-dasharray="4 3"' in rect and texts[1][1].endswith("low")
            found[few] += 1
    assert found["true"] > 5 and found["false"] > 5  # both kinds were checked
    legend = dom[dom.index("Net sentiment by touchpoint over time") : dom.index('id="heatmap"')]
    assert "dashed, paler, “low”: fewer than 3 behind it (low confidence" in legend
