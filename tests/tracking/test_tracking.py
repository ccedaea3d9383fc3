"""MLflow adapter and model store against a real temporary SQLite MLflow store (no mocks)."""

from __future__ import annotations

import csv
import hashlib
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import mlflow
import numpy as np
import pytest
import torch
import yaml
from mlflow import MlflowClient

from girml.config import ConfigError, ModelConfig, TrainConfig
from girml.models import build_model
from girml.models.store import (
    default_model_uri,
    load_model,
    load_model_dir,
    read_model_config,
    save_model_dir,
)
from girml.tracking.mlflow import (
    CHALLENGER,
    CHAMPION,
    REGISTERED_MODEL,
    dvc_output_hashes,
    flatten_params,
    get_alias_version,
    log_and_register_model,
    log_curves,
    log_metrics,
    log_params_flat,
    provenance_tags,
    set_alias,
    start_run,
)

TINY = ModelConfig(width=4, enc_blocks=[1], middle_blocks=0)
LOCK = {
    "schema": "2.0",
    "stages": {
        "collect": {
            "cmd": "girml collect",
            "outs": [
                {"path": "data/clean/images", "hash": "md5", "md5": "6acb7def.dir"},
                {"path": "data/clean/manifest.csv", "hash": "md5", "md5": "5e233330"},
            ],
        },
        "synthesize": {"cmd": "girml synthesize", "deps": [{"path": "data/clean/images"}]},
    },
}


def tiny_model(seed: int) -> torch.nn.Module:
    torch.manual_seed(seed)
    model = build_model(TINY)
    with torch.no_grad():  # a freshly built NAFNet is close to identity; make outputs differ
        for param in model.parameters():
            param.add_(0.1 * torch.randn_like(param))
    return model.eval()


@pytest.fixture(autouse=True)
def offline_git(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep MLflow offline and git from finding a repository above tmp_path."""
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    monkeypatch.setenv("MLFLOW_ENABLE_ASYNC_LOGGING", "false")
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A SQLite MLflow store shared by this module (creating one costs seconds); yields its file.

    Only one test registers models, so version numbers and aliases are its own.
    """
    db = tmp_path_factory.mktemp("store") / "mlflow.db"
    uri = f"sqlite:///{db}"
    before = mlflow.get_tracking_uri()
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLFLOW_TRACKING_URI", uri)
        patch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
        patch.setenv("MLFLOW_ENABLE_ASYNC_LOGGING", "false")
        mlflow.set_tracking_uri(uri)
        yield db
        while mlflow.active_run() is not None:
            mlflow.end_run()
        mlflow.set_tracking_uri(before)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A committed git work tree with params.yaml and a dvc.lock."""
    root = tmp_path / "project"
    root.mkdir()
    (root / "params.yaml").write_text("train:\n  steps: 3\n", encoding="utf-8")
    (root / "dvc.lock").write_text(yaml.safe_dump(LOCK), encoding="utf-8")
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", "-c", "commit.gpgsign=0"]
    subprocess.run([*git, "init", "-q"], cwd=root, check=True)
    subprocess.run([*git, "add", "."], cwd=root, check=True)
    subprocess.run([*git, "commit", "-qm", "init"], cwd=root, check=True)
    return root


def test_flatten_params_dotted_keys_json_lists_and_length_limit() -> None:
    flat = flatten_params(
        {"train": TrainConfig(steps=7), "a": {"b": {"c": 1}, "empty": {}}, "long": "x" * 600}
    )
    assert flat["train.steps"] == "7"
    assert flat["train.betas"] == "[0.9, 0.9]"
    assert flat["a.b.c"] == "1"
    assert flat["a.empty"] == "{}"
    assert len(flat["long"]) == 500 and flat["long"].endswith("...")
    assert all(isinstance(v, str) for v in flat.values())


def test_run_records_params_metrics_provenance_and_curves(store: Path, project: Path) -> None:
    tags = provenance_tags(project, Path("params.yaml"))
    history = [{"step": s, "loss": 1.0 / (s + 1)} for s in range(3)]
    history[-1]["val/psnr"] = 25.5
    with start_run("girml-test", project, run_name="r1", tags=tags) as run:
        log_params_flat({"train": TrainConfig(steps=3), "model": TINY})
        for row in history:
            log_metrics(row["step"], {k: v for k, v in row.items() if k != "step"})
        log_curves(history, "curves/train")
    client = MlflowClient()
    data = client.get_run(run.info.run_id)
    assert data.info.status == "FINISHED"
    assert data.data.params["train.steps"] == "3"
    assert data.data.params["model.enc_blocks"] == "[1]"
    assert [m.step for m in client.get_metric_history(run.info.run_id, "loss")] == [0, 1, 2]
    assert data.data.metrics["val/psnr"] == pytest.approx(25.5)

    head = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=project, capture_output=True, text=True, check=True
    ).stdout.strip()
    run_tags = data.data.tags
    assert run_tags["git_commit"] == head and len(head) == 40
    assert run_tags["git_dirty"] == "false"
    assert run_tags["dvc.data/clean/images"] == "6acb7def.dir"
    assert run_tags["dvc.data/clean/manifest.csv"] == "5e233330"
    params_hash = hashlib.sha256((project / "params.yaml").read_bytes()).hexdigest()[:16]
    assert run_tags["params_hash"] == params_hash

    # artifacts land in mlartifacts/ next to the database, not in ./mlruns
    experiment = client.get_experiment(data.info.experiment_id)
    assert experiment.artifact_location == (store.parent / "mlartifacts").as_uri()
    listed = {a.path for a in client.list_artifacts(run.info.run_id, "curves")}
    assert listed == {"curves/train.csv", "curves/train.png"}
    local = Path(
        mlflow.artifacts.download_artifacts(run_id=run.info.run_id, artifact_path="curves")
    )
    rows = list(csv.DictReader((local / "train.csv").open(encoding="utf-8")))
    assert [r["step"] for r in rows] == ["0", "1", "2"]
    assert rows[0]["val/psnr"] == "" and float(rows[2]["val/psnr"]) == 25.5
    assert (local / "train.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_provenance_outside_git_and_bad_inputs(tmp_path: Path) -> None:
    (tmp_path / "params.yaml").write_text("a: 1\n", encoding="utf-8")
    tags = provenance_tags(tmp_path, tmp_path / "params.yaml")
    assert tags["git_commit"] == "unknown" and tags["git_dirty"] == "unknown"
    assert not any(key.startswith("dvc.") for key in tags)
    with pytest.raises(FileNotFoundError, match=r"nope\.yaml"):
        provenance_tags(tmp_path, Path("nope.yaml"))
    (tmp_path / "dvc.lock").write_text("stages: [unclosed\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"dvc\.lock"):
        dvc_output_hashes(tmp_path / "dvc.lock")
    (tmp_path / "dvc.lock").write_text("stages: [1, 2]\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"dvc\.lock"):
        dvc_output_hashes(tmp_path / "dvc.lock")


def test_provenance_marks_dirty_tree(project: Path) -> None:
    (project / "params.yaml").write_text("train:\n  steps: 4\n", encoding="utf-8")
    assert provenance_tags(project, Path("params.yaml"))["git_dirty"] == "true"


def test_bad_arguments(store: Path, project: Path) -> None:
    example = np.zeros((1, 3, 8, 8), np.float32)
    with pytest.raises(RuntimeError, match="active run"):
        log_and_register_model(tiny_model(0), example, model_cfg=TINY)
    with start_run("girml-test", project, log_system_metrics=False):
        with pytest.raises(ValueError, match=r"\(1,3,H,W\)"):
            log_and_register_model(tiny_model(0), example[0], model_cfg=TINY)
        with pytest.raises(ValueError, match="float32"):
            log_and_register_model(tiny_model(0), example.astype(np.float64), model_cfg=TINY)
        with pytest.raises(ValueError, match="step must be >= 0, got -1"):
            log_metrics(-1, {"loss": 1.0})
        with pytest.raises(ValueError, match="relative artifact path"):
            log_curves([{"step": 0, "loss": 1.0}], "../outside")
        with pytest.raises(ValueError, match=r"history\[1\] has no 'step'"):
            log_curves([{"step": 0, "loss": 1.0}, {"loss": 0.5}], "curves/x")


def test_register_versions_aliases_and_default_uri(
    store: Path, project: Path, tmp_path: Path
) -> None:
    first, second = tiny_model(0), tiny_model(1)
    example = np.random.default_rng(0).random((1, 3, 16, 16), dtype=np.float32)
    with start_run("girml-test", project):
        assert log_and_register_model(first, example, model_cfg=TINY) == 1
        assert log_and_register_model(second, example, model_cfg=TINY) == 2

    x = torch.rand(1, 3, 37, 53, generator=torch.Generator().manual_seed(0))  # not a multiple
    loaded = load_model(f"models:/{REGISTERED_MODEL}/1")
    assert not loaded.training
    with torch.no_grad():
        assert torch.allclose(loaded(x), first(x), atol=1e-6)
        assert not torch.allclose(loaded(x), second(x), atol=1e-3)
    with pytest.raises(ValueError, match=f"models:/{REGISTERED_MODEL}/9"):
        load_model(f"models:/{REGISTERED_MODEL}/9")

    local = tmp_path / "models" / "latest"
    assert get_alias_version(REGISTERED_MODEL, CHAMPION) is None
    with pytest.raises(FileNotFoundError, match="dvc repro train"):
        default_model_uri(local, project_root=project)
    save_model_dir(first, TINY, local)
    assert default_model_uri(local, project_root=project) == str(local)

    set_alias(REGISTERED_MODEL, CHAMPION, 2)
    set_alias(REGISTERED_MODEL, CHALLENGER, 1)
    assert get_alias_version(REGISTERED_MODEL, CHAMPION) == 2
    assert get_alias_version(REGISTERED_MODEL, CHALLENGER) == 1
    uri = default_model_uri(local, project_root=project)
    assert uri == f"models:/{REGISTERED_MODEL}@{CHAMPION}"
    with torch.no_grad():
        assert torch.allclose(load_model(uri)(x), second(x), atol=1e-6)


def test_default_uri_without_registry_creates_no_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    local = tmp_path / "latest"
    save_model_dir(tiny_model(0), TINY, local)
    assert default_model_uri(local, project_root=tmp_path) == str(local)
    assert not (tmp_path / "mlflow.db").exists()


def test_model_dir_round_trip_and_replacement(tmp_path: Path) -> None:
    model = tiny_model(3)
    out = tmp_path / "models" / "latest"
    out.mkdir(parents=True)
    (out / "stale.txt").write_text("old", encoding="utf-8")
    extra = {"train": TrainConfig(steps=5), "metrics": {"psnr": np.float32(30.5)}}
    assert save_model_dir(model, TINY, out, extra=extra) == out
    assert sorted(p.name for p in out.iterdir()) == ["config.yaml", "weights.pt"]
    assert sorted(p.name for p in out.parent.iterdir()) == ["latest"]  # no temp folders left
    config = read_model_config(out)
    assert config["model"] == TINY.model_dump(mode="json")
    assert config["train"]["betas"] == [0.9, 0.9]
    assert config["metrics"]["psnr"] == pytest.approx(30.5)

    loaded = load_model(str(out))
    assert not loaded.training
    x = torch.rand(1, 3, 20, 30, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        assert torch.equal(loaded(x), model(x))
    with pytest.raises(ValueError, match="'model'"):
        save_model_dir(model, TINY, out, extra={"model": {}})


def test_model_dir_errors_name_the_path(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"
    with pytest.raises(FileNotFoundError, match=f"{re.escape(str(missing))}.*dvc repro train"):
        load_model(str(missing))

    folder = tmp_path / "m"
    save_model_dir(tiny_model(0), TINY, folder)
    (folder / "weights.pt").unlink()
    with pytest.raises(FileNotFoundError, match=re.escape(f"{folder} is missing weights.pt")):
        load_model_dir(folder)

    (folder / "weights.pt").write_bytes(b"not a torch file")
    with pytest.raises(ValueError, match=re.escape(f"{folder / 'weights.pt'}: corrupt")):
        load_model_dir(folder)

    save_model_dir(tiny_model(0), TINY, folder)
    wider = TINY.model_copy(update={"width": 8})
    (folder / "config.yaml").write_text(yaml.safe_dump({"model": wider.model_dump()}), "utf-8")
    with pytest.raises(ValueError, match="does not match"):
        load_model_dir(folder)

    (folder / "config.yaml").write_text("model: {width: 2}\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"model\.width"):
        load_model_dir(folder)
    (folder / "config.yaml").write_text("model: {type: nope}\n", encoding="utf-8")
    with pytest.raises(ValueError, match="unknown architecture 'nope'"):
        load_model_dir(folder)
    (folder / "config.yaml").write_text("train: {}\n", encoding="utf-8")
    with pytest.raises(ValueError, match="'model' mapping"):
        load_model_dir(folder)
