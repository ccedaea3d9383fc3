"""A fresh copy of the project for the end-to-end tests, and commands run in it as a user would."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PROJECT_FILES = [".dvc/config", ".dvc/.gitignore", ".dvcignore", "dvc.yaml", "params.yaml",
                 "profiles", "girml", "pipelines", "metrics/approaches/.gitkeep",
                 "metrics/protocols/.gitkeep"]  # fmt: skip
# the smoke profile, then the e2e tests' own overrides (fewer whole photos, smaller selection set)
SMOKE = ["profiles/smoke.yaml", str(Path(__file__).with_name("smaller.yaml"))]


def run(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    """``args`` run in the copy ``cwd`` with this environment's tools, offline and quiet."""
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "DVC_NO_ANALYTICS": "1",
        "GX_ANALYTICS_ENABLED": "false",
        "DO_NOT_TRACK": "1",
        # the copy's own registry, whatever the caller's environment points at
        "MLFLOW_TRACKING_URI": f"sqlite:///{cwd / 'mlflow.db'}",
    }
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=1200)


def copy_project(
    dst: Path, names: list[str], profiles: list[str], mlflow_db: Path | None = None
) -> Path:
    """The project's files ``names`` copied to ``dst``, a git repository, with ``profiles``
    applied in order; its MLflow store starts as a copy of ``mlflow_db`` when given (the
    ``mlflow_schema`` fixture: no stage waits for the schema migrations)."""
    for name in names:
        src = ROOT / name
        if src.is_dir():
            shutil.copytree(src, dst / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            (dst / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dst / name)
    assert run(["git", "init", "-q"], dst).returncode == 0
    for profile in profiles:
        applied = run(["girml", "profile", profile], dst)
        assert applied.returncode == 0, applied.stderr
    if mlflow_db is not None:
        shutil.copyfile(mlflow_db, dst / "mlflow.db")
    return dst
