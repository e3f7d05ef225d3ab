"""Data flows one way: the layering contract, checked on every import in the tree.

    touchpoint (cli/: command line, demo, up)     may import every layer
    touchpoint.connectors   touchpoint.pipeline   never each other
              \\                 /       \\
            touchpoint.core (platform)   touchpoint.models
                      |
            touchpoint.schemas (contracts)

Every import statement is parsed, those inside functions and under
TYPE_CHECKING too, so a lazy import cannot slip a dependency past the rule.
The folders come from pyproject.toml's ``package-dir``, the same mapping the
installer uses.
"""

from __future__ import annotations

import ast
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE_DIRS: dict[str, str] = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-dir"]
# package -> the layers it may import (itself included)
ALLOWED: dict[str, set[str]] = {
    "touchpoint.schemas": {"touchpoint.schemas"},
    "touchpoint.models": {"touchpoint.models"},
    "touchpoint.core": {"touchpoint.core", "touchpoint.schemas"},
    "touchpoint.connectors": {"touchpoint.connectors", "touchpoint.core", "touchpoint.schemas"},
    "touchpoint.pipeline": {"touchpoint.pipeline", "touchpoint.core", "touchpoint.schemas", "touchpoint.models"},
    "touchpoint": set(PACKAGE_DIRS),  # the composition root wires everything
}
# Finer rules inside a layer: (importer, imported) module pairs that must stay apart.
FORBIDDEN_PAIRS = {
    ("touchpoint.pipeline.report", "touchpoint.pipeline.api"),  # the report is a file, not a web page
    ("touchpoint.pipeline.offline", "touchpoint.pipeline.app"),  # offline enrichment needs no Faust
    ("touchpoint.pipeline.enrichment", "touchpoint.pipeline.app"),
}
# Names the code had before the single import root; importing them now means a shim or a stray path.
OLD_ROOTS = {"pipeline", "connectors", "models", "schemas", "core", "cli", "samples"}


def layer_of(module: str) -> str:
    """The mapped package a module belongs to (the longest matching prefix)."""
    matches = [package for package in PACKAGE_DIRS if module == package or module.startswith(package + ".")]
    return max(matches, key=len) if matches else module.split(".")[0]


def module_name(path: Path) -> str:
    for package, folder in sorted(PACKAGE_DIRS.items(), key=lambda item: -len(item[1])):
        base = ROOT / folder
        if path.is_relative_to(base):
            parts = list(path.relative_to(base).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            return ".".join([package, *parts])
    raise ValueError(f"{path} is not in a mapped folder")


def imported_modules(source: str, module: str, is_package: bool = False) -> list[tuple[int, str]]:
    """(line, absolute module name) for every import in ``source``, relative ones resolved."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = module.split(".") if is_package else module.split(".")[:-1]
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            if base == "touchpoint":  # `from touchpoint import core`: what is imported is touchpoint.core
                found += [(node.lineno, f"{base}.{alias.name}") for alias in node.names]
            else:
                found.append((node.lineno, base))
    return found


def violations(source: str, module: str, is_package: bool = False) -> list[str]:
    """What in ``source`` (the text of ``module``) breaks the layering contract."""
    own = layer_of(module)
    problems = []
    for line, target in imported_modules(source, module, is_package):
        top = target.split(".")[0]
        if top in OLD_ROOTS:
            problems.append(f"{module}:{line} imports {target!r}: use touchpoint.* (one import root)")
        elif top == "touchpoint":
            target_layer = layer_of(target)
            if target_layer not in ALLOWED[own]:
                problems.append(f"{module}:{line} imports {target} ({own} may import only {sorted(ALLOWED[own])})")
            if any(module == a and (target == b or target.startswith(b + ".")) for a, b in FORBIDDEN_PAIRS):
                problems.append(f"{module}:{line} imports {target}, which it must not")
    return problems


def product_files() -> list[Path]:
    return sorted(path for folder in set(PACKAGE_DIRS.values()) for path in (ROOT / folder).rglob("*.py"))


def test_every_layer_imports_only_what_it_may() -> None:
    files = product_files()
    assert len(files) > 50, "the mapped folders should hold the whole product"
    problems = []
    for path in files:
        problems += violations(path.read_text(encoding="utf-8"), module_name(path), path.name == "__init__.py")
    assert not problems, "\n".join(problems)


def test_tests_and_benchmarks_use_the_import_root() -> None:
    problems = []
    for folder in ("tests", "bench"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            for line, target in imported_modules(path.read_text(encoding="utf-8"), f"{folder}.{path.stem}"):
                if target.split(".")[0] in OLD_ROOTS:
                    problems.append(f"{path.relative_to(ROOT)}:{line} imports {target!r}")
    assert not problems, "\n".join(problems)


def test_the_checker_catches_what_it_forbids() -> None:
    """Negative control: each rule flags a snippet that breaks it."""
    assert violations("from touchpoint.pipeline.store import Store\n", "touchpoint.connectors.runner")
    assert violations("from touchpoint.connectors import files\n", "touchpoint.pipeline.app")
    assert violations("def f():\n    from touchpoint.connectors.producer import SignalProducer\n", "touchpoint.pipeline.demo")
    assert violations("import touchpoint.core.settings\n", "touchpoint.models.encoder")
    assert violations("from touchpoint.core import metrics\n", "touchpoint.schemas.codec")
    assert violations("from touchpoint import cli\n", "touchpoint.core.kafka")  # layers never import the root
    assert violations("from ..pipeline import store\n", "touchpoint.connectors.files")  # relative, resolved
    assert violations("from pipeline.settings import Settings\n", "touchpoint.cli")  # an old root name
    assert violations("from touchpoint.pipeline.api import to_json\n", "touchpoint.pipeline.report")
    # and lets through what is allowed
    assert not violations("from touchpoint.core.settings import Settings\n", "touchpoint.connectors.runner")
    assert not violations("from touchpoint.models.enricher import Enricher\n", "touchpoint.pipeline.enrichment")
    assert not violations("from touchpoint.connectors.files import import_file\n", "touchpoint.demo")
    assert not violations("from . import metrics\n", "touchpoint.core", is_package=True)


def test_model_tools_and_the_report_do_not_load_faust() -> None:
    """train, eval, offline enrichment and the report run without the streaming app."""
    script = (
        "import sys\n"
        "import touchpoint.pipeline.enrichment, touchpoint.pipeline.offline, touchpoint.pipeline.report\n"
        "import touchpoint.models.train, touchpoint.models.evaluate\n"
        "print(sorted(m for m in sys.modules if m == 'faust' or m.startswith('faust.')))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300, cwd="/")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]", done.stdout
