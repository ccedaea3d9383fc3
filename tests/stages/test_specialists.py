"""``girml specialists`` (girml/stages/specialists.py) in a tiny project: off, it writes an
empty list only; on, it trains one specialist per family with models/latest's config, started
from its ``train.init_from`` when set, and writes models/specialists/ for evaluate to score.

Real parts: the ``girml specialists`` command, the synthesize stage's pairs, real training.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from girml.artifacts.specialists import load_specialists
from girml.artifacts.store import load_model_dir, read_model_config, save_model_dir
from girml.cli import app
from girml.config import ModelConfig, TrainConfig
from girml.models import build_model
from girml.stages.specialists import model_configs
from tests.factories import synthesize_tiny, tiny_params, write_params

TINY = ModelConfig(width=4, enc_blocks=[1], middle_blocks=0)
RUN = TrainConfig(
    steps=2, batch_size=2, patch_size=16, num_workers=0, val_every=2, ckpt_every=2, lr=1e-9
)


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty project folder as the working directory, with the tiny params."""
    monkeypatch.chdir(tmp_path)
    write_params(tmp_path / "params.yaml", tiny_params())
    return tmp_path


def _specialists(project: Path, evaluate: dict) -> str:
    """Run ``girml specialists`` with ``evaluate``; its exit code must be 0. Returns its output
    (progress bars included)."""
    write_params(project / "params.yaml", {**tiny_params(), "evaluate": evaluate})
    result = CliRunner().invoke(app, ["specialists"])
    assert result.exit_code == 0, result.output
    return result.output


def test_off_writes_an_empty_list_and_nothing_else(project: Path) -> None:
    out = project / "models" / "specialists"
    (out / "stale").mkdir(parents=True)  # the folder is replaced as a whole
    output = _specialists(project, {"specialists": False, "specialist_families": ["noise"]})
    assert output == "evaluate.specialists is off: wrote models/specialists/ with no specialists\n"
    assert [p.name for p in out.iterdir()] == ["specialists.json"]
    assert json.loads((out / "specialists.json").read_text()) == {"families": []}
    assert not (project / "checkpoints").exists()


def test_on_trains_each_family_from_the_init_weights_of_models_latest(project: Path) -> None:
    synthesize_tiny(project / "data")
    torch.manual_seed(7)
    source = save_model_dir(build_model(TINY), TINY, project / "src")
    fine_tune = RUN.model_copy(update={"init_from": "src"})
    save_model_dir(build_model(TINY), TINY, project / "models" / "latest", {"train": fine_tune})
    output = _specialists(project, {"specialists": True, "specialist_families": ["blur", "noise"]})
    done = "trained specialists for blur, noise (2 steps each); wrote models/specialists/\n"
    assert done in output  # after the progress bars

    out = project / "models" / "specialists"
    assert sorted(p.name for p in out.iterdir()) == ["blur", "noise", "specialists.json"]
    assert sorted(p.name for p in (project / "checkpoints" / "specialists").iterdir()) == [
        "blur",
        "noise",
    ]
    stored = read_model_config(out / "noise")["train"]
    assert stored["online_degradation_prob"] == 1.0 and stored["init_from"] == "src"
    networks = load_specialists(out)
    assert list(networks) == ["blur", "noise"]
    weights = load_model_dir(source).state_dict()
    for network in networks.values():  # one step at lr 1e-9 from the source: still the source
        for key, value in network.state_dict().items():
            torch.testing.assert_close(value, weights[key], atol=1e-5, rtol=1e-4)


def test_a_bad_init_source_fails_in_one_line_before_any_checkpoint(project: Path) -> None:
    synthesize_tiny(project / "data")
    fine_tune = RUN.model_copy(update={"init_from": "nowhere"})
    save_model_dir(build_model(TINY), TINY, project / "models" / "latest", {"train": fine_tune})
    write_params(project / "params.yaml", {**tiny_params(), "evaluate": {"specialists": True}})
    result = CliRunner().invoke(app, ["specialists"])
    assert result.exit_code == 1, result.output
    errors = [line for line in result.output.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and errors[0].startswith(
        "error: train.init_from='nowhere': cannot load it: model folder nowhere not found"
    )
    assert not (project / "checkpoints").exists() and not (project / "models/specialists").exists()


def test_model_configs_reads_the_folder_and_names_a_bad_key(tmp_path: Path) -> None:
    folder = save_model_dir(build_model(TINY), TINY, tmp_path / "m", {"train": RUN})
    assert model_configs(folder) == (TINY, RUN)
    bad = save_model_dir(build_model(TINY), TINY, tmp_path / "bad", {"train": {"steps": 0}})
    with pytest.raises(ValueError, match=r"(?s)bad/config\.yaml: invalid config.*train\.steps"):
        model_configs(bad)
