"""Restoring costs (girml.evaluation.costs): timed restorers run through the harness on the tiny
synthesized bench, and ``method_costs.json`` written by the evaluate stage and read by the
study."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from girml.evaluation.bench import Bench
from girml.evaluation.costs import (
    MethodCost,
    RestoreCost,
    read_method_costs,
    write_method_costs,
)
from girml.evaluation.harness import evaluate_batches, evaluate_method
from girml.evaluation.leaderboard import Cost
from girml.evaluation.restorers import per_image
from girml.metrics import NiqeModel
from tests.evaluation.common import CFG, identity


def _input_megapixels(bench: Bench) -> float:
    return sum(np.prod(bench.load(item)[0].shape[:2]) for item in bench.items) / 1e6


def test_a_timed_restorer_adds_up_its_time_and_its_inputs_megapixels(
    bench: Bench, pristine: NiqeModel
) -> None:
    spent = RestoreCost()
    rows = evaluate_method(spent.timed(identity), bench, CFG, pristine, None, method="identity")
    assert spent.images == len(rows) == len(bench)
    assert spent.megapixels == pytest.approx(_input_megapixels(bench))
    assert spent.seconds > 0
    assert spent.seconds_per_megapixel == pytest.approx(spent.seconds / spent.megapixels)
    assert RestoreCost().seconds_per_megapixel is None  # nothing restored: undefined


def test_a_timed_batch_restorer_counts_the_images_it_fails_on_too(
    bench: Bench, pristine: NiqeModel
) -> None:
    calls = []

    def flaky(lq: np.ndarray) -> np.ndarray:  # fails on every other image
        calls.append(1)
        if len(calls) % 2:
            raise RuntimeError("odd")
        return lq

    spent = RestoreCost()
    result = evaluate_batches(
        spent.timed_batch(per_image(flaky)), bench, CFG, pristine, None, method="flaky"
    )
    assert result.failures and result.rows
    assert spent.images == len(result.rows) + len(result.failures) == len(bench)
    assert spent.megapixels == pytest.approx(_input_megapixels(bench))


def _costs() -> dict[str, MethodCost]:
    model = RestoreCost(seconds=2.0, pixels=4_000_000, images=10)
    whole = RestoreCost(seconds=3.0, pixels=1_000_000, images=1)
    return {
        "model": MethodCost(model, 1234, self_ensemble=8, whole=whole, whole_tile=512),
        "nlm": MethodCost(RestoreCost(seconds=1.0, pixels=4_000_000, images=10), params=0),
        "tool": MethodCost(RestoreCost(seconds=0.5, pixels=500_000, images=2), params=None),
    }


def test_written_costs_are_read_back_for_the_study(tmp_path: Path) -> None:
    per_image_csv = tmp_path / "per_image.csv"
    per_image_csv.write_text("method\nmodel\n")
    path = write_method_costs(tmp_path / "method_costs.json", _costs(), per_image_csv)
    data = json.loads(path.read_text())["methods"]
    assert data["model"]["megapixels"] == 4.0 and data["model"]["self_ensemble"] == 8
    assert data["model"]["whole"]["seconds_per_megapixel"] == 3.0
    assert data["model"]["threads"] >= 1 and "whole" not in data["nlm"]

    measured = read_method_costs(path, per_image_csv)
    assert measured is not None
    assert measured.costs == {
        "model": Cost(0.5, 1234),
        "nlm": Cost(0.25, 0),
        "tool": Cost(1.0, None),
    }
    assert "x8 self-ensemble was on for model:" in measured.note and "thread" in measured.note


def test_costs_of_another_run_or_none_at_all_are_left_out(tmp_path: Path) -> None:
    per_image_csv = tmp_path / "per_image.csv"
    per_image_csv.write_text("method\nmodel\n")
    path = tmp_path / "method_costs.json"
    assert read_method_costs(path, per_image_csv) is None  # older outputs: no file
    write_method_costs(path, _costs(), per_image_csv)
    per_image_csv.write_text("method\nnlm\n")  # evaluated again since
    assert read_method_costs(path, per_image_csv) is None


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("{", "not JSON"),
        ('{"methods": [1]}', "expected"),
        ('{"methods": {"m": {"params": -1}}}', r"m: params must be a finite number >= 0"),
        ('{"methods": {"m": {"seconds_per_megapixel": "fast"}}}', "is not a number"),
        ('{"methods": {"m": {"params": 1.5}}}', "is not an integer"),
    ],
)
def test_a_broken_costs_file_is_named(text: str, error: str, tmp_path: Path) -> None:
    path = tmp_path / "method_costs.json"
    path.write_text(text)
    with pytest.raises(ValueError, match=error) as caught:
        read_method_costs(path, tmp_path / "no_per_image.csv")
    assert str(path) in str(caught.value)
