"""Bundled real sample data for `touchpoint demo` (see SOURCES.md)."""

from importlib import resources
from pathlib import Path


def sample_path(name: str) -> Path:
    return Path(str(resources.files("touchpoint.samples").joinpath(name)))
