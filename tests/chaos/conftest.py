"""One stack per crash-safety test: its own broker (restartable on its port), topics and chdb folder."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pytest

from tests.chaos.harness import Stack


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    world = Stack(tmp_path)
    world.start_broker()
    yield world
    world.stop_all()
