"""``girml release`` (girml/artifacts/make_release.py): a model folder without a store, and a
registered champion released from the CLI, then restored from in a fresh clone (real MLflow
store)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from typer.testing import CliRunner

from girml.artifacts.make_release import ReleaseInputs, make_release
from girml.artifacts.registered import log_and_register_model
from girml.artifacts.release import CARD_FILE, WEIGHTS_FILE, load_release
from girml.artifacts.store import read_model_config, save_model_dir
from girml.cli import app
from girml.config import DegradationsConfig, TrainConfig
from girml.imageio import write_png
from girml.tracking.logs import log_metrics, log_params_flat
from girml.tracking.runs import start_run
from girml.tracking.versions import CHAMPION, REGISTERED_MODEL, set_alias
from tests.artifacts.common import TINY, project_files, tiny_model, write_metrics
from tests.factories import synthesize_tiny, textured_image


def test_release_of_a_model_folder_without_a_store(offline: Path, spec: DegradationsConfig) -> None:
    """metrics/train.json names the run of models/latest, but there is no store."""
    root = synthesize_tiny(offline / "data")
    model = tiny_model(12)
    folder = save_model_dir(
        model, TINY, Path("models/latest"), extra={"train": TrainConfig(patch_size=48)}
    )
    run = {
        "weights_sha256": read_model_config(folder)["weights_sha256"],
        "mlflow_run_id": "abc123",
        "registered_version": 5,
        "hardware": "Test CPU, 2 cores (CPU)",
    }
    Path("metrics").mkdir(exist_ok=True)
    train_json = {"steps": 40.0, "train_seconds": 3.5, "run": run}
    Path("metrics/train.json").write_text(json.dumps(train_json))
    write_metrics(Path("metrics"), 5)
    lock = {"stages": {"train": {"cmd": "girml train --params params.yaml"}}}
    Path("dvc.lock").write_text(yaml.safe_dump(lock))
    inputs = ReleaseInputs(
        eval_json=Path("metrics/eval.json"),
        per_family_csv=Path("metrics/per_family.csv"),
        manifest=root / "clean" / "manifest.csv",
        pairs_jsonl=root / "pairs" / "train" / "pairs.jsonl",
        bench_dir=root / "bench",
        dvc_lock=Path("dvc.lock"),
        spec=spec,
        spec_source="params.yaml: degradations",
        train_metrics=Path("metrics/train.json"),
    )
    result, prov, metrics = make_release("models/latest", Path("models/release"), inputs, offline)
    assert result.dtype == "float32" and metrics.method == "model"
    assert (prov.registered_version, prov.run_id, prov.steps) == (5, "abc123", 40)
    assert prov.train_seconds == 3.5 and prov.hardware == "Test CPU, 2 cores (CPU)"
    assert prov.train_command == "girml train --params params.yaml"
    assert prov.git_commit == "unknown"  # only the run's tags know it
    assert prov.data.n_clean_train == 3 and prov.data.n_train_pairs == 24
    assert any(note.startswith("no MLflow store") for note in prov.notes)
    assert not (offline / "mlflow.db").exists()
    card = Path("models/release", CARD_FILE).read_text()
    assert "48x48 crops" in card and "Note: no MLflow store" in card
    assert "| git commit | not recorded |" in card
    with pytest.raises(ValueError, match="already a release"):
        make_release("models/release", Path("models/other"), inputs, offline)


def test_cli_release_from_the_champion_then_restore_without_training(
    offline: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project_files(offline)
    runner = CliRunner()
    no_champion = runner.invoke(app, ["release"])
    assert no_champion.exit_code == 2
    assert "no gir-restorer@champion" in no_champion.output
    assert "--model models/latest" in no_champion.output

    model = tiny_model(11)
    example = np.random.default_rng(0).random((1, 3, 16, 16), dtype=np.float32)
    tags = {"git_commit": "e" * 40, "git_dirty": "false", "hardware": "Test GPU x1"}
    tags["dvc.data/pairs"] = "1234.dir"
    with start_run("girml-test", offline, tags=tags, log_system_metrics=False):
        log_params_flat({"model": TINY, "train": TrainConfig(steps=7, patch_size=32)})
        log_metrics(7, {"steps": 7.0, "train_seconds": 12.5})
        version = log_and_register_model(model, example, model_cfg=TINY)
    set_alias(REGISTERED_MODEL, CHAMPION, version)

    write_metrics(offline / "metrics", version + 1)  # the metrics describe another version
    stale = runner.invoke(app, ["release"])
    assert stale.exit_code == 1
    assert f"is version {version}, but metrics/eval.json describes version {version + 1}" in (
        stale.output
    )
    write_metrics(offline / "metrics", version)
    done = runner.invoke(app, ["release"])
    assert done.exit_code == 0, done.output
    assert f"(version {version}) into models/release: float32 weights" in done.output

    out = offline / "models" / "release"
    config = yaml.safe_load((out / "config.yaml").read_text())
    prov = config["provenance"]
    assert prov["source"] == "models:/gir-restorer@champion"
    assert (prov["registered_version"], prov["steps"], prov["train_seconds"]) == (version, 7, 12.5)
    assert (prov["git_commit"], prov["hardware"]) == ("e" * 40, "Test GPU x1")
    assert prov["dvc_hashes"] == {"data/pairs": "1234.dir"}
    assert prov["data"]["n_train_pairs"] == 24
    assert (
        prov["release_command"]
        == "girml release --model models:/gir-restorer@champion -o models/release"
    )
    card = (out / CARD_FILE).read_text()
    assert "`gir-restorer` version 1" in card and "32x32 crops" in card
    x = torch.rand(1, 3, 21, 30, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        assert torch.equal(load_release(out)(x), model(x))

    # fp16 is measured on data/bench; a tiny model's outputs barely move, so it is kept
    half = runner.invoke(app, ["release", "--fp16", "-o", "models/release16"])
    assert half.exit_code == 0, half.output
    assert "float16 weights" in half.output
    assert (out.parent / "release16" / WEIGHTS_FILE).stat().st_size < (
        out / WEIGHTS_FILE
    ).stat().st_size

    # a fresh clone: no store, no models/latest: restore falls back to the release
    (offline / "mlflow.db").unlink()
    write_png(offline / "photo.png", textured_image(0, 40, 56))
    restored = runner.invoke(app, ["restore", "photo.png", "-o", "restored"])
    assert restored.exit_code == 0, restored.output
    assert "model: models/release (release: no MLflow store, so no champion; no models/latest)" in (
        restored.output
    )
    assert (offline / "restored" / "photo.png").is_file()
