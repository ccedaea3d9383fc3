"""Harm-aware checkpoint selection: the score, the kept weights and their record."""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import pytest
import torch

from girml.config import ModelConfig, TrainConfig
from girml.training.data import load_pairs
from girml.training.loop import train
from girml.training.selection import BestWeights, selection_score
from girml.training.validation import validate
from tests.factories import synthesize_tiny

MODEL = ModelConfig(type="nafnet", width=8, enc_blocks=[1], middle_blocks=1)
RUN = TrainConfig(
    seed=5,
    steps=30,
    batch_size=4,
    patch_size=16,
    lr=3e-3,
    warmup_steps=3,
    ema_decay=0.5,
    val_every=10,
    ckpt_every=10,
    log_every=10,
    num_workers=0,
    online_degradation_prob=0.0,
    channels_last=False,
    num_threads=1,
)


def _family(inp: float, out: float) -> dict[str, float]:
    return {"psnr_y_input": inp, "psnr_y_model": out, "n": 1}


def test_the_score_is_the_mean_gain_less_the_harm() -> None:
    per_family = {
        "noise": _family(20.0, 26.0),  # +6
        "jpeg": _family(30.0, 29.0),  # -1: harm 1
        "blur": _family(25.0, 25.5),  # +0.5
        "clean": _family(math.inf, 43.0),  # 2 dB below a floor of 45
    }
    score = selection_score(per_family, harm_weight=1.0, clean_floor=45.0)
    assert score.mean_gain == pytest.approx(5.5 / 3)
    assert score.harm == pytest.approx(1.0) and score.clean_shortfall == pytest.approx(2.0)
    assert score.score == pytest.approx(5.5 / 3 - 3.0)
    # a model that helps less but harms nothing ranks above
    careful = {**per_family, "noise": _family(20.0, 24.0), "jpeg": _family(30.0, 30.2)}
    careful["clean"] = _family(math.inf, math.inf)  # untouched: scored at the 100 dB clip
    better = selection_score(careful, harm_weight=1.0, clean_floor=45.0)
    assert better.score > score.score and better.clean_psnr_y == 100.0
    # weight 0: the mean gain alone
    assert selection_score(per_family, harm_weight=0.0, clean_floor=45.0).score == pytest.approx(
        5.5 / 3
    )
    with pytest.raises(ValueError, match="no degraded family"):
        selection_score({"clean": _family(math.inf, 50.0)}, harm_weight=1.0, clean_floor=45.0)


def test_best_weights_keep_the_first_best_and_survive_a_checkpoint() -> None:
    model = torch.nn.Linear(2, 2)
    best = BestWeights()
    assert best.offer(10, 1.0, model, {"metrics": {}, "per_family": {}})
    kept = {k: v.clone() for k, v in model.state_dict().items()}
    with torch.no_grad():
        model.weight.add_(1.0)
    assert not best.offer(20, 1.0, model, {})  # a tie keeps the earlier step
    assert not best.offer(30, 0.5, model, {})
    assert best.step == 10 and torch.equal(best.weights["weight"], kept["weight"])
    record = best.record("best", last_step=30)
    assert record["kept_step"] == 10 and record["scores"] == {"10": 1.0, "20": 1.0, "30": 0.5}
    assert "step 10 scored best" in record["why"] and "30 scored 0.50" in record["why"]
    assert best.record("last", last_step=30)["kept_step"] == 30

    again = BestWeights()
    again.load_state_dict(best.state_dict())
    assert again.step == 10 and again.scores == best.scores
    assert torch.equal(again.weights["weight"], kept["weight"])


@pytest.fixture(scope="module")
def pairs_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return synthesize_tiny(tmp_path_factory.mktemp("data")) / "pairs"


def test_synthesize_writes_the_selection_set(pairs_dir: Path) -> None:
    select = load_pairs(pairs_dir / "select" / "pairs.jsonl")
    # the one validation photo, whole, clean and under each trained family (haze is held out)
    assert sorted(select.families) == ["blur", "clean", "jpeg", "noise"]
    assert {gt.shape for gt in select.gt} == {(96, 128, 3)}


def test_a_run_returns_the_best_scoring_validation_and_says_why(
    pairs_dir: Path, tmp_path: Path
) -> None:
    result = train(MODEL, RUN, pairs_dir, tmp_path / "best")
    record = result.selection
    scores = {int(k): v for k, v in record["scores"].items()}
    assert sorted(scores) == [10, 20, 30] and record["rule"] == "best"
    assert record["kept_step"] == max(scores, key=lambda s: (scores[s], -s))
    assert record["why"]
    # the returned weights are the ones that scored best on the selection set
    select = load_pairs(pairs_dir / "select" / "pairs.jsonl")
    rescored = selection_score(
        validate(result.model, select)[1],
        harm_weight=RUN.select_harm_weight,
        clean_floor=RUN.select_clean_floor,
    )
    assert rescored.score == pytest.approx(record["best_score"], abs=1e-6)

    last = train(MODEL, RUN.model_copy(update={"select": "last"}), pairs_dir, tmp_path / "last")
    assert last.selection["kept_step"] == 30 and "final weights" in last.selection["why"]
    assert last.selection["scores"] == record["scores"]  # same run, another pick
    if record["kept_step"] != 30:
        differs = any(
            not torch.equal(a, b)
            for a, b in zip(
                result.model.state_dict().values(), last.model.state_dict().values(), strict=True
            )
        )
        assert differs


def test_without_a_selection_set_the_validation_pairs_are_scored(
    pairs_dir: Path, tmp_path: Path
) -> None:
    copy = tmp_path / "pairs"
    shutil.copytree(pairs_dir, copy)
    shutil.rmtree(copy / "select")
    result = train(MODEL, RUN.model_copy(update={"steps": 10}), copy, tmp_path / "ckpt")
    assert result.selection["kept_step"] == 10
    assert "select.score" in result.metrics
