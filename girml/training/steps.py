"""One run's steps: a micro-batch, the optimizer step, and the log, validation and checkpoint
events that follow it.

:class:`Parts` holds what :func:`girml.training.loop.train` prepared (model, optimizer,
schedule, EMA, state), :class:`Loop` what the steps share (settings, callbacks, running counts
and clocks); :func:`train_step` runs one micro-batch and, at the end of a gradient accumulation,
the events due at that step.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from accelerate import Accelerator
from torch import nn
from torch.optim import Optimizer
from torch.optim.lr_scheduler import LambdaLR
from tqdm import tqdm

from girml.config import TrainConfig
from girml.training.checkpoints import save_checkpoint
from girml.training.data import PairSet
from girml.training.losses import restoration_loss
from girml.training.selection import BestWeights, selection_score
from girml.training.state import EMA, TrainState
from girml.training.validation import validate

LogCallback = Callable[[int, dict[str, float]], None]
# what a curve point reports, as curve.val_psnr_y_input, ... (:func:`_curve_event`)
CURVE_KEYS = ("val.psnr_y_input", "val.psnr_y_model", "val.psnr_gain")
# what each train.loss measures, in the metric's name: the psnr loss is minus a PSNR in dB
_LOSS_NAMES = {"l1": "l1", "charbonnier": "charbonnier", "l2": "mse", "psnr": "neg_psnr_db"}


def loss_metric_name(kind: str, freq_weight: float = 0.0) -> str:
    """The name the training loss is logged under, saying what it is.

    ``loss_neg_psnr_db`` for ``psnr`` (minus the mean per-image PSNR: -25 is 25 dB),
    ``loss_l1``, ``loss_charbonnier``, ``loss_mse``; ``_plus_fft`` when the FFT L1 term is
    added (``freq_weight`` > 0).

    Raises:
        ValueError: an unknown loss (the message lists the known ones).
    """
    if kind not in _LOSS_NAMES:
        raise ValueError(f"unknown loss {kind!r}; known: {', '.join(_LOSS_NAMES)}")
    return f"loss_{_LOSS_NAMES[kind]}" + ("_plus_fft" if freq_weight > 0 else "")


@dataclass
class Parts:
    """One run's prepared pieces: what trains, what is checkpointed, what is validated.

    Attributes:
        accelerator: the run's accelerator.
        raw_model: the network itself, on the device (what :meth:`EMA.update` reads).
        model: ``raw_model`` as ``accelerator.prepare`` returned it (what trains).
        optimizer: the prepared AdamW.
        scheduler: the prepared warm-up + cosine schedule.
        ema: the weight average, or None when ``ema_decay`` is 0.
        state: step counter, loop seconds and history (checkpointed with the EMA).
        eval_model: what validation scores and the run returns: the EMA's average, else the
            unwrapped model.
        best: the best-scoring validated weights so far (checkpointed too).
    """

    accelerator: Accelerator
    raw_model: nn.Module
    model: nn.Module
    optimizer: Optimizer
    scheduler: LambdaLR
    ema: EMA | None
    state: TrainState
    eval_model: nn.Module
    best: BestWeights


@dataclass
class Loop:
    """What the steps of one run's loop share: its parts, settings, hooks and running counts.

    Attributes:
        parts: the prepared pieces.
        cfg: the run's settings.
        ckpt_dir: the checkpoint folder.
        val_pairs: the validation pairs.
        select_pairs: the selection set (``pairs/select``), or None: the selection then
            scores ``val_pairs``.
        per_step: samples per optimizer step, all processes together.
        on_log: ``train``'s ``on_log``; None off the main process.
        on_validate: ``train``'s ``on_validate``; None off the main process.
        on_curve: ``train``'s ``on_curve``; None off the main process (no curve is computed
            without it).
        bar: the progress bar (disabled off the main process).
        loss_sum: (0-dim tensor, on the device) micro-batch losses since the last log event.
        micro_batches: how many losses ``loss_sum`` holds.
        window_samples: samples trained since the last event (log, validation, checkpoint).
        window_start: ``time.perf_counter()`` at the end of the last event.
        base_seconds: loop seconds of the runs this one resumed.
        loop_start: ``time.perf_counter()`` when this run's loop started.
        validation: the last validation's ``(metrics, per_family)``; None before the first.
    """

    parts: Parts
    cfg: TrainConfig
    ckpt_dir: Path
    val_pairs: PairSet
    select_pairs: PairSet | None
    per_step: int
    on_log: LogCallback | None
    on_validate: LogCallback | None
    on_curve: LogCallback | None = None
    bar: tqdm = field(init=False)
    loss_sum: torch.Tensor = field(init=False)
    micro_batches: int = 0
    window_samples: int = 0
    window_start: float = field(init=False)
    base_seconds: float = field(init=False)
    loop_start: float = field(init=False)
    validation: tuple[dict[str, float], dict[str, dict[str, float]]] | None = None

    def __post_init__(self) -> None:
        """Open the progress bar at the resumed step, zero the loss sum, start the clocks."""
        accelerator, state = self.parts.accelerator, self.parts.state
        self.bar = tqdm(
            total=self.cfg.steps,
            initial=state.step,
            desc="train",
            unit="step",
            disable=not accelerator.is_main_process,
        )
        self.loss_sum = torch.zeros((), device=accelerator.device)
        self.window_start = time.perf_counter()
        self.base_seconds, self.loop_start = state.train_seconds, time.perf_counter()


def train_step(loop: Loop, lq: torch.Tensor, gt: torch.Tensor) -> None:
    """One micro-batch: forward, loss and backward; at the end of an accumulation the optimizer
    and schedule step and :func:`_after_optimizer_step` runs.

    Args:
        loop: the run's loop.
        lq: (B,3,P,P) float degraded patches in [0, 1].
        gt: (B,3,P,P) float targets in [0, 1].
    """
    parts, cfg = loop.parts, loop.cfg
    accelerator, model = parts.accelerator, parts.model
    if cfg.channels_last:
        lq = lq.contiguous(memory_format=torch.channels_last)
    with accelerator.accumulate(model):
        loss = restoration_loss(model(lq), gt, cfg.loss, cfg.freq_weight, cfg.psnr_eps)
        accelerator.backward(loss)
        if accelerator.sync_gradients and cfg.grad_clip > 0:
            accelerator.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        parts.optimizer.step()
        lr = parts.scheduler.get_last_lr()[0]
        if accelerator.sync_gradients:
            parts.scheduler.step()
        parts.optimizer.zero_grad()
    loop.loss_sum += loss.detach()
    loop.micro_batches += 1
    if accelerator.sync_gradients:
        _after_optimizer_step(loop, lr)


def _after_optimizer_step(loop: Loop, lr: float) -> None:
    """Count the step, update the EMA, and run the step's log, validation and checkpoint events.

    Args:
        loop: the run's loop.
        lr: the learning rate the step used.
    """
    parts, cfg = loop.parts, loop.cfg
    parts.state.step += 1
    step = parts.state.step
    loop.window_samples += loop.per_step
    if parts.ema is not None:
        # raw_model is what unwrap_model(model) returns, without its walk over every
        # submodule each step
        parts.ema.update(parts.raw_model)
    loop.bar.update(1)
    events = False
    if step % cfg.log_every == 0:
        _log_event(loop, step, lr)
        events = True
    validated = step % cfg.val_every == 0 or step == cfg.steps
    if validated:
        _validation_event(loop, step)
        events = True
    curve_due = cfg.curve_every > 0 and (validated or step % cfg.curve_every == 0)
    if curve_due and loop.on_curve is not None:
        _curve_event(loop, step, validated)
        events = True
    if step % cfg.ckpt_every == 0 or step == cfg.steps:
        parts.state.train_seconds = loop_seconds(loop)
        save_checkpoint(parts.accelerator, loop.ckpt_dir, step)
        events = True
    if events:  # samples/s measures training only, not validation or checkpointing
        loop.window_samples, loop.window_start = 0, time.perf_counter()


def _log_event(loop: Loop, step: int, lr: float) -> None:
    """Record the mean loss (over processes and micro-batches, named by
    :func:`loss_metric_name`), ``lr`` and samples/s since the last event in the history, the
    progress bar and ``on_log``; restart the loss sum."""
    mean_loss = (
        loop.parts.accelerator.reduce(loop.loss_sum, reduction="mean").item() / loop.micro_batches
    )
    speed = loop.window_samples / max(time.perf_counter() - loop.window_start, 1e-9)
    name = loss_metric_name(loop.cfg.loss, loop.cfg.freq_weight)
    logged = {name: mean_loss, "lr": lr, "samples_per_second": speed}
    loop.parts.state.history.append({"step": step, **logged})
    loop.bar.set_postfix(loss=f"{mean_loss:.4f}", lr=f"{lr:.2e}", refresh=False)
    if loop.on_log is not None:
        loop.on_log(step, logged)
    loop.loss_sum.zero_()
    loop.micro_batches = 0


def _validation_event(loop: Loop, step: int) -> None:
    """Validate the evaluated weights and score them for selection; record the metrics in the
    history and ``on_validate``, and offer the weights to the run's :class:`BestWeights`."""
    model = loop.parts.eval_model
    loop.validation = validate(model, loop.val_pairs)
    val_metrics, per_family = loop.validation
    scored = per_family if loop.select_pairs is None else validate(model, loop.select_pairs)[1]
    cfg = loop.cfg
    score = selection_score(
        scored, harm_weight=cfg.select_harm_weight, clean_floor=cfg.select_clean_floor
    )
    val_metrics = {
        **val_metrics,
        "select.score": score.score,
        "select.mean_gain": score.mean_gain,
        "select.harm": score.harm + score.clean_shortfall,
    }
    loop.validation = (val_metrics, per_family)
    loop.parts.best.offer(
        step, score.score, model, {"metrics": val_metrics, "per_family": per_family}
    )
    loop.parts.state.history.append({"step": step, **val_metrics})
    if loop.on_validate is not None:
        loop.on_validate(step, val_metrics)


def _curve_event(loop: Loop, step: int, validated: bool) -> None:
    """A point of the logging-only validation curve: ``curve.val_psnr_y_input``,
    ``curve.val_psnr_y_model`` and ``curve.val_psnr_gain`` on the val pairs, in the history and
    ``on_curve``.

    At a validation step the validation's numbers are the point; between them the evaluated
    weights are scored on the val pairs alone (:func:`~girml.training.validation.validate`:
    eval mode under ``inference_mode``, the mode restored, no random draw), never the
    selection set, and nothing is offered to :class:`BestWeights`: the trained and the kept
    weights are the same with the curve on or off.
    """
    if validated and loop.validation is not None:
        metrics = loop.validation[0]
    else:
        metrics = validate(loop.parts.eval_model, loop.val_pairs)[0]
    point = {key.replace("val.", "curve.val_", 1): metrics[key] for key in CURVE_KEYS}
    loop.parts.state.history.append({"step": step, **point})
    if loop.on_curve is not None:
        loop.on_curve(step, point)


def loop_seconds(loop: Loop) -> float:
    """Wall seconds of the loop so far, the resumed runs' included."""
    return loop.base_seconds + time.perf_counter() - loop.loop_start


def last_validation(
    loop: Loop,
) -> tuple[dict[str, float], dict[str, dict[str, float]]]:
    """The loop's last validation; one now if the run resumed from its final checkpoint
    (nothing left to train), reported to ``on_validate`` but not added to the history."""
    if loop.validation is not None:
        return loop.validation
    validation = validate(loop.parts.eval_model, loop.val_pairs)
    if loop.on_validate is not None:
        loop.on_validate(loop.cfg.steps, validation[0])
    return validation
