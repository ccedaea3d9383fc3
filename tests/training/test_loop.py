"""The training loop (girml.training.loop): loss falls, EMA is returned, same seed same
weights, gradient accumulation, resume after kill -9, speed switches, thread count."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from girml.config import DegradationsConfig
from girml.models import build_model
from girml.training.checkpoints import complete_checkpoints
from girml.training.data import load_pairs
from girml.training.loop import TrainResult, train
from girml.training.schedule import build_optimizer
from girml.training.validation import validate
from tests.factories import REPO, kill_when, spawn_python
from tests.training.common import BASE, MODEL, weights_equal

pytestmark = pytest.mark.usefixtures("single_thread")


def test_loss_falls_and_ema_is_validated(
    baseline: tuple[TrainResult, Path], pairs_dir: Path
) -> None:
    result, ckpt = baseline
    losses = [row["loss_charbonnier"] for row in result.history if "loss_charbonnier" in row]
    assert len(losses) == 4 and losses[-1] < losses[0]
    assert [row["step"] for row in result.history if "val.psnr_y_model" in row] == [20, 40]
    assert result.resumed_from is None
    assert result.metrics["steps"] == 40 and result.metrics["train_seconds"] > 0
    assert result.metrics["samples_per_second"] > 0
    assert not result.model.training and next(result.model.parameters()).device.type == "cpu"
    assert sum(f["n"] for f in result.per_family.values()) == 6
    assert [step for step, _ in complete_checkpoints(ckpt)] == [30, 40]  # the last two

    # the returned model holds the EMA weights, not the raw ones, and is what was validated
    val = load_pairs(pairs_dir / "val" / "pairs.jsonl")
    raw = build_model(MODEL)
    raw.load_state_dict(load_file(ckpt / "checkpoint-40" / "model.safetensors"))
    assert not weights_equal(raw, result.model)
    assert validate(result.model, val)[0] == {
        k: v for k, v in result.metrics.items() if k.startswith("val.")
    }
    assert validate(raw, val)[0]["val.psnr_y_model"] != result.metrics["val.psnr_y_model"]


def test_same_seed_same_weights(
    baseline: tuple[TrainResult, Path], pairs_dir: Path, tmp_path: Path
) -> None:
    again = train(MODEL, BASE, pairs_dir, tmp_path / "ckpt")
    assert weights_equal(again.model, baseline[0].model)
    assert again.metrics["val.psnr_y_model"] == baseline[0].metrics["val.psnr_y_model"]


def test_grad_accumulation_matches_a_bigger_batch(pairs_dir: Path, tmp_path: Path) -> None:
    # batch 4 x 1 and batch 2 x 2 consume the same samples per optimizer step and average the
    # same gradients, so they end at the same weights (up to float rounding)
    cfg = BASE.model_copy(update={"steps": 6, "val_every": 6, "ckpt_every": 6, "loss": "l1"})
    big = train(MODEL, cfg, pairs_dir, tmp_path / "big")
    accum = train(
        MODEL,
        cfg.model_copy(update={"batch_size": 2, "grad_accum": 2}),
        pairs_dir,
        tmp_path / "acc",
    )
    sa, sb = big.model.state_dict(), accum.model.state_dict()
    assert not weights_equal(big.model, build_model(MODEL))
    for key in sa:
        torch.testing.assert_close(sa[key], sb[key], atol=1e-5, rtol=1e-4)


def test_online_training_runs(pairs_dir: Path, spec: DegradationsConfig, tmp_path: Path) -> None:
    cfg = BASE.model_copy(
        update={"steps": 4, "online_degradation_prob": 0.5, "freq_weight": 0.05, "val_every": 4}
    )
    with pytest.raises(ValueError, match="needs the degradations spec"):
        train(MODEL, cfg, pairs_dir, tmp_path / "ckpt")
    result = train(MODEL, cfg, pairs_dir, tmp_path / "ckpt", spec=spec)
    assert result.metrics["steps"] == 4 and np.isfinite(result.metrics["val.psnr_y_model"])


def test_resume_after_kill_matches_an_uninterrupted_run(
    baseline: tuple[TrainResult, Path], pairs_dir: Path, tmp_path: Path
) -> None:
    ckpt = tmp_path / "ckpt"
    code = "\n".join(
        [
            "import time, torch",
            "from pathlib import Path",
            "from girml.config import ModelConfig, TrainConfig",
            "from girml.training.loop import train",
            "torch.set_num_threads(1)",
            f"model = ModelConfig.model_validate_json({MODEL.model_dump_json()!r})",
            f"cfg = TrainConfig.model_validate_json({BASE.model_dump_json()!r})",
            # slow the run down at each log so the kill surely lands before the end
            f"train(model, cfg, Path({str(pairs_dir)!r}), Path({str(ckpt)!r}),",
            "      on_log=lambda step, row: time.sleep(0.3))",
        ]
    )
    proc = spawn_python(code, cwd=REPO)
    kill_when(lambda: bool(complete_checkpoints(ckpt)), proc, 120, poll_s=0.02)
    killed_at = complete_checkpoints(ckpt)[-1][0]
    assert killed_at < BASE.steps

    resumed = train(MODEL, BASE, pairs_dir, ckpt)
    expected = baseline[0]
    assert resumed.resumed_from == killed_at
    # exact on CPU: same samples, same optimizer/scheduler/EMA state, same thread count
    assert weights_equal(resumed.model, expected.model)
    assert resumed.metrics["val.psnr_y_model"] == expected.metrics["val.psnr_y_model"]
    assert resumed.per_family == expected.per_family

    def trace(history: list[dict[str, float]]) -> list[tuple]:
        return [(r["step"], r.get("loss_charbonnier"), r.get("val.psnr_y_model")) for r in history]

    assert trace(resumed.history) == trace(expected.history)


def test_speed_switches_train_the_same_model(pairs_dir: Path, tmp_path: Path) -> None:
    # channels_last and the fused optimizer change float rounding only, not what is learned
    cfg = BASE.model_copy(update={"steps": 6, "val_every": 6, "ckpt_every": 6})
    plain = train(MODEL, cfg, pairs_dir, tmp_path / "plain")
    fast_cfg = cfg.model_copy(update={"channels_last": True, "fused_optim": True})
    fast = train(MODEL, fast_cfg, pairs_dir, tmp_path / "fast")
    assert not weights_equal(plain.model, build_model(MODEL))
    sa, sb = plain.model.state_dict(), fast.model.state_dict()
    for key in sa:
        torch.testing.assert_close(sa[key], sb[key], atol=1e-4, rtol=1e-3)
    assert abs(plain.metrics["val.psnr_y_model"] - fast.metrics["val.psnr_y_model"]) < 0.01
    assert build_optimizer(build_model(MODEL), fast_cfg).defaults["fused"] is True


def test_num_threads_holds_for_the_run_and_is_restored(pairs_dir: Path, tmp_path: Path) -> None:
    seen: list[int] = []
    cfg = BASE.model_copy(update={"steps": 4, "log_every": 2, "num_threads": 2})
    before = torch.get_num_threads()  # 1, from the module's fixture
    train(
        MODEL,
        cfg,
        pairs_dir,
        tmp_path / "t",
        on_log=lambda *_: seen.append(torch.get_num_threads()),
    )
    assert seen == [2, 2] and torch.get_num_threads() == before
    with pytest.raises(FileNotFoundError):  # restored after a failure too
        train(MODEL, cfg, tmp_path / "no-pairs", tmp_path / "u")
    assert torch.get_num_threads() == before
