"""The registry's champion (girml/tracking/registry.py): the release as a version of its own,
a promotion candidate, and why a version is champion."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from mlflow import MlflowClient
from safetensors.torch import save_file

from girml.config import EvaluateConfig, ModelConfig
from girml.evaluation.promotion import EvaluationResult, evaluate_and_promote
from girml.models import build_model
from girml.models.release import FORMAT
from girml.models.store import choose_default_model
from girml.tracking.mlflow import (
    CHALLENGER,
    CHAMPION,
    REGISTERED_MODEL,
    get_alias_version,
    load_logged_model,
)
from girml.tracking.registry import (
    CHAMPION_REASON_TAG,
    RELEASE_SHA_TAG,
    RELEASE_TAG,
    champion_info,
    champion_or_release,
    register_release,
)
from tests.evaluation.test_evaluation import TRAIN_JSON, register, tiny_model
from tests.factories import synthesize_tiny

TINY = ModelConfig(width=4, enc_blocks=[1], middle_blocks=0)


def write_release(folder: Path, model: torch.nn.Module, cfg: ModelConfig = TINY) -> Path:
    """A release folder as ``girml release`` writes it: safetensors weights plus config."""
    folder.mkdir(parents=True, exist_ok=True)
    save_file(
        {k: v.contiguous() for k, v in model.state_dict().items()}, folder / "model.safetensors"
    )
    config = {"format": FORMAT, "model": cfg.model_dump()}
    (folder / "config.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    return folder


def test_register_release_once_per_weights_file(mlflow_store: Path) -> None:
    folder = write_release(mlflow_store / "models" / "release", tiny_model(0, 0.05))
    first = register_release(folder, mlflow_store)
    assert first.registered
    again = register_release(folder, mlflow_store)
    assert again == type(first)(first.version, first.sha256, registered=False)
    mv = MlflowClient().get_model_version(REGISTERED_MODEL, str(first.version))
    assert mv.tags[RELEASE_TAG] == "true" and mv.tags[RELEASE_SHA_TAG] == first.sha256
    assert "shipped release" in mv.description
    # the registered version serves the release's own network
    x = torch.rand(1, 3, 24, 24)
    with torch.inference_mode():
        expected = build_model(TINY)
        expected.load_state_dict(tiny_model(0, 0.05).state_dict())
        served = load_logged_model(f"models:/{REGISTERED_MODEL}/{first.version}")
        torch.testing.assert_close(served(x), expected.eval()(x))
    # and what `mlflow models serve` loads, MLflow's own pyfunc loader, predicts the same
    import mlflow.pyfunc

    pyfunc = mlflow.pyfunc.load_model(f"models:/{REGISTERED_MODEL}/{first.version}")
    served_np = pyfunc.predict(x.numpy())
    with torch.no_grad():
        np.testing.assert_allclose(served_np, expected(x).clamp(0, 1).numpy(), atol=1e-5)
    # new weights: a new version
    write_release(folder, tiny_model(1, 0.05))
    assert register_release(folder, mlflow_store).version == first.version + 1


def test_champion_or_release_makes_the_release_the_first_champion(mlflow_store: Path) -> None:
    release = mlflow_store / "models" / "release"
    assert champion_or_release(release, mlflow_store) is None  # no release folder: no champion
    assert champion_info() is None
    write_release(release, tiny_model(0, 0.05))
    version = champion_or_release(release, mlflow_store)
    assert version is not None and get_alias_version(REGISTERED_MODEL, CHAMPION) == version
    info = champion_info()
    assert info is not None and info.release and info.version == version
    assert "the shipped release is the first champion" in info.reason
    assert "the shipped release" in info.describe()
    # an existing champion is left alone
    write_release(release, tiny_model(1, 0.05))
    assert champion_or_release(release, mlflow_store) == version
    # and restore says which version it uses and why
    choice = choose_default_model(mlflow_store / "models" / "latest", mlflow_store)
    assert choice.kind == "champion" and f"version {version}" in choice.describe()
    assert "first champion" in choice.describe()


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return synthesize_tiny(tmp_path_factory.mktemp("data"))


def evaluate(cfg: EvaluateConfig, data: Path, root: Path) -> EvaluationResult:
    """The evaluate stage on ``data``'s bench for ``root/models/latest``, registered in ``root``."""
    return evaluate_and_promote(
        root / "models" / "latest",
        data / "bench",
        data / "clean",
        cfg,
        root / "metrics",
        root / "plots",
        root,
        train_metrics=root / TRAIN_JSON,
    )


def test_first_trained_model_must_beat_the_release(mlflow_store: Path, tiny_data: Path) -> None:
    cfg = EvaluateConfig(niqe_patch_size=16, baselines=["identity"], self_ensemble=1)
    write_release(mlflow_store / "models" / "release", tiny_model(0, 0.0))  # near identity
    model_dir = mlflow_store / "models" / "latest"
    _, bad = register(tiny_model(1, 0.3), mlflow_store, model_dir)
    result = evaluate(cfg, tiny_data, mlflow_store)
    release = champion_info()
    assert release is not None and release.release  # the release stays champion
    assert not result.decision.promoted and get_alias_version(REGISTERED_MODEL, CHALLENGER) == bad
    assert {"model", "champion"} <= {r["method"] for r in result.rows}
    # the gate compared whole photos too, restored as `girml restore` does
    whole = {r["method"] for r in result.rows if r["suite"] == "whole"}
    assert whole == {"model", "champion"}
    assert any("whole/" in reason or "block shift" in reason for reason in result.decision.reasons)

    _, good = register(tiny_model(2, 0.0), mlflow_store, model_dir)  # as good as the release
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
    from girml.models.release import _open_source

    folder = write_release(mlflow_store / "models" / "release", tiny_model(0, 0.05))
    version = register_release(folder, mlflow_store).version
    with pytest.raises(ValueError, match=f"is version {version}, the shipped release itself"):
        _open_source(f"models:/{REGISTERED_MODEL}/{version}", mlflow_store)
