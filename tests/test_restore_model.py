"""``resolve_restore_model`` (girml/restore_model.py): ``girml restore`` names the registry version
behind an alias (and loads that version), or the folder and its kind, before loading anything.

Real parts: model and release folders on disk, a SQLite MLflow registry whose champion is a
registered release, the ``girml restore`` command.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from safetensors.torch import save_file
from typer.testing import CliRunner

from girml.artifacts.registered import champion_or_release
from girml.artifacts.release import FORMAT
from girml.artifacts.store import save_model_dir
from girml.cli import app
from girml.core.imageio import write_png
from girml.restore_model import RestoreModel, resolve_restore_model
from tests.factories import TINY_MODEL, textured_image, tiny_model

pytestmark = pytest.mark.usefixtures("restore_environ")  # configure() exports variables


def write_release(folder: Path, seed: int = 0) -> Path:
    """A release folder as ``girml release`` writes it: safetensors weights plus config."""
    folder.mkdir(parents=True, exist_ok=True)
    weights = {k: v.contiguous() for k, v in tiny_model(seed).state_dict().items()}
    save_file(weights, folder / "model.safetensors")
    config = {"format": FORMAT, "model": TINY_MODEL.model_dump()}
    (folder / "config.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    return folder


def test_folders_are_named_with_their_kind(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    save_model_dir(tiny_model(0), TINY_MODEL, tmp_path / "trained")
    write_release(tmp_path / "shipped")
    (tmp_path / "pulled").mkdir()
    (tmp_path / "pulled" / "MLmodel").write_text("flavors: {}\n")
    (tmp_path / "empty").mkdir()
    for name, kind in [
        ("trained", "model folder"),
        ("shipped", "release folder"),
        ("pulled", "MLflow model folder"),
        ("empty", "folder"),
    ]:
        chosen = resolve_restore_model(name)
        assert chosen == RestoreModel(name, name, f"{name} ({kind})", folder=tmp_path / name)
    # what is not a folder is passed on as given: loading it says what is wrong
    assert resolve_restore_model("nothing-here") == RestoreModel(
        "nothing-here", "nothing-here", "nothing-here"
    )
    assert resolve_restore_model("runs:/abc/model").load == "runs:/abc/model"


def test_a_registry_uri_without_a_store_is_one_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    with pytest.raises(ValueError) as info:
        resolve_restore_model("models:/gir-restorer@champion")
    assert str(info.value) == (
        "cannot load model models:/gir-restorer@champion: no MLflow store at "
        f"sqlite:///{tmp_path.resolve() / 'mlflow.db'}"
    )
    assert not (tmp_path / "mlflow.db").exists(), "looking must not create a store"


def test_an_alias_is_pinned_to_its_version_and_named(
    mlflow_store: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Before: ``model: models:/gir-restorer@champion on cpu``, no version."""
    monkeypatch.chdir(mlflow_store)
    version = champion_or_release(write_release(mlflow_store / "models" / "release"), mlflow_store)
    assert version == 1

    chosen = resolve_restore_model("models:/gir-restorer@champion")
    assert chosen == RestoreModel(
        "models:/gir-restorer/1",
        "models:/gir-restorer@champion",
        "models:/gir-restorer@champion (version 1)",
        version=1,
        alias="champion",
    )
    assert resolve_restore_model("models:/gir-restorer/1").description == "models:/gir-restorer/1"
    with pytest.raises(ValueError, match=r"^cannot load model models:/gir-restorer@nope: not in"):
        resolve_restore_model("models:/gir-restorer@nope")
    # the default: the champion, pinned, described as the default choice describes it
    default = resolve_restore_model(None)
    assert (default.load, default.version, default.alias) == (
        "models:/gir-restorer/1",
        1,
        "champion",
    )
    assert default.description.startswith("models:/gir-restorer@champion (champion: version 1 (")

    write_png(mlflow_store / "in" / "a.png", textured_image(0, 24, 32))
    args = ["restore", "in", "-o", "out", "--model", "models:/gir-restorer@champion"]
    result = CliRunner().invoke(app, [*args, "--json", "restore.json"])
    assert result.exit_code == 0, result.output
    assert "model: models:/gir-restorer@champion (version 1) on cpu" in result.output.splitlines()
    summary = json.loads((mlflow_store / "restore.json").read_text())
    assert summary["model"]["version"] == 1 and summary["model"]["alias"] == "champion"
    assert summary["images"][0]["model"] == {
        "uri": "models:/gir-restorer/1",
        "version": 1,
        "folder": None,
    }
    assert (mlflow_store / "out" / "a.png").is_file()


def test_an_onnx_file_is_named_as_one_and_a_missing_one_fails_before_loading(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "model.onnx").write_bytes(b"")
    described = "model.onnx (ONNX model, onnxruntime on the CPU)"
    assert resolve_restore_model("model.onnx") == RestoreModel(
        "model.onnx", "model.onnx", described
    )
    with pytest.raises(FileNotFoundError, match=r"^ONNX model gone\.onnx not found$"):
        resolve_restore_model("gone.onnx")
