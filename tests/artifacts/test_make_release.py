"""``girml release`` (girml/artifacts/make_release.py): a model folder without a store, one
released with real-photo scores and a profile from paths outside the project (no path of this
machine on the card), and a registered champion released from the CLI, then restored from in a
fresh clone (real MLflow store)."""

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
from girml.core.imageio import write_png
from girml.tracking.logs import log_metrics, log_params_flat
from girml.tracking.runs import start_run
from girml.tracking.versions import CHAMPION, REGISTERED_MODEL, set_alias
from tests.artifacts.common import TINY, project_files, real_record, tiny_model, write_metrics
from tests.factories import synthesize_tiny, textured_image


def trained_folder() -> None:
    """models/latest with metrics/train.json naming its run (version 5, no store), the
    evaluate stage's metrics of version 5 and a dvc.lock, in the working directory."""
    folder = save_model_dir(
        tiny_model(12), TINY, Path("models/latest"), extra={"train": TrainConfig(patch_size=48)}
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


def test_release_of_a_model_folder_without_a_store(offline: Path, spec: DegradationsConfig) -> None:
    """metrics/train.json names the run of models/latest, but there is no store."""
    root = synthesize_tiny(offline / "data")
    trained_folder()
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


def test_cli_release_records_no_path_of_this_machine(offline: Path, tmp_path: Path) -> None:
    """--real-photos and a scoring command from outside the project, --profile inside it."""
    project_files(offline)
    trained_folder()
    runner = CliRunner()
    first = runner.invoke(app, ["release", "--model", "models/latest"])
    assert first.exit_code == 0, first.output
    out = offline / "models" / "release"
    sha = yaml.safe_load((out / "config.yaml").read_text())["weights"]["sha256"]
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    record = real_record(sha)
    record["command"] = (
        f"python benchmarks/real_photos.py --model {out} --json {elsewhere}/real_photos.json"
    )
    (elsewhere / "real_photos.json").write_text(json.dumps(record))
    Path("profiles").mkdir()
    Path("profiles/long.yaml").write_text("train:\n  steps: 7000\n")

    args = ["release", "--model", "models/latest", "--real-photos"]
    args += [str(elsewhere / "real_photos.json"), "--profile", str(offline / "profiles/long.yaml")]
    done = runner.invoke(app, args)
    assert done.exit_code == 0, done.output
    card = (out / CARD_FILE).read_text()
    config = (out / "config.yaml").read_text()
    for text in (card, config):
        assert str(tmp_path) not in text and "/elsewhere/" not in text
    command = (
        "girml release --model models/latest -o models/release "
        "--real-photos path/to/real_photos.json --profile profiles/long.yaml"
    )
    assert yaml.safe_load(config)["provenance"]["release_command"] == command
    assert yaml.safe_load(config)["provenance"]["profile"] == "profiles/long.yaml"
    assert f"| release command | `{command}` |" in card
    scored = (
        "python benchmarks/real_photos.py --model models/release --json path/to/real_photos.json"
    )
    assert f"`{scored}` scored these very weights" in card
    procedure = card[card.index("## Training procedure") : card.index("### Provenance")]
    assert "\ngirml profile profiles/long.yaml\n" in procedure and f"\n{scored}\n" in procedure
    assert "Note: no MLflow store (sqlite:///mlflow.db)" in card

    # profiles laid one over another: each named, in order, in the reproduction commands
    Path("profiles/finetune.yaml").write_text("train:\n  init_from: release\n")
    two = "profiles/long.yaml+profiles/finetune.yaml"
    done = runner.invoke(app, ["release", "--model", "models/latest", "--profile", two])
    assert done.exit_code == 0, done.output
    assert yaml.safe_load((out / "config.yaml").read_text())["provenance"]["profile"] == two
    card = (out / CARD_FILE).read_text()
    procedure = card[card.index("## Training procedure") : card.index("### Provenance")]
    first, second = (
        "\ngirml profile profiles/long.yaml\n",
        "\ngirml profile profiles/finetune.yaml\n",
    )
    assert first in procedure and second in procedure
    assert procedure.index(first) < procedure.index(second)

    for profile, says in (
        ("profiles/nothing.yaml", "--profile profiles/nothing.yaml: no such file"),
        ("profiles/long.yaml+profiles/none.yaml", "--profile profiles/none.yaml: no such file"),
        (str(elsewhere / "real_photos.json"), "is outside the project"),
    ):
        refused = runner.invoke(app, ["release", "--model", "models/latest", "--profile", profile])
        assert refused.exit_code == 2 and says in refused.output, refused.output


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
