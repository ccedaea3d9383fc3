"""One trial as a Ray worker runs it (girml/tuning/trial.py); real trials:
tests/tuning/test_search.py."""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import pytest

import girml.tuning.trial as trial
from girml.tuning.results import METRIC
from tests.tuning.common import BASE, CFG, MODEL


def _job(tmp_path: Path) -> trial.TrialJob:
    return trial.TrialJob(
        cfg=CFG,
        base_model=MODEL,
        base_train=BASE,
        pairs_dir=tmp_path / "pairs",
        trials_dir=tmp_path / "trials",
        spec=None,
    )


def test_the_job_ships_to_the_workers(tmp_path: Path) -> None:
    job = _job(tmp_path)
    assert pickle.loads(pickle.dumps(job)) == job


def test_a_trial_trains_its_configuration_and_reports_each_validation_by_tunes_names(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ray's context and report are stood in for (a real trial runs in test_search.py)."""
    reports: list[dict[str, float]] = []
    trained: list[tuple[Any, ...]] = []

    class Context:
        def get_trial_id(self) -> str:
            return "abc_00001"

    def fake_train(model_cfg, train_cfg, pairs_dir, ckpt_dir, **kwargs):
        trained.append((model_cfg, train_cfg, pairs_dir, ckpt_dir, kwargs))
        kwargs["on_validate"](3, {METRIC: 21.0, "val.psnr_gain": 1.0, "val.psnr_y_input": 20.0})

    monkeypatch.setattr(trial.ray_tune, "get_context", lambda: Context())
    monkeypatch.setattr(trial.ray_tune, "report", reports.append)
    monkeypatch.setattr(trial, "train", fake_train)
    trial.run_trial({"train.lr": 2e-3, "model.enc_blocks": "[1, 1]"}, _job(tmp_path))
    [(model_cfg, train_cfg, pairs_dir, ckpt_dir, kwargs)] = trained
    assert model_cfg.enc_blocks == [1, 1] and train_cfg.lr == 2e-3
    assert train_cfg.steps == CFG.steps_per_trial and pairs_dir == tmp_path / "pairs"
    assert ckpt_dir == tmp_path / "trials" / "abc_00001"  # a restarted trial resumes there
    assert kwargs["spec"] is None and kwargs["init"] is None
    assert reports == [
        {"step": 3, trial.TUNE_METRIC: 21.0, "val_psnr_gain": 1.0, "val_psnr_input": 20.0}
    ]
