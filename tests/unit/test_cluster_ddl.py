"""The cluster DDL (schemas/clickhouse/cluster/cluster.sql): current with the migrations, and it renders to SQL
ClickHouse parses, with a replicated table on every shard and a Distributed table sharded by each table's identity."""

from __future__ import annotations

import re

import pytest

from touchpoint.cli import main
from touchpoint.pipeline.cluster import cluster_sql_path, generate, render
from touchpoint.pipeline.store import migrations


def test_the_committed_cluster_ddl_is_what_the_migrations_generate(store) -> None:
    assert cluster_sql_path().read_text() == generate(store), (
        "schemas/clickhouse/cluster/cluster.sql is stale: regenerate it with touchpoint.pipeline.cluster.generate()"
    )


def test_it_renders_to_statements_clickhouse_parses(store) -> None:
    statements = [s.sql for s in render(cluster_sql_path().read_text(), "cx", "prod")]
    for sql in statements:  # ClickHouse's own parser (chdb): a syntax error raises
        store.query("SELECT formatQuery({sql:String}) AS q", {"sql": sql})
        assert "{db}" not in sql and "{cluster}" not in sql
    text = "\n".join(statements)
    tables = [r["name"] for r in store.query(
        "SELECT name FROM system.tables WHERE database = {db:String} AND engine LIKE '%MergeTree'", {"db": store.database}
    )]  # fmt: skip
    for table in set(tables) - {"schema_migrations"}:
        assert f"CREATE TABLE IF NOT EXISTS cx.{table}_local ON CLUSTER 'prod'" in text
        assert re.search(rf"ENGINE = ReplicatedReplacingMergeTree\('/clickhouse/tables/\{{shard\}}/cx/{table}_local', '\{{replica\}}'", text)
        assert re.search(rf"cx\.{table} ON CLUSTER 'prod' AS cx\.{table}_local\nENGINE = Distributed\('prod', 'cx', '{table}_local', cityHash64\(", text)
    # one row per signal: the signals table is sharded and keyed by signal_id alone (003_one_row_per_signal.sql)
    assert "Distributed('prod', 'cx', 'signals_local', cityHash64(signal_id))" in text
    assert re.search(r"signals_local ON CLUSTER 'prod'\n\([^;]*\)\nENGINE = ReplicatedReplacingMergeTree\([^)]*enriched_at\)\nPARTITION BY tuple\(\)\nORDER BY signal_id", text)
    # later migrations reach the cluster too: 006's stored primary touchpoint and its read-time fallback
    assert "`primary_touchpoint` LowCardinality(Nullable(String))" in text
    assert "`attributed_touchpoint` String ALIAS ifNull(primary_touchpoint," in text
    # a worker's start-up migrate finds every version applied
    assert "/clickhouse/tables/all/cx/schema_migrations" in text
    assert all(f"({m.version}, '{m.name}')" in text for m in migrations())


def test_a_cluster_name_that_is_not_an_identifier_is_refused() -> None:
    with pytest.raises(ValueError, match="plain identifier"):
        render(cluster_sql_path().read_text(), "cx", "prod'; DROP TABLE x; --")


def test_touchpoint_migrate_cluster_prints_it(capsys, monkeypatch) -> None:
    monkeypatch.setenv("TOUCHPOINT_CLICKHOUSE_DATABASE", "cx")
    assert main(["migrate", "--cluster", "prod"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("CREATE DATABASE IF NOT EXISTS cx ON CLUSTER 'prod';")
    assert "ENGINE = Distributed('prod', 'cx', 'signals_local', cityHash64(signal_id));" in out
