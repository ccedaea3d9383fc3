"""``girml export`` (girml/cli_export.py): ``--format onnx`` writes a file that ``girml restore
--model FILE`` runs through the same tiled restore, matching the torch model's PNGs; bad
arguments exit 2 and write nothing.

Real parts: the installed CLI (:mod:`pipelines.cli`, which registers the verb as ``python -m
girml`` does), model folders on disk, torch's exporter and onnxruntime.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from girml.artifacts.store import save_model_dir
from girml.core.imageio import read_image, write_png
from pipelines.cli import app
from tests.factories import TINY_MODEL, textured_image, tiny_model

pytestmark = pytest.mark.usefixtures("restore_environ")


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A folder with a small model folder ``model`` and a 101x75 photo ``in/photo.png``."""
    monkeypatch.chdir(tmp_path)
    save_model_dir(tiny_model(0), TINY_MODEL, tmp_path / "model")
    write_png(tmp_path / "in" / "photo.png", textured_image(3, 75, 101))
    return tmp_path


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--format", "tflite", "--model", "model"], "--format must be one of onnx, got 'tflite'"),
        (["--model", "other.onnx"], "other.onnx is an ONNX model already"),
        (["--model", "missing"], "model folder missing not found"),
    ],
)
def test_bad_arguments_exit_2_and_write_nothing(project: Path, args: list, message: str) -> None:
    (project / "other.onnx").write_bytes(b"")
    result = CliRunner().invoke(app, ["export", *args, "--out", "out.onnx"])
    assert result.exit_code == 2, result.output
    assert " ".join(result.output.split()).count(f"error: {message}") == 1
    assert not (project / "out.onnx").exists()


@pytest.mark.slow
def test_restore_with_the_exported_file_writes_the_torch_model_s_pngs(project: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(app, ["export", "--model", "model", "--out", "model.onnx"])
    assert result.exit_code == 0, result.output
    said = " ".join(result.output.split())
    assert "exported model (nafnet, 2 pooling layers) to model.onnx:" in said
    assert "restore with girml restore --model model.onnx" in said
    tiled = ["--tile", "32", "--overlap", "8", "--self-ensemble", "2"]  # 12 tiles per view
    for model, out in (("model", "torch"), ("model.onnx", "onnx")):
        result = runner.invoke(app, ["restore", "in", "--out", out, "--model", model, *tiled])
        assert result.exit_code == 0, result.output
    assert "model: model.onnx (ONNX model, onnxruntime on the CPU) on cpu" in result.output
    torch_png = read_image(project / "torch" / "photo.png").astype(int)
    onnx_png = read_image(project / "onnx" / "photo.png").astype(int)
    assert torch_png.shape == onnx_png.shape == (75, 101, 3)
    # within 1e-4 before rounding: at most one grey level where a value sits on a .5 boundary
    assert np.abs(torch_png - onnx_png).max() <= 1
    assert (torch_png != onnx_png).mean() < 1e-3
