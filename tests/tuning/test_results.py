"""``tune/best.yaml`` and ``trials.csv`` (girml/tuning/results.py; no Ray)."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import pytest
import yaml

from girml.config import ConfigError, ModelConfig, TrainConfig
from girml.tuning.results import (
    METRIC,
    TuneResult,
    load_tuned_overrides,
    tuned_configs,
    write_best,
    write_trials_csv,
)


def _result(default_score: float | None = 20.0) -> TuneResult:
    rows = [
        {
            "trial_id": f"t{i}",
            "default": i == 0,
            "train.lr": lr,
            "model.enc_blocks": blocks,
            METRIC: score,
            f"{METRIC}_best": score,
            "val.psnr_gain": score - 25.0,
            "val.psnr_y_input": 25.0,
            "steps": steps,
            "status": "TERMINATED",
            "stopped_early": steps < 6,
            "seconds": 1.5,
        }
        for i, (lr, blocks, score, steps) in enumerate(
            [(1e-3, [1], 20.0, 6), (2e-3, [1, 1], 22.5, 6), (5e-4, [1], math.nan, 0)]
        )
    ]
    return TuneResult(
        best_config={"train.lr": 2e-3, "model.enc_blocks": [1, 1]},
        best_score=22.5,
        best_trial_id="t1",
        trials=rows,
        curves={"t0": [], "t1": [], "t2": []},
        default_score=default_score,
        steps_per_trial=6,
        resumed=False,
        wall_seconds=3.0,
    )


def test_best_yaml_round_trip_into_the_train_sections(tmp_path: Path) -> None:
    path = tmp_path / "tune" / "best.yaml"
    write_best(_result(), path)
    doc = yaml.safe_load(path.read_text())
    assert doc["metric"] == METRIC and doc["score"] == 22.5 and doc["default_score"] == 20.0
    assert doc["steps_per_trial"] == 6 and doc["trial_id"] == "t1"
    assert doc["params"] == {"model": {"enc_blocks": [1, 1]}, "train": {"lr": 2e-3}}
    assert load_tuned_overrides(path) == doc["params"]

    model_raw = {"width": 16, "enc_blocks": [1, 1, 2], "middle_blocks": 2}
    train_raw = {"steps": 1500, "lr": 1e-3, "use_tuned": True}
    model, train = tuned_configs(model_raw, train_raw, path)
    assert model == ModelConfig(width=16, enc_blocks=[1, 1], middle_blocks=2)
    assert train == TrainConfig(steps=1500, lr=2e-3, use_tuned=True)
    assert model_raw["enc_blocks"] == [1, 1, 2]  # the caller's mapping is left alone

    write_best(_result(default_score=None), path)
    assert yaml.safe_load(path.read_text())["default_score"] is None


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"optim": {"lr": 1}}, "params.optim must be a model/train mapping"),
        ({"train": {"lrr": 1}}, r"params.train has unknown fields \['lrr'\]"),
        ({"train": {"lr": -1}}, "train.lr: Input should be greater than 0"),
        (None, "needs a `params` mapping"),
    ],
)
def test_bad_best_yaml_names_the_problem(tmp_path: Path, params: object, message: str) -> None:
    path = tmp_path / "best.yaml"
    path.write_text(yaml.safe_dump({"score": 1.0, "params": params}))
    with pytest.raises(ConfigError, match=message):
        tuned_configs({}, {}, path)


def test_missing_best_yaml_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="tuned params not found"):
        load_tuned_overrides(tmp_path / "best.yaml")


def test_trials_csv_has_one_row_per_trial(tmp_path: Path) -> None:
    path = tmp_path / "reports" / "trials.csv"
    write_trials_csv(_result(), path)
    rows = list(csv.DictReader(path.open()))
    assert [r["trial_id"] for r in rows] == ["t0", "t1", "t2"]
    assert list(rows[0])[:4] == ["trial_id", "default", "train.lr", "model.enc_blocks"]
    assert rows[1]["model.enc_blocks"] == "[1, 1]" and rows[1][METRIC] == "22.5"
    assert rows[2][METRIC] == "" and rows[2]["stopped_early"] == "True"


# --------------------------------------------------------------------------- Ray (slow)
