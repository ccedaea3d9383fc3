"""End to end: real `dvc repro` of the pipeline on the smoke profile, in a fresh copy (the
session's ``smoke_run``, tests/e2e/conftest.py)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.e2e.conftest import SmokeRun
from tests.e2e.project import PROJECT_FILES, copy_project  # noqa: F401 (test_protocols_e2e)
from tests.e2e.project import run as _run

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
def test_dvc_repro_whole_dag_then_nothing_to_do(smoke_run: SmokeRun) -> None:
    """The smoke profile runs every stage (validate is a leaf beside tune..interpret)."""
    project, first = smoke_run.project, smoke_run.first
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

    again = smoke_run.again  # `dvc repro` right after the first
    assert again.returncode == 0
    assert "Running stage" not in again.stdout
    status = smoke_run.status
    assert status.returncode == 0 and "up to date" in status.stdout, status.stdout


@pytest.mark.slow
def test_broken_expectation_stops_dvc_repro(smoke_run: SmokeRun, tmp_path: Path) -> None:
    # a copy: the session's run stays as dvc.lock says (test_study_e2e goes on from it)
    project = tmp_path / "project"
    shutil.copytree(
        smoke_run.project, project, symlinks=True, ignore=shutil.ignore_patterns("checkpoints")
    )
    assert _run(["dvc", "repro", "validate"], project).returncode == 0
    jsonl = project / "data/bench/single-id/noise/recipes.jsonl"
    recs = [json.loads(line) for line in jsonl.read_text().splitlines()]
    recs[0]["recipe"]["steps"][0]["params"]["sigma"] = 200.0
    jsonl.write_text("".join(json.dumps(r) + "\n" for r in recs))
    # the tampered output no longer matches dvc.lock; force only the validate stage
    res = _run(["dvc", "repro", "--single-item", "--force", "validate"], project)
    assert res.returncode != 0
    assert "validation FAILED" in res.stdout + res.stderr
