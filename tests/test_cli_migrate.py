"""``girml migrate-registry`` (girml/cli_migrate.py): old pickled registry versions become
weights-plus-config versions that load without unpickling; aliases move; the old versions stay.

Real parts: a SQLite MLflow store in ``tmp_path`` holding versions logged with MLflow's own
pickled ``pytorch`` flavour (as older girml versions registered them), girml's CLI through
typer's runner.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import cloudpickle
import mlflow
import mlflow.pytorch
import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from girml.artifacts.loading import load_model
from girml.artifacts.registered import log_and_register_model
from girml.artifacts.store import read_model_config
from girml.cli import app
from girml.cli_migrate import MIGRATED_FROM_TAG
from girml.core.errors import EX_BAD_INPUT, UnsafeModelError
from girml.tracking.logged_models import download_model
from girml.tracking.logs import log_params_flat
from girml.tracking.runs import start_run
from girml.tracking.versions import (
    CHALLENGER,
    CHAMPION,
    REGISTERED_MODEL,
    VersionRecord,
    aliases,
    model_versions,
    set_alias,
    set_version_tags,
)
from tests.artifacts.test_loading import hostile_module, one_error_line
from tests.factories import TINY_MODEL as TINY
from tests.factories import tiny_model

X = torch.rand(2, 3, 19, 23, generator=torch.Generator().manual_seed(0))


def log_pickled(model: torch.nn.Module) -> None:
    """Register ``model`` as older girml versions did: MLflow's pytorch flavour, a pickle."""
    mlflow.pytorch.log_model(
        model,
        name="model",
        registered_model_name=REGISTERED_MODEL,
        serialization_format="pickle",
        pip_requirements=["torch"],
    )


@pytest.fixture
def project(mlflow_store: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The project folder as cwd, its registry in the fresh SQLite store of ``mlflow_store``."""
    root = mlflow_store / "project"
    root.mkdir()
    monkeypatch.chdir(root)
    return root


def snapshot() -> tuple[list[VersionRecord], dict[str, int]]:
    return model_versions(REGISTERED_MODEL), aliases(REGISTERED_MODEL)


def migrate(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["migrate-registry", *args])
    return result.exit_code, result.output


def assert_refused(uri: str, tmp_path: Path) -> None:
    with pytest.raises(UnsafeModelError):
        download_model(uri, tmp_path)


def refuse_unpickling(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("a migrated version must load without unpickling")

    for module, name in [(pickle, "load"), (pickle, "loads"), (pickle, "Unpickler")]:
        monkeypatch.setattr(module, name, refuse)
    monkeypatch.setattr(cloudpickle, "loads", refuse)


def test_pickled_versions_become_weights_plus_config_and_take_the_aliases(
    project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second = tiny_model(1), tiny_model(2)
    with start_run("gir", project, log_system_metrics=False) as run:
        log_params_flat({"model": TINY})
        log_pickled(first)  # version 1
        log_pickled(second)  # version 2
        example = np.random.default_rng(0).random((1, 3, 16, 16), dtype=np.float32)
        girml_version = log_and_register_model(tiny_model(3), example, model_cfg=TINY)  # 3
    set_version_tags(REGISTERED_MODEL, 1, {"girml.champion.reason": "the best", "stage": "train"})
    set_alias(REGISTERED_MODEL, CHAMPION, 1)
    set_alias(REGISTERED_MODEL, CHALLENGER, 2)
    before, _ = snapshot()

    code, output = migrate("--i-trust-these-files")
    assert code == 0, output
    assert f"migrated {REGISTERED_MODEL} version 1 -> 4 (aliases: {CHAMPION})" in output
    assert f"migrated {REGISTERED_MODEL} version 2 -> 5 (aliases: {CHALLENGER})" in output
    assert "version 3" not in output  # already weights plus config

    after, moved = snapshot()
    assert moved == {CHAMPION: 4, CHALLENGER: 5}
    assert after[:3] == before  # the old versions are untouched
    new = {record.version: record for record in after[3:]}
    assert sorted(new) == [4, 5]
    assert new[4].tags == {
        "girml.champion.reason": "the best",
        "stage": "train",
        MIGRATED_FROM_TAG: "1",
    }
    assert new[5].tags == {MIGRATED_FROM_TAG: "2"}
    assert new[4].run_id == new[5].run_id == run.info.run_id  # logged beside the old ones
    assert "rewritten as weights plus config" in new[4].description
    assert_refused(f"models:/{REGISTERED_MODEL}/1", tmp_path)  # still the old pickle

    refuse_unpickling(monkeypatch)
    for uri, original in [
        (f"models:/{REGISTERED_MODEL}@{CHAMPION}", first),
        (f"models:/{REGISTERED_MODEL}@{CHALLENGER}", second),
    ]:
        with torch.no_grad():
            assert torch.equal(load_model(uri)(X), original(X))
    folder = download_model(f"models:/{REGISTERED_MODEL}/4", tmp_path)
    assert sorted(p.name for p in folder.iterdir()) == ["config.yaml", "weights.pt"]
    converted = read_model_config(folder)["converted_from"]
    assert converted["source"] == f"models:/{REGISTERED_MODEL}/1"
    assert converted["file"] == "data/model.pth"
    assert girml_version == 3

    again_code, again = migrate("--i-trust-these-files")  # once only
    assert again_code == 0 and f"{REGISTERED_MODEL}: no pickled versions to migrate" in again
    assert snapshot() == (after, moved)


def test_without_the_flag_nothing_is_unpickled_or_changed(project: Path) -> None:
    marker = project.parent / "PWNED"
    with start_run("gir", project, log_system_metrics=False):
        log_params_flat({"model": TINY})
        log_pickled(hostile_module(marker))
    set_alias(REGISTERED_MODEL, CHAMPION, 1)
    before = snapshot()

    code, output = migrate()
    line = one_error_line(output)
    assert code == EX_BAD_INPUT
    assert "runs any code in them" in line and "--i-trust-these-files" in line

    code, output = migrate("--dry-run")
    assert code == 0, output
    assert output.strip() == f"would migrate {REGISTERED_MODEL} version 1 (aliases: {CHAMPION})"
    assert snapshot() == before
    assert not marker.exists()  # listing reads MLmodel files only


def test_no_store_is_not_created_to_look(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.chdir(tmp_path)
    code, output = migrate("--dry-run")
    assert code == 0 and "no MLflow store at sqlite:///" in output
    assert "nothing to migrate" in output and not (tmp_path / "mlflow.db").exists()


def test_help_says_it_runs_code_from_the_files() -> None:
    result = CliRunner().invoke(app, ["migrate-registry", "--help"])
    assert result.exit_code == 0
    text = " ".join(result.output.split())
    assert "THIS RUNS CODE FROM THE FILES" in text
    assert "--i-trust-these-files" in text and "--dry-run" in text
