"""One optimizer step and its events (girml.training.steps): log, validation, curve and
checkpoint cadence, the learning rate each logged step used, and a validation curve that leaves
the weights alone."""

from __future__ import annotations

from pathlib import Path

import pytest

from girml.core.hashing import file_digest
from girml.training.checkpoints import complete_checkpoints
from girml.training.loop import TrainResult, train, weights_digest
from girml.training.schedule import lr_factor
from girml.training.steps import loss_metric_name
from tests.training.common import BASE, MODEL

pytestmark = pytest.mark.usefixtures("single_thread")


def test_events_run_at_their_cadence_with_the_lr_the_step_used(
    pairs_dir: Path, tmp_path: Path
) -> None:
    # two micro-batches per optimizer step: events count optimizer steps, not micro-batches
    cadence = {"log_every": 2, "val_every": 3, "ckpt_every": 4}
    cfg = BASE.model_copy(update={"steps": 6, "batch_size": 2, "grad_accum": 2, **cadence})
    logged: list[tuple[int, dict[str, float]]] = []
    validated: list[int] = []
    result = train(
        MODEL,
        cfg,
        pairs_dir,
        tmp_path / "ckpt",
        on_log=lambda step, row: logged.append((step, row)),
        on_validate=lambda step, row: validated.append(step),
    )
    assert [step for step, _ in logged] == [2, 4, 6]
    assert validated == [3, 6]  # and at the last step, off the cadence
    assert [step for step, _ in complete_checkpoints(tmp_path / "ckpt")] == [4, 6]
    loss = "loss_charbonnier"  # BASE's loss, named for what it is
    kinds = [(row["step"], "loss" if loss in row else "val") for row in result.history]
    assert kinds == [(2, "loss"), (3, "val"), (4, "loss"), (6, "loss"), (6, "val")]
    for step, row in logged:  # step s (1-based) ran at the schedule's 0-based step s - 1
        expected = cfg.lr * lr_factor(step - 1, cfg.warmup_steps, cfg.steps, cfg.min_lr_ratio)
        assert row["lr"] == pytest.approx(expected, rel=1e-6)
        assert row["samples_per_second"] > 0 and row[loss] > 0


def test_loss_metric_names_say_what_the_loss_is() -> None:
    assert loss_metric_name("psnr") == "loss_neg_psnr_db"  # minus a PSNR: -25 is 25 dB
    assert loss_metric_name("l2") == "loss_mse"
    assert loss_metric_name("l1", freq_weight=0.1) == "loss_l1_plus_fft"
    with pytest.raises(ValueError, match=r"unknown loss 'ssim'; known: l1, charbonnier"):
        loss_metric_name("ssim")


def test_the_curve_is_logged_at_its_cadence_and_leaves_the_weights_alone(
    baseline: tuple[TrainResult, Path], pairs_dir: Path, tmp_path: Path
) -> None:
    """``curve_every`` 7 on the baseline's run (EMA on, best-of-two selection): points every 7
    steps and at each validation, from the val pairs, and the same trained, averaged and kept
    weights as the run without a curve."""
    curve: list[tuple[int, dict[str, float]]] = []
    validated: dict[int, dict[str, float]] = {}
    result = train(
        MODEL,
        BASE.model_copy(update={"curve_every": 7}),
        pairs_dir,
        tmp_path / "ckpt",
        on_validate=lambda step, row: validated.update({step: row}),
        on_curve=lambda step, row: curve.append((step, row)),
    )
    base, base_ckpt = baseline
    assert weights_digest(result.model) == weights_digest(base.model)
    # the trained weights, the kept ones (BestWeights) and the EMA (the TrainState differs: its
    # history holds the curve)
    for name in ("model.safetensors", "custom_checkpoint_1.pkl", "custom_checkpoint_2.pkl"):
        assert file_digest(tmp_path / "ckpt" / "checkpoint-40" / name) == file_digest(
            base_ckpt / "checkpoint-40" / name
        )
    assert (
        result.selection == base.selection
        and result.metrics["val.psnr_gain"] == (base.metrics["val.psnr_gain"])
    )
    assert [step for step, _ in curve] == [7, 14, 20, 21, 28, 35, 40]
    keys = {"curve.val_psnr_y_input", "curve.val_psnr_y_model", "curve.val_psnr_gain"}
    assert all(set(point) == keys for _, point in curve)
    for step, point in curve:
        if step in validated:  # a validation step: its numbers, not a second pass
            assert point["curve.val_psnr_gain"] == validated[step]["val.psnr_gain"]
        assert point["curve.val_psnr_gain"] == pytest.approx(
            point["curve.val_psnr_y_model"] - point["curve.val_psnr_y_input"]
        )
    rows = [row for row in result.history if "curve.val_psnr_gain" in row]
    assert [(row["step"], row["curve.val_psnr_gain"]) for row in rows] == [
        (step, point["curve.val_psnr_gain"]) for step, point in curve
    ]
    assert not any("curve.val_psnr_gain" in row for row in base.history)  # no hook, no curve


def test_a_curve_on_the_training_model_itself_changes_no_weight(
    pairs_dir: Path, tmp_path: Path
) -> None:
    """Without an EMA the curve scores the training model itself (eval mode, then train mode
    again): a point after every step still gives the weights of no curve, bit for bit."""
    cfg = BASE.model_copy(
        update={"steps": 8, "ema_decay": 0.0, "val_every": 4, "ckpt_every": 8, "log_every": 4}
    )
    off = train(
        MODEL,
        cfg.model_copy(update={"curve_every": 0}),
        pairs_dir,
        tmp_path / "off",
        on_curve=lambda *_: pytest.fail("curve_every 0 draws no curve"),
    )
    points: list[int] = []
    on = train(
        MODEL,
        cfg.model_copy(update={"curve_every": 1}),
        pairs_dir,
        tmp_path / "on",
        on_curve=lambda step, _: points.append(step),
    )
    assert points == list(range(1, 9))
    assert weights_digest(on.model) == weights_digest(off.model)
    assert file_digest(tmp_path / "on" / "checkpoint-8" / "model.safetensors") == file_digest(
        tmp_path / "off" / "checkpoint-8" / "model.safetensors"
    )
