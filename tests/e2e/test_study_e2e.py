"""End to end: the study profile over the smoke profile, through real `dvc repro`, in a fresh copy.

Each approach of profiles/study.yaml is its own cached DVC stage pair (approach@<name>,
approach-eval@<name>); one runs alone, the whole study ranks them all, a second run does nothing.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from tests.e2e.test_pipeline_e2e import PROJECT_FILES, SMOKE, _run, copy_project

APPROACHES = ["prompt_nafnet", "plain_cnn", "specialists", "routed", "release"]


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return copy_project(
        tmp_path_factory.mktemp("girml-study"),
        [*PROJECT_FILES, "models/release"],
        [*SMOKE, "profiles/study.yaml", str(Path(__file__).with_name("smaller_study.yaml"))],
    )


@pytest.mark.slow
def test_study_profile_makes_one_stage_per_approach(study: Path) -> None:
    listed = _run(["dvc", "stage", "list", "--name-only"], study)
    assert listed.returncode == 0, listed.stderr
    names = set(listed.stdout.split())
    for name in APPROACHES:
        assert {f"approach@{name}", f"approach-eval@{name}"} <= names
    default = yaml.safe_load((Path(__file__).parents[2] / "params.yaml").read_text())
    assert default["study"]["approaches"] == {}  # the quick profile trains no approach


@pytest.mark.slow
def test_one_approach_runs_alone_then_the_whole_study(study: Path) -> None:
    alone = _run(["dvc", "repro", "approach@plain_cnn"], study)
    assert alone.returncode == 0, alone.stdout[-3000:] + alone.stderr[-3000:]
    ran = [line for line in alone.stdout.splitlines() if line.startswith("Running stage")]
    assert ran == [
        "Running stage 'collect':",
        "Running stage 'synthesize':",
        "Running stage 'approach@plain_cnn':",
    ]
    record = json.loads((study / "models/approaches/plain_cnn/approach.json").read_text())
    assert record["kind"] == "unified" and record["model"] == "plain_cnn"
    assert record["steps"] < 20  # twice the FLOPs per sample of the smoke NAFNet: fewer steps

    whole = _run(["dvc", "repro"], study)
    assert whole.returncode == 0, whole.stdout[-3000:] + whole.stderr[-3000:]
    assert "Running stage 'approach@plain_cnn'" not in whole.stdout  # cached
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
