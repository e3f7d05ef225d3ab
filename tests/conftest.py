"""Shared fixtures: one chdb engine per test process (a chdb rule), a random database
per test, the real embedded broker once per session, the real models once per session."""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import Iterator

import pytest

from touchpoint.core.settings import Settings
from touchpoint.pipeline.store import Store

# The default encoder is ONNX int8, exported from the loaded weights at first use; one export folder for the
# whole run (workers started as subprocesses inherit it), instead of one export per test's data folder.
os.environ.setdefault("TOUCHPOINT_ONNX_DIR", str(Path(__file__).resolve().parents[1] / ".touchpoint" / "models"))


@pytest.fixture(scope="session")
def chdb_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    return f"chdb://{tmp_path_factory.mktemp('chdb')}"


@pytest.fixture
def settings(chdb_url: str, tmp_path: Path) -> Settings:
    """Settings isolated per test: own database, topics and consumer group."""
    run = uuid.uuid4().hex[:8]
    return Settings(
        clickhouse_url=chdb_url,
        clickhouse_database=f"test_{run}",
        data_dir=tmp_path,
        app_id=f"touchpoint-test-{run}",
        topic_raw=f"{run}.signals.raw",
        topic_enriched=f"{run}.signals.enriched",
        topic_dead_letter=f"{run}.signals.dead-letter",
        topic_dead_letter_replays=f"{run}.signals.dead-letter.replays",
        topic_partitions=2,
        kafka_rebalance_timeout_s=3.0,
        kafka_session_timeout_s=10.0,
        enrich_batch_window_s=0.2,
        sink_batch_window_s=0.2,
        min_responses=3,
        customer_id_secret="test-secret-of-this-test-session",
    )


@pytest.fixture
def store(settings: Settings) -> Iterator[Store]:
    store = Store.from_settings(settings)
    store.migrate()
    yield store
    store.close()


@pytest.fixture(scope="session")
def enricher():
    from touchpoint.models.encoder import configure_inference
    from touchpoint.models.enricher import Enricher

    configure_inference(0)  # the test process is the entry point here
    return Enricher()
