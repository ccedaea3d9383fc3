"""``girml approach-eval <name>`` (girml/stages/approach_eval.py) in a tiny project: it scores
the approach that ``approach@<name>`` wrote on every benchmark image with ``params.yaml:
evaluate`` and writes metrics/approaches/<name>/ for the study; an approach that the study does
not list, or that was not trained, stops it in one line.

Real parts: the ``girml approach-eval`` command in a project folder with a synthesized bench,
an approach folder written as the approach stage writes it.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from girml.config import ModelConfig, TrainConfig
from girml.models import build_model
from girml.stages.approach import save_approach
from girml.training.approaches import TrainedApproach
from pipelines.cli import app
from tests.factories import synthesize_tiny, tiny_params, write_params

TINY = ModelConfig(width=4, enc_blocks=[1], middle_blocks=0)
RUN = TrainConfig(steps=3, batch_size=2, patch_size=16, num_workers=0)
EVALUATE = {"niqe_patch_size": 16, "baselines": ["identity"]}


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return synthesize_tiny(tmp_path_factory.mktemp("data"))


@pytest.fixture
def project(data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A project folder (the working directory): data/ linked in, the study's ``unified``
    approach in params.yaml, no approach trained yet."""
    (tmp_path / "data").symlink_to(data)
    params = {**tiny_params(), "evaluate": EVALUATE}
    params["study"] = {"approaches": {"unified": {"kind": "unified"}}}
    write_params(tmp_path / "params.yaml", params)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _one_error(output: str) -> str:
    errors = [line for line in output.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and "Traceback" not in output, output
    return errors[0]


def test_approach_eval_scores_every_crop_and_writes_rows_and_cost(
    project: Path, data: Path
) -> None:
    torch.manual_seed(0)
    record = {"kind": "unified", "budget_tflop": 0.1}
    trained = TrainedApproach(record, {"model": build_model(TINY).eval()}, TINY, RUN)
    save_approach(trained, project / "models" / "approaches" / "unified")
    result = CliRunner().invoke(app, ["approach-eval", "unified"])
    assert result.exit_code == 0, result.output
    # the crop suites: whole photos are scored for the model and the champion only
    n_images = len([p for p in (data / "bench").glob("*/*/lq/*.png") if p.parts[-4] != "whole"])
    out = project / "metrics" / "approaches" / "unified"
    assert sorted(p.name for p in out.iterdir()) == ["cost.json", "per_image.csv"]
    with (out / "per_image.csv").open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == n_images and {row["method"] for row in rows} == {"unified"}
    cost = json.loads((out / "cost.json").read_text())
    assert cost["params"] == sum(p.numel() for p in build_model(TINY).parameters())
    assert cost["seconds_per_megapixel"] > 0
    done = (
        f"approach unified: {n_images} images scored, 0 failed, "
        f"{cost['seconds_per_megapixel']} s/MP, {cost['params']} parameters; "
        "wrote metrics/approaches/unified/\n"
    )
    assert done in result.output  # after the progress bars


def test_an_approach_the_study_does_not_list_is_named(project: Path) -> None:
    result = CliRunner().invoke(app, ["approach-eval", "nope"])
    assert result.exit_code == 1, result.output
    assert _one_error(result.output) == (
        "error: params.yaml: study.approaches has no approach 'nope' "
        "(profiles/study.yaml lists the study's approaches)"
    )
    assert not (project / "metrics").exists()


def test_an_untrained_approach_names_the_stage_to_run(project: Path) -> None:
    result = CliRunner().invoke(app, ["approach-eval", "unified"])
    assert result.exit_code == 1, result.output
    assert _one_error(result.output) == (
        "error: models/approaches/unified/approach.json not found: run `dvc repro approach@unified`"
    )
    assert not (project / "metrics").exists()
