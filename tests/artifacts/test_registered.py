"""Registered versions (girml/artifacts/registered.py): a network logged as weights plus config
(no pickle) and loaded back, and the shipped release as a version of its own that the first
trained model must beat. Older pickled versions are refused (tests/artifacts/test_loading.py),
converted on request (tests/artifacts/test_convert.py) and migrated (tests/test_cli_migrate.py);
MLflow's own loader runs tests/artifacts/test_restorer_model.py.

A real SQLite MLflow store in a temporary folder; no mocks except the pickle modules that a
weights-plus-config load must never touch.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import cloudpickle
import mlflow
import mlflow.pyfunc
import numpy as np
import pytest
import torch
import yaml
from mlflow import MlflowClient
from safetensors.torch import save_file

from girml.artifacts.champion import apply_decision
from girml.artifacts.default_model import choose_default_model
from girml.artifacts.loading import load_model
from girml.artifacts.make_release import open_source
from girml.artifacts.promotion import EvaluationResult, evaluate_and_promote
from girml.artifacts.registered import (
    MODEL_DESCRIPTION,
    champion_or_release,
    load_logged_model,
    log_and_register_model,
    register_release,
)
from girml.artifacts.release import FORMAT
from girml.artifacts.store import read_model_config, save_model_dir
from girml.config import EvaluateConfig, ModelConfig
from girml.models import build_model
from girml.tracking.logged_models import MODEL_ARTIFACT, MODEL_FORMAT
from girml.tracking.registry import (
    CHAMPION_REASON_TAG,
    RELEASE_SHA_TAG,
    RELEASE_TAG,
    champion_info,
)
from girml.tracking.runs import start_run
from girml.tracking.versions import (
    CHALLENGER,
    CHAMPION,
    REGISTERED_MODEL,
    get_alias_version,
    set_alias,
)
from tests.evaluation.common import TRAIN_JSON, register
from tests.evaluation.common import tiny_model as noisy_model
from tests.factories import TINY_MODEL as TINY
from tests.factories import synthesize_tiny, tiny_model

EXAMPLE = np.random.default_rng(0).random((1, 3, 16, 16), dtype=np.float32)


@pytest.fixture
def store(mlflow_store: Path) -> Path:
    """A fresh SQLite store per test (tests/conftest.py); the project root beside it."""
    root = mlflow_store / "project"
    root.mkdir()
    return root


def refuse_unpickling(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("a weights-plus-config version must load without unpickling")

    for module, name in [
        (pickle, "load"),
        (pickle, "loads"),
        (pickle, "Unpickler"),
        (cloudpickle, "load"),
        (cloudpickle, "loads"),
    ]:
        monkeypatch.setattr(module, name, refuse)


def write_release(folder: Path, model: torch.nn.Module, cfg: ModelConfig = TINY) -> Path:
    """A release folder as ``girml release`` writes it: safetensors weights plus config."""
    folder.mkdir(parents=True, exist_ok=True)
    save_file(
        {k: v.contiguous() for k, v in model.state_dict().items()}, folder / "model.safetensors"
    )
    config = {"format": FORMAT, "model": cfg.model_dump()}
    (folder / "config.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    return folder


# --------------------------------------------------------------------------- trained versions


def test_a_registered_version_is_a_model_folder_rebuilt_without_unpickling(
    store: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = tiny_model(3)
    with start_run("girml-test", store, log_system_metrics=False):
        version = log_and_register_model(model, EXAMPLE, model_cfg=TINY)
    assert version == 1
    uri = f"models:/{REGISTERED_MODEL}/{version}"

    local = Path(mlflow.artifacts.download_artifacts(artifact_uri=uri, dst_path=tmp_path / "dl"))
    mlmodel = yaml.safe_load((local / "MLmodel").read_text())
    assert "pytorch" not in mlmodel["flavors"]
    pyfunc = mlmodel["flavors"]["python_function"]
    assert mlmodel["metadata"]["format"] == MODEL_FORMAT
    folder = local / pyfunc["artifacts"][MODEL_ARTIFACT]["path"]
    assert sorted(p.name for p in folder.iterdir()) == ["config.yaml", "weights.pt"]
    assert read_model_config(folder)["model"] == TINY.model_dump(mode="json")
    assert not list(local.rglob("*.pkl")) and not list(local.rglob("*.pth"))

    refuse_unpickling(monkeypatch)
    loaded = load_model(uri)
    assert not loaded.training
    x = torch.rand(1, 3, 19, 23, generator=torch.Generator().manual_seed(0))  # any size
    with torch.no_grad():
        assert torch.equal(loaded(x), model(x))


def test_a_broken_version_names_the_uri(store: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=f"models:/{REGISTERED_MODEL}/7"):
        load_model(f"models:/{REGISTERED_MODEL}/7")
    folder = tmp_path / "not-a-model"
    folder.mkdir()
    (folder / "MLmodel").write_text("flavors: {python_function: {loader_module: x}}\n")
    with pytest.raises(ValueError, match="neither a girml model folder nor a pytorch model"):
        load_model(str(folder))


def test_bad_arguments(store: Path) -> None:
    example = np.zeros((1, 3, 8, 8), np.float32)
    with pytest.raises(RuntimeError, match="active run"):
        log_and_register_model(tiny_model(0), example, model_cfg=TINY)
    with start_run("girml-test", store, log_system_metrics=False):
        with pytest.raises(ValueError, match=r"\(1,3,H,W\)"):
            log_and_register_model(tiny_model(0), example[0], model_cfg=TINY)
        with pytest.raises(ValueError, match="float32"):
            log_and_register_model(tiny_model(0), example.astype(np.float64), model_cfg=TINY)


def test_versions_and_aliases_load_and_pick_the_default_model(store: Path, tmp_path: Path) -> None:
    first, second = tiny_model(0), tiny_model(1)
    with start_run("girml-test", store):
        assert log_and_register_model(first, EXAMPLE, model_cfg=TINY) == 1
        assert log_and_register_model(second, EXAMPLE, model_cfg=TINY) == 2

    x = torch.rand(1, 3, 37, 53, generator=torch.Generator().manual_seed(0))  # not a multiple
    loaded = load_logged_model(f"models:/{REGISTERED_MODEL}/1")
    assert not loaded.training
    with torch.no_grad():
        assert torch.allclose(loaded(x), first(x), atol=1e-6)
        assert not torch.allclose(loaded(x), second(x), atol=1e-3)

    local = tmp_path / "models" / "latest"
    with pytest.raises(FileNotFoundError, match="dvc repro train"):
        choose_default_model(local, project_root=store)
    save_model_dir(first, TINY, local)
    assert choose_default_model(local, project_root=store).uri == str(local)

    set_alias(REGISTERED_MODEL, CHAMPION, 2)
    set_alias(REGISTERED_MODEL, CHALLENGER, 1)
    uri = choose_default_model(local, project_root=store).uri
    assert uri == f"models:/{REGISTERED_MODEL}@{CHAMPION}"
    with torch.no_grad():
        assert torch.allclose(load_model(uri)(x), second(x), atol=1e-6)


# --------------------------------------------------------------------------- the release


def test_register_release_once_per_weights_file(mlflow_store: Path) -> None:
    folder = write_release(mlflow_store / "models" / "release", noisy_model(0, 0.05))
    config = yaml.safe_load((folder / "config.yaml").read_text(encoding="utf-8"))
    config["provenance"] = {"git_commit": "abc123", "params_hash": "d753", "profile": None}
    (folder / "config.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    (folder / "MODEL_CARD.md").write_text("# the release's card\n", encoding="utf-8")
    first = register_release(folder, mlflow_store)
    assert first.registered
    again = register_release(folder, mlflow_store)
    assert again == type(first)(first.version, first.sha256, registered=False)
    mv = MlflowClient().get_model_version(REGISTERED_MODEL, str(first.version))
    assert mv.tags[RELEASE_TAG] == "true" and mv.tags[RELEASE_SHA_TAG] == first.sha256
    assert mv.tags["git_commit"] == "abc123" and mv.tags["params_hash"] == "d753"
    assert "profile" not in mv.tags  # not known: no tag rather than "None"
    assert "shipped release" in mv.description and "MODEL_CARD.md among" in mv.description
    # the card is among the version's artifacts; the registered model describes itself
    local = Path(
        mlflow.artifacts.download_artifacts(
            artifact_uri=f"models:/{REGISTERED_MODEL}/{first.version}",
            dst_path=str(mlflow_store / "dl"),
        )
    )
    (card,) = local.rglob("MODEL_CARD.md")
    assert card.read_text(encoding="utf-8") == "# the release's card\n"
    registered = MlflowClient().get_registered_model(REGISTERED_MODEL)
    assert registered.description == MODEL_DESCRIPTION
    # the registered version serves the release's own network
    x = torch.rand(1, 3, 24, 24)
    with torch.inference_mode():
        expected = build_model(TINY)
        expected.load_state_dict(noisy_model(0, 0.05).state_dict())
        served = load_logged_model(f"models:/{REGISTERED_MODEL}/{first.version}")
        torch.testing.assert_close(served(x), expected.eval()(x))
    # and what `mlflow models serve` loads, MLflow's own pyfunc loader, predicts the same
    pyfunc = mlflow.pyfunc.load_model(f"models:/{REGISTERED_MODEL}/{first.version}")
    served_np = pyfunc.predict(x.numpy())
    with torch.no_grad():
        np.testing.assert_allclose(served_np, expected(x).clamp(0, 1).numpy(), atol=1e-5)
    # new weights: a new version
    write_release(folder, noisy_model(1, 0.05))
    assert register_release(folder, mlflow_store).version == first.version + 1


def test_champion_or_release_makes_the_release_the_first_champion(mlflow_store: Path) -> None:
    release = mlflow_store / "models" / "release"
    assert champion_or_release(release, mlflow_store) is None  # no release folder: no champion
    assert champion_info() is None
    write_release(release, noisy_model(0, 0.05))
    version = champion_or_release(release, mlflow_store)
    assert version is not None and get_alias_version(REGISTERED_MODEL, CHAMPION) == version
    info = champion_info()
    assert info is not None and info.release and info.version == version
    assert "the shipped release is the first champion" in info.reason
    assert "the shipped release" in info.describe()
    # an existing champion is left alone
    write_release(release, noisy_model(1, 0.05))
    assert champion_or_release(release, mlflow_store) == version
    # and restore says which version it uses and why
    choice = choose_default_model(mlflow_store / "models" / "latest", mlflow_store)
    assert choice.kind == "champion" and f"version {version}" in choice.describe()
    assert "first champion" in choice.describe()


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return synthesize_tiny(tmp_path_factory.mktemp("data"))


def evaluate(cfg: EvaluateConfig, data: Path, root: Path) -> EvaluationResult:
    """The evaluate stage on ``data``'s bench for ``root/models/latest``, registered in ``root``:
    scored and decided, then the decision recorded as girml/stages/evaluate.py does."""
    result = evaluate_and_promote(
        root / "models" / "latest",
        data / "bench",
        data / "clean",
        cfg,
        root / "metrics",
        root / "plots",
        root,
        train_metrics=root / TRAIN_JSON,
    )
    apply_decision(
        result.decision,
        result.registered.version,
        result.registered.run_id,
        result.metrics,
        result.previous,
        artifacts=result.attachments,
    )
    return result


def test_first_trained_model_must_beat_the_release(mlflow_store: Path, tiny_data: Path) -> None:
    cfg = EvaluateConfig(niqe_patch_size=16, baselines=["identity"], self_ensemble=1)
    write_release(mlflow_store / "models" / "release", noisy_model(0, 0.0))  # near identity
    model_dir = mlflow_store / "models" / "latest"
    _, bad = register(noisy_model(1, 0.3), mlflow_store, model_dir)
    result = evaluate(cfg, tiny_data, mlflow_store)
    release = champion_info()
    assert release is not None and release.release  # the release stays champion
    assert not result.decision.promoted and get_alias_version(REGISTERED_MODEL, CHALLENGER) == bad
    assert {"model", "champion"} <= {r["method"] for r in result.rows}
    # the gate compared whole photos too, restored as `girml restore` does
    whole = {r["method"] for r in result.rows if r["suite"] == "whole"}
    assert whole == {"model", "champion"}
    assert any("whole/" in reason or "block shift" in reason for reason in result.decision.reasons)

    _, good = register(noisy_model(2, 0.0), mlflow_store, model_dir)  # as good as the release
    cfg_easy = cfg.model_copy(
        update={"promotion": cfg.promotion.model_copy(update={"min_gir_gain": 0.0})}
    )
    promoted = evaluate(cfg_easy, tiny_data, mlflow_store)
    assert promoted.decision.promoted and get_alias_version(REGISTERED_MODEL, CHAMPION) == good
    info = champion_info()
    assert info is not None and not info.release and "gir_score" in info.reason
    mv = MlflowClient().get_model_version(REGISTERED_MODEL, str(good))
    assert mv.tags[CHAMPION_REASON_TAG] == info.reason


def test_the_registered_release_is_not_released_again(mlflow_store: Path) -> None:
    folder = write_release(mlflow_store / "models" / "release", noisy_model(0, 0.05))
    version = register_release(folder, mlflow_store).version
    with pytest.raises(ValueError, match=f"is version {version}, the shipped release itself"):
        open_source(f"models:/{REGISTERED_MODEL}/{version}", mlflow_store)
