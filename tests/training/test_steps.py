"""One optimizer step and its events (girml.training.steps): log, validation and checkpoint
cadence, and the learning rate each logged step used."""

from __future__ import annotations

from pathlib import Path

import pytest

from girml.training.checkpoints import complete_checkpoints
from girml.training.loop import train
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
