"""The distribution as a user installs it: one import root, working outside the repository.

Builds the wheel from this tree (as `pip install .` would), installs it into a
fresh folder, and runs it from a project folder that has its own `models/` and
`pipeline/` packages (every Django or ML project has one): ours must not
shadow theirs, nor theirs ours.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def run(*command: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    return done


def test_wheel_installs_one_import_root_that_works_beside_a_users_own_packages(tmp_path: Path) -> None:
    source = tmp_path / "source"  # a copy: building in place would leave build/ in the working tree
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(".git", ".venv", ".touchpoint", "build", "*.egg-info", "__pycache__"))
    wheels = tmp_path / "wheels"
    run(sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(wheels), str(source), cwd=tmp_path)
    [wheel] = list(wheels.glob("touchpoint-*.whl"))
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        top_level = {name.split("/")[0] for name in names if not name.split("/")[0].endswith((".dist-info", ".data"))}
        assert top_level == {"touchpoint"}, top_level
        for data in ("touchpoint/schemas/avro/raw_signal.v1.avsc", "touchpoint/models/taxonomy.yaml",
                     "touchpoint/models/taxonomies/airline.yaml", "touchpoint/models/taxonomies/_off_topic.yaml",
                     "touchpoint/models/emotions.yaml", "touchpoint/models/labels/packs/airline.jsonl",
                     "touchpoint/samples/demo_signals.jsonl", "touchpoint/pipeline/templates/report.html",
                     "touchpoint/samples/routing_rules.yaml", "touchpoint/schemas/avro/action.v1.avsc"):  # fmt: skip
            assert data in names, f"{data} missing from the wheel"
        [top_level_txt] = [n for n in names if n.endswith(".dist-info/top_level.txt")] or [None]
        if top_level_txt:
            assert archive.read(top_level_txt).decode().split() == ["touchpoint"]

    site = tmp_path / "site"
    run(sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(site), str(wheel), cwd=tmp_path)
    project = tmp_path / "users_project"  # a user's own generic package names, in the working directory
    for name in ("models", "pipeline", "schemas", "connectors"):
        (project / name).mkdir(parents=True)
        (project / name / "__init__.py").write_text(f"OWNER = 'user {name}'\n")
    env = {**os.environ, "PYTHONPATH": str(site)}
    script = (
        "import models, pipeline, touchpoint.pipeline.app, touchpoint.models.encoder, touchpoint.cli\n"
        "from touchpoint.schemas.codec import AvroCodec\n"
        "AvroCodec.for_subject('raw_signal')\n"
        "print(models.OWNER, pipeline.OWNER, touchpoint.pipeline.app.__file__)\n"
    )
    out = run(sys.executable, "-c", script, cwd=project, env=env).stdout
    assert out.startswith("user models user pipeline ") and out.split()[-1].startswith(str(site)), out
    help_text = run(sys.executable, "-m", "touchpoint", "--help", cwd=project, env=env).stdout
    assert "demo" in help_text and "worker" in help_text
