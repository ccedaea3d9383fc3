"""End to end: the study profile over the smoke profile, through real `dvc repro`.

Each approach of profiles/study.yaml is its own cached DVC stage pair (approach@<name>,
approach-eval@<name>); one runs alone, the whole study ranks them all, a second run does nothing.
The study goes on from the session's smoke DAG (``smoke_run``, tests/e2e/conftest.py): its data,
tuning, training and evaluation, which the study's parameters leave as they are.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.e2e.conftest import SmokeRun
from tests.e2e.project import PROJECT_FILES, ROOT, SMOKE, copy_project
from tests.e2e.project import run as _run

APPROACHES = ["prompt_nafnet", "plain_cnn", "specialists", "routed", "release"]
STUDY = "profiles/study.yaml"


@pytest.fixture(scope="module")
def study(smoke_run: SmokeRun) -> Path:
    """The smoke DAG's folder with the study profile applied and the shipped release beside it."""
    project = smoke_run.project
    assert smoke_run.first.returncode == 0, "the smoke DAG failed: see test_pipeline_e2e"
    shutil.copytree(ROOT / "models/release", project / "models/release")
    applied = _run(["girml", "profile", STUDY], project)
    assert applied.returncode == 0, applied.stderr
    return project


@pytest.mark.slow
def test_study_profile_makes_one_stage_per_approach(study: Path) -> None:
    listed = _run(["dvc", "stage", "list", "--name-only"], study)
    assert listed.returncode == 0, listed.stderr
    names = set(listed.stdout.split())
    for name in APPROACHES:
        assert {f"approach@{name}", f"approach-eval@{name}"} <= names
    default = yaml.safe_load((ROOT / "params.yaml").read_text())
    assert default["study"]["approaches"] == {}  # the quick profile trains no approach


def _ran(done: subprocess.CompletedProcess) -> list[str]:
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return [line for line in done.stdout.splitlines() if line.startswith("Running stage")]


@pytest.mark.slow
def test_one_approach_runs_alone_then_the_whole_study(study: Path, tmp_path: Path) -> None:
    # from a fresh copy, an approach needs the data stages only: no tune, train or evaluate
    fresh = copy_project(tmp_path / "fresh", PROJECT_FILES, [*SMOKE, STUDY])
    assert _ran(_run(["dvc", "repro", "approach@plain_cnn"], fresh)) == [
        "Running stage 'collect':",
        "Running stage 'synthesize':",
        "Running stage 'approach@plain_cnn':",
    ]
    record = json.loads((fresh / "models/approaches/plain_cnn/approach.json").read_text())
    assert record["kind"] == "unified" and record["model"] == "plain_cnn"
    assert record["steps"] < 20  # twice the FLOPs per sample of the smoke NAFNet: fewer steps

    # where the pipeline has run: one approach alone, then the whole study around it
    alone = _run(["dvc", "repro", "approach@plain_cnn"], study)
    assert _ran(alone) == ["Running stage 'approach@plain_cnn':"]
    whole = _ran(_run(["dvc", "repro"], study))
    assert "Running stage 'approach@plain_cnn':" not in whole  # cached
    # the study's parameters leave the pipeline's stages (tune, train, evaluate...) as they were
    stages = {line.split("'")[1].split("@")[0] for line in whole}
    assert stages == {"approach", "approach-eval", "study"}, whole
    board = json.loads((study / "metrics/study.json").read_text())
    assert set(board["ranking"]) >= {"model", "identity", *APPROACHES}
    assert board["reference"] == "model"
    for name in APPROACHES:
        method = board["methods"][name]
        assert method["params"] > 0 and method["seconds_per_megapixel"] > 0, name
        assert method["single-id"]["diff_vs_model"] is not None, name
    routing = json.loads((study / "metrics/approaches/routed/cost.json").read_text())["routing"]
    assert routing["clean"] == "identity"
    assert (study / "reports/study/index.html").is_file()

    again = _run(["dvc", "repro"], study)
    assert again.returncode == 0 and "Running stage" not in again.stdout

    # what an approach learned: the interpretation report of one of the study's networks
    report = _run(["girml", "interpret", "--model", "models/approaches/plain_cnn/model"], study)
    assert report.returncode == 0, report.stderr[-3000:]
    assert (study / "reports/interpretation-models-approaches-plain_cnn-model/index.html").is_file()


@pytest.mark.slow
def test_an_approach_that_is_not_listed_is_refused(study: Path) -> None:
    res = _run(["girml", "approach", "nosuch"], study)
    assert res.returncode == 1
    assert "study.approaches has no approach 'nosuch'" in res.stderr + res.stdout
