"""The queries ops depend on, read from deploy/: alert rule expressions and the Grafana
dashboards' PromQL and SQL, with Grafana's macros replaced so real engines can run them."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Iterator

import yaml

DEPLOY = Path(__file__).resolve().parents[1] / "deploy"
DASHBOARDS = DEPLOY / "grafana" / "dashboards"

# Grafana's Prometheus macros and template variables -> concrete values.
PROMQL_MACROS = {"$__rate_interval": "1m", "$__interval": "1m", "$__range": "5m"}
# Grafana's ClickHouse plugin macros (grafana-clickhouse-datasource) -> ClickHouse SQL.
SQL_MACROS = {
    r"\$__timeFilter\((\w+)\)": r"\1 >= now() - INTERVAL 30 DAY AND \1 <= now()",
    r"\$__fromTime": "(now() - INTERVAL 30 DAY)",
    r"\$__toTime": "now()",
    r"\$__timeInterval\((\w+)\)": r"toStartOfInterval(\1, INTERVAL 1 DAY)",
}


def alert_rules() -> list[dict[str, Any]]:
    groups = yaml.safe_load((DEPLOY / "prometheus" / "alerts.yml").read_text())["groups"]
    return [rule for group in groups for rule in group["rules"]]


def alert_exprs() -> list[str]:
    return [rule["expr"] for rule in alert_rules()]


def dashboard(name: str) -> dict[str, Any]:
    return json.loads((DASHBOARDS / f"{name}.json").read_text())


def panels(board: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for panel in board.get("panels", []):
        yield panel
        yield from panel.get("panels", [])  # collapsed rows


def promql(expr: str) -> str:
    for macro, concrete in PROMQL_MACROS.items():
        expr = expr.replace(macro, concrete)
    return expr


def dashboard_promql(name: str = "touchpoint-ops") -> list[str]:
    return [promql(t["expr"]) for p in panels(dashboard(name)) for t in p.get("targets", []) if "expr" in t]


def sql(text: str, database: str) -> str:
    for macro, concrete in SQL_MACROS.items():
        text = re.sub(macro, concrete, text)
    return text.replace("${database}", database).replace("$database", database)


def dashboard_sql(database: str, name: str = "touchpoint-cx") -> list[str]:
    return [sql(t["rawSql"], database) for p in panels(dashboard(name)) for t in p.get("targets", []) if "rawSql" in t]


def dashboard_annotation_sql(database: str, name: str = "touchpoint-cx") -> list[str]:
    """The SQL of a dashboard's annotation queries (Grafana draws their rows as markers on every panel)."""
    board = dashboard(name)
    return [sql(a["target"]["rawSql"], database) for a in board["annotations"]["list"] if "rawSql" in a.get("target", {})]
