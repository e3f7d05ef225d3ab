from __future__ import annotations

from typing import Iterator

import pytest

from touchpoint.core.broker import EmbeddedBroker
from touchpoint.core.settings import Settings


@pytest.fixture(scope="session")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedBroker]:
    """The real Tansu broker, once per test session."""
    with EmbeddedBroker(log_file=tmp_path_factory.mktemp("broker") / "tansu.log") as broker:
        yield broker


@pytest.fixture
def live_settings(settings: Settings, broker: EmbeddedBroker) -> Settings:
    return settings.with_overrides(kafka_bootstrap=broker.bootstrap)
