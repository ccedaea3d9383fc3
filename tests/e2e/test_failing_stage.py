"""A stage that fails under a real `dvc repro` loses no output (docs/troubleshooting.md).

Each stage gets a params typo in turn. DVC deletes a stage's non-persistent outputs before it
runs the command; the command then stops on the typo (``check_params``) before writing. The
outputs kept in git (``cache: false``) are ``persist: true``, so they must still be there,
byte for byte; the cached ones must come back with ``dvc checkout``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
PROJECT_FILES = [".dvc/config", ".dvc/.gitignore", ".dvcignore", "dvc.yaml", "params.yaml"]

# one typo per stage, in a section the stage depends on, and the key the error must name
TYPOS: dict[str, tuple[str, str, Any]] = {
    "collect": ("collect", "min_size", 0),
    "synthesize": ("synthesize", "patch_size", 4),
    "validate": ("validate", "check_decode", "maybe"),
    "tune": ("tune", "num_samples", 0),
    "train": ("model", "type", "unet9000"),
    "specialists": ("evaluate", "specialist_families", ["fog"]),
    "evaluate": ("evaluate", "baselines", ["identity", "nope"]),
    "interpret": ("interpret", "lam_steps", 1),
}


def _run(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "DVC_NO_ANALYTICS": "1",
        "GX_ANALYTICS_ENABLED": "false",
    }
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


def _paths(entries: list[Any]) -> list[str]:
    return [next(iter(e)) if isinstance(e, dict) else e for e in entries]


def _stages() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]


def _persistent(stage: dict[str, Any]) -> list[str]:
    entries = [*stage.get("outs", []), *stage.get("metrics", []), *stage.get("plots", [])]
    return [
        path
        for e in entries
        if isinstance(e, dict)
        for path, opts in e.items()
        if opts.get("cache") is False
    ]


def _snapshot(root: Path, paths: list[str]) -> dict[str, bytes]:
    files: dict[str, bytes] = {}
    for rel in paths:
        p = root / rel
        found = [f for f in p.rglob("*") if f.is_file()] if p.is_dir() else [p] * p.is_file()
        files.update({f.relative_to(root).as_posix(): f.read_bytes() for f in found})
    return files


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A project copy whose outputs are placeholder files, committed to dvc.lock."""
    dst = tmp_path_factory.mktemp("girml-failing-stage")
    for name in PROJECT_FILES:
        (dst / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, dst / name)
    shutil.copytree(ROOT / "girml", dst / "girml", ignore=shutil.ignore_patterns("__pycache__"))
    for stage in _stages().values():
        if "foreach" in stage:  # the study's approaches: none in the quick profile
            continue
        entries = [*stage["deps"], *stage.get("outs", []), *stage.get("metrics", [])]
        for rel in _paths([*entries, *stage.get("plots", [])]):
            path = dst / rel
            if path.exists():
                continue
            if path.suffix:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(f"committed {rel}\n")
            else:
                path.mkdir(parents=True)
                (path / "part.txt").write_text(f"committed {rel}\n")
    assert _run(["git", "init", "-q"], dst).returncode == 0
    done = _run(["dvc", "commit", "--force", "--quiet"], dst)
    assert done.returncode == 0, done.stdout + done.stderr
    return dst


@pytest.mark.slow
@pytest.mark.parametrize("name", list(TYPOS))
def test_failing_stage_keeps_every_output(project: Path, name: str) -> None:
    stages = _stages()
    outs = [
        p
        for s in stages.values()
        for k in ("outs", "metrics", "plots")
        for p in _paths(s.get(k, []))
    ]
    persistent = [p for s in stages.values() for p in _persistent(s)]
    before = _snapshot(project, outs)
    params_file = project / "params.yaml"
    good = params_file.read_text()
    section, key, value = TYPOS[name]
    params = yaml.safe_load(good)
    params[section][key] = value
    params_file.write_text(yaml.safe_dump(params, sort_keys=False))
    try:
        res = _run(["dvc", "repro", "--single-item", name], project)
    finally:
        params_file.write_text(good)

    assert res.returncode != 0
    assert f"{section}.{key}" in res.stderr, res.stdout + res.stderr
    # outputs kept in git were not deleted (persist) nor touched (the command stopped first)
    assert _snapshot(project, persistent) == {
        k: v for k, v in before.items() if any(k.startswith(p) for p in persistent)
    }
    checkout = _run(["dvc", "checkout", "--quiet"], project)
    assert checkout.returncode == 0, checkout.stderr
    assert _snapshot(project, outs) == before
    status = _run(["dvc", "status", "--quiet"], project)
    assert status.returncode == 0, status.stdout  # the workspace matches dvc.lock again
