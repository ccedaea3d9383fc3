"""``girml convert-model`` (girml/cli_convert.py): its help warns that converting runs code from
the file, it refuses without ``--i-trust-this-file`` (exit 2, naming the file, nothing read or
written), and with the flag it writes a model folder that loads safely.

Real parts: MLflow's own pickled ``pytorch`` flavour (a saved folder), ``torch.save`` files, the
installed CLI (:mod:`pipelines.cli`, which registers the verb as ``python -m girml`` does). The
conversion's own cases (registered versions, checkpoints, configs) are in
``tests/artifacts/test_convert.py``.
"""

from __future__ import annotations

from pathlib import Path

import mlflow.pytorch
import torch
from typer.testing import CliRunner

from girml.artifacts.store import WEIGHTS_FILE, read_model_config
from girml.core.errors import EX_BAD_INPUT
from pipelines.cli import app
from tests.artifacts.test_convert import same_outputs, write_config
from tests.artifacts.test_loading import hostile_module, one_error_line
from tests.factories import TINY_MODEL as TINY
from tests.factories import tiny_model


def test_help_says_it_runs_code_from_the_file() -> None:
    result = CliRunner().invoke(app, ["convert-model", "--help"])
    assert result.exit_code == 0
    text = " ".join(result.output.split())
    assert "THIS RUNS CODE FROM THE FILE" in text
    assert "only on files that you or your team produced" in text
    assert "--i-trust-this-file" in text


def test_an_mlflow_pickled_folder_converts_to_the_same_model(tmp_path: Path) -> None:
    original = tiny_model(3)
    source = tmp_path / "old"
    mlflow.pytorch.save_model(
        original, str(source), serialization_format="pickle", pip_requirements=["torch"]
    )
    config = write_config(tmp_path / "params.yaml", TINY)
    out = tmp_path / "converted"
    args = ["convert-model", str(source), "-o", str(out), "--config", str(config)]
    result = CliRunner().invoke(app, [*args, "--i-trust-this-file"])
    assert result.exit_code == 0, result.output
    assert f"converted {source} (data/model.pth" in result.output
    assert f"use it with --model {out}" in " ".join(result.output.split())
    assert sorted(p.name for p in out.iterdir()) == ["config.yaml", WEIGHTS_FILE]
    written = read_model_config(out)
    assert written["model"] == TINY.model_dump(mode="json")
    assert written["converted_from"]["file"] == "data/model.pth"
    assert same_outputs(out, original)


def test_without_the_flag_nothing_is_read_or_written(tmp_path: Path) -> None:
    marker = tmp_path / "PWNED"
    source = tmp_path / "hostile.pth"
    torch.save(hostile_module(marker), source)
    out = tmp_path / "converted"
    result = CliRunner().invoke(app, ["convert-model", str(source), "-o", str(out)])
    line = one_error_line(result.output)
    assert result.exit_code == EX_BAD_INPUT == 2
    assert f"unpickles {source}" in line
    assert "runs any code in it" in line and "--i-trust-this-file" in line
    assert not marker.exists() and not out.exists()
