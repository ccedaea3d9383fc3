"""End to end: real `dvc repro` of the pipeline on the smoke profile, in a fresh copy."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PROJECT_FILES = [".dvc/config", ".dvc/.gitignore", ".dvcignore", "dvc.yaml", "params.yaml",
                 "profiles", "girml", "pipelines", "metrics/approaches/.gitkeep"]  # fmt: skip
# the smoke profile, then the e2e tests' own overrides (fewer whole photos, smaller selection set)
SMOKE = ["profiles/smoke.yaml", str(Path(__file__).with_name("smaller.yaml"))]


def _run(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
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


def copy_project(dst: Path, names: list[str], profiles: list[str]) -> Path:
    """The project's files ``names`` copied to ``dst``, a git repository, with ``profiles``
    applied in order."""
    for name in names:
        src = ROOT / name
        if src.is_dir():
            shutil.copytree(src, dst / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            (dst / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dst / name)
    assert _run(["git", "init", "-q"], dst).returncode == 0
    for profile in profiles:
        applied = _run(["girml", "profile", profile], dst)
        assert applied.returncode == 0, applied.stderr
    return dst


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return copy_project(tmp_path_factory.mktemp("girml-e2e"), PROJECT_FILES, SMOKE)


STAGE_OUTPUTS = [
    "data/clean/images", "data/clean/manifest.csv", "data/clean/rejected.csv",  # collect
    "data/pairs", "data/bench",  # synthesize
    "reports/validation/index.html", "reports/validation/result.json",  # validate
    "tune/best.yaml", "reports/tune/trials.csv",  # tune
    "models/latest", "metrics/train.json",  # train
    "models/specialists/specialists.json",  # specialists (off: an empty list)
    "metrics/per_image.csv", "metrics/per_family.csv", "metrics/eval.json",  # evaluate
    "plots/psnr_per_family.csv", "plots/generalization.csv",
    "reports/interpretation/index.html",  # interpret
]  # fmt: skip


@pytest.mark.slow
def test_dvc_repro_whole_dag_then_nothing_to_do(project: Path) -> None:
    """The smoke profile runs every stage (validate is a leaf beside tune..interpret)."""
    first = _run(["dvc", "repro"], project)
    assert first.returncode == 0, first.stdout[-4000:] + first.stderr[-4000:]
    missing = [name for name in STAGE_OUTPUTS if not (project / name).exists()]
    assert not missing, missing
    manifest = (project / "data/clean/manifest.csv").read_text().splitlines()
    assert manifest[0] == "id,source,origin,width,height,category,split" and len(manifest) > 8
    assert (project / "data/pairs/train/pairs.jsonl").is_file()
    assert len(list((project / "data/bench").glob("*/*/recipes.jsonl"))) >= 20
    assert json.loads((project / "reports/validation/result.json").read_text())["success"]
    assert json.loads((project / "metrics/train.json").read_text())["steps"] == 20

    ev = json.loads((project / "metrics/eval.json").read_text())
    # the whole-photo suite (one photo here: tests/e2e/smaller.yaml) reached the report too
    for key in ("gir_score", "harm_rate.single-id", "harm.clean_psnr_y.single-id",
                "harm.block_shift.whole"):  # fmt: skip
        assert key in ev, sorted(ev)

    from mlflow import MlflowClient

    from girml.tracking.versions import CHAMPION, REGISTERED_MODEL

    client = MlflowClient(tracking_uri=f"sqlite:///{project / 'mlflow.db'}")
    versions = client.search_model_versions(f"name = '{REGISTERED_MODEL}'")
    assert [int(v.version) for v in versions] == [1]
    assert int(client.get_model_version_by_alias(REGISTERED_MODEL, CHAMPION).version) == 1

    again = _run(["dvc", "repro"], project)
    assert again.returncode == 0
    assert "Running stage" not in again.stdout
    status = _run(["dvc", "status"], project)
    assert status.returncode == 0 and "up to date" in status.stdout, status.stdout


@pytest.mark.slow
def test_broken_expectation_stops_dvc_repro(project: Path) -> None:
    assert _run(["dvc", "repro", "validate"], project).returncode == 0
    jsonl = project / "data/bench/single-id/noise/recipes.jsonl"
    recs = [json.loads(line) for line in jsonl.read_text().splitlines()]
    recs[0]["recipe"]["steps"][0]["params"]["sigma"] = 200.0
    jsonl.write_text("".join(json.dumps(r) + "\n" for r in recs))
    # the tampered output no longer matches dvc.lock; force only the validate stage
    res = _run(["dvc", "repro", "--single-item", "--force", "validate"], project)
    assert res.returncode != 0
    assert "validation FAILED" in res.stdout + res.stderr
