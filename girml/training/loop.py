"""The training loop on HF accelerate: AdamW, warm-up + cosine, EMA, validation, resumable.

One code path runs on a CPU, one GPU or several processes (``torchrun`` or ``accelerate
launch``; CPU ranks join with gloo, GPU ranks with NCCL): the model, optimizer, scheduler and
loader go through ``accelerator.prepare``; ``batch_size`` is per process, and the loader hands
rank ``r`` batches ``r, r + N, ...`` of the seeded stream (:mod:`girml.training.data`), so an
optimizer step consumes the same ``batch_size x grad_accum x num_processes`` samples as one
process with an ``N`` times larger batch. Every process validates the same (identical) weights,
so each returns the same :class:`TrainResult`; at the end the ranks compare a digest of their
weights and fail if they differ. Callbacks, the progress bar and file bookkeeping run on the
main process only. :func:`process_state` is the launch's process group; ask it (not a bare
``PartialState()``) which rank this is.

This module sets a run up, runs it and collects the result; the parts live next to it:
:mod:`.schedule` (optimizer and learning rate), :mod:`.init` (``init_from`` and compilation),
:mod:`.state` (EMA and bookkeeping), :mod:`.validation`, :mod:`.checkpoints` (fingerprint,
resume, setting aside) and :mod:`.steps` (one optimizer step and its events).
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from accelerate import Accelerator, PartialState
from accelerate.logging import get_logger
from accelerate.utils import gather_object, set_seed
from torch import nn
from torch.utils.data import DataLoader

from girml.config import DegradationsConfig, ModelConfig, TrainConfig
from girml.core.inference import torch_threads
from girml.models import build_model
from girml.training.checkpoints import claim_for_run, complete_checkpoints, run_fingerprint
from girml.training.data import TrainPatches, load_pairs, make_loader
from girml.training.init import check_init, compile_or_eager, init_weights
from girml.training.schedule import build_optimizer, build_scheduler
from girml.training.selection import BestWeights
from girml.training.state import EMA, TrainState
from girml.training.steps import LogCallback, Loop, Parts, last_validation, loop_seconds, train_step

log = get_logger(__name__)  # inside train(): the main process only

# how torchrun, accelerate and MPI launchers tell a process the size of its group
_WORLD_SIZE_VARS = ("WORLD_SIZE", "PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "MV2_COMM_WORLD_SIZE")


@dataclass(frozen=True)
class TrainResult:
    """What :func:`train` returns.

    Attributes:
        model: final weights (EMA if enabled), eval mode, on the CPU.
        metrics: ``val.psnr_y_input``, ``val.psnr_y_model``, ``val.psnr_gain`` (dB, final
            validation), ``steps``, ``train_seconds`` (wall time of the loop, validation and
            checkpoints included, summed over resumed runs) and ``samples_per_second``.
        per_family: family -> ``{"psnr_y_input", "psnr_y_model", "n"}`` at the final validation.
        history: one row per log event (``step``, the loss under
            :func:`~girml.training.steps.loss_metric_name`, ``lr``, ``samples_per_second``),
            per validation (``step`` and the ``val.*`` metrics) and per curve point (``step``
            and the ``curve.*`` metrics; main process only), resumed runs included.
        resumed_from: the step of the checkpoint this run resumed from, or None.
        rank_digests: :func:`weights_digest` of the final weights on each rank, in rank order
            (one entry per process; all equal, or :func:`train` raises).
        selection: which validated weights were kept and why
            (:meth:`girml.training.selection.BestWeights.record`).
    """

    model: nn.Module
    metrics: dict[str, float]
    per_family: dict[str, dict[str, float]]
    history: list[dict[str, float]]
    resumed_from: int | None
    rank_digests: list[str]
    selection: dict[str, Any] = field(default_factory=dict)

    @property
    def world_size(self) -> int:
        """How many processes trained together."""
        return len(self.rank_digests)


def process_state() -> PartialState:
    """This launch's process group: one process, or every rank of ``torchrun`` /
    ``accelerate launch``.

    accelerate keeps one shared state per process, made by whoever asks first, and a state made
    with ``cpu=False`` on a host without CUDA is a group of one even under a launcher (CPU ranks
    join with gloo only when asked for the CPU). This makes it with the same ``cpu`` flag as
    :func:`train`'s ``Accelerator``, so the CLI may ask for the rank before training starts.

    Raises:
        ValueError: ``accelerate launch --num_processes N`` without ``--multi_gpu`` started a
            single process (its simple launcher exports a rendezvous port but no world size).
    """
    launched_one = (
        "ACCELERATE_USE_CPU" in os.environ
        and "MASTER_PORT" in os.environ
        and not any(name in os.environ for name in _WORLD_SIZE_VARS)
    )
    if launched_one:
        raise ValueError(
            "accelerate launch asked for several processes but started one: add --multi_gpu "
            "(on a CPU host: ACCELERATE_USE_CPU=1 accelerate launch --multi_gpu --num_processes "
            "N -m girml train) or use torchrun --nproc_per_node N -m girml train"
        )
    return PartialState(cpu=not torch.cuda.is_available())


def weights_digest(model: nn.Module) -> str:
    """sha256 over the names, dtypes, shapes and bytes of ``model``'s state, in order."""
    digest = hashlib.sha256()
    for name, tensor in model.state_dict().items():
        value = tensor.detach().cpu().contiguous()
        digest.update(f"{name}:{value.dtype}:{tuple(value.shape)}".encode())
        digest.update(value.view(torch.uint8).numpy().tobytes() if value.numel() else b"")
    return digest.hexdigest()


def train(
    model_cfg: ModelConfig,
    cfg: TrainConfig,
    pairs_dir: Path,
    ckpt_dir: Path,
    *,
    spec: DegradationsConfig | None = None,
    on_log: LogCallback | None = None,
    on_validate: LogCallback | None = None,
    init: dict[str, torch.Tensor] | None = None,
    on_curve: LogCallback | None = None,
) -> TrainResult:
    """Train ``model_cfg``'s architecture on ``pairs_dir/train``, validating on ``pairs_dir/val``.

    Resumes from the latest complete checkpoint in ``ckpt_dir`` when its fingerprint matches
    (the result is then the one an uninterrupted run gives); a run that already finished
    only re-validates.

    Args:
        model_cfg: architecture and sizes.
        cfg: optimisation, data, cadence and seed; ``cfg.num_threads`` (when not 0) is torch's
            thread count for the run, restored afterwards.
        pairs_dir: holds ``train/pairs.jsonl`` and ``val/pairs.jsonl`` (synthesize layout).
        ckpt_dir: checkpoint folder (created; checkpoints of other configs are set aside).
        spec: the degradation spec, needed iff ``cfg.online_degradation_prob > 0``.
        on_log: ``(step, {loss_metric_name, "lr", "samples_per_second"})`` every ``cfg.log_every``
            steps, on the main process.
        on_validate: ``(step, {"val.psnr_y_input", "val.psnr_y_model", "val.psnr_gain"})``
            every ``cfg.val_every`` steps and at the end, on the main process.
        init: the weights of ``cfg.init_from``, loaded by the caller
            (:func:`girml.artifacts.loading.source_weights`); given iff ``cfg.init_from`` is set.
        on_curve: ``(step, {"curve.val_psnr_y_input", "curve.val_psnr_y_model",
            "curve.val_psnr_gain"})`` every ``cfg.curve_every`` steps and at each validation,
            on the main process: a validation curve on the val pairs for logging only (the
            weights are the same with or without it; 0 or no callback: none is computed).

    Returns:
        The :class:`TrainResult`.
    """
    if cfg.online_degradation_prob > 0 and spec is None:
        raise ValueError(
            f"online_degradation_prob={cfg.online_degradation_prob} needs the degradations spec"
        )
    check_init(cfg.init_from, init)
    with torch_threads(cfg.num_threads):
        hooks = (on_log, on_validate, on_curve)
        return _train(model_cfg, cfg, pairs_dir, ckpt_dir, spec, hooks, init)


def _train(
    model_cfg: ModelConfig,
    cfg: TrainConfig,
    pairs_dir: Path,
    ckpt_dir: Path,
    spec: DegradationsConfig | None,
    hooks: tuple[LogCallback | None, LogCallback | None, LogCallback | None],
    init: dict[str, torch.Tensor] | None,
) -> TrainResult:
    """:func:`train`'s body, at the thread count it chose; ``hooks``: its ``on_log``,
    ``on_validate`` and ``on_curve``."""
    pairs_dir, ckpt_dir = Path(pairs_dir), Path(ckpt_dir)
    train_jsonl = pairs_dir / "train" / "pairs.jsonl"
    accelerator = _make_accelerator(cfg)
    fingerprint = run_fingerprint(model_cfg, cfg, train_jsonl, spec, accelerator.num_processes)
    claim_for_run(accelerator, ckpt_dir, fingerprint)
    dataset = train_dataset(cfg, train_jsonl, spec)
    val_pairs = load_pairs(pairs_dir / "val" / "pairs.jsonl")
    select_jsonl = pairs_dir / "select" / "pairs.jsonl"
    select_pairs = load_pairs(select_jsonl) if select_jsonl.is_file() else None

    parts = _prepare_parts(accelerator, model_cfg, cfg, init)
    resumed_from = _resume(parts, ckpt_dir, cfg.steps)
    per_step = cfg.batch_size * cfg.grad_accum * accelerator.num_processes
    loader = _prepare_loader(accelerator, dataset, cfg, parts.state.step * per_step, per_step)

    if not accelerator.is_main_process:  # callbacks run on the main process only
        hooks = (None, None, None)
    loop = Loop(parts, cfg, ckpt_dir, val_pairs, select_pairs, per_step, *hooks)
    parts.model.train()
    for lq, gt in loader:
        train_step(loop, lq, gt)
    loop.bar.close()
    train_seconds = loop_seconds(loop)

    val_metrics, per_family = last_validation(loop)
    selection = parts.best.record(cfg.select, cfg.steps)
    if selection["kept_step"] != cfg.steps and parts.best.validation is not None:
        val_metrics = parts.best.validation["metrics"]
        per_family = parts.best.validation["per_family"]
    final, digests = _final_weights(parts, model_cfg, kept=selection["kept_step"] != cfg.steps)
    metrics = {
        **val_metrics,
        "steps": float(cfg.steps),
        "train_seconds": train_seconds,
        "samples_per_second": cfg.steps * per_step / max(train_seconds, 1e-9),
    }
    return TrainResult(
        model=final,
        metrics=metrics,
        per_family=per_family,
        history=[dict(row) for row in parts.state.history],
        resumed_from=resumed_from,
        rank_digests=list(digests),
        selection=selection,
    )


def train_dataset(
    cfg: TrainConfig, train_jsonl: Path, spec: DegradationsConfig | None
) -> TrainPatches:
    """The seeded patch stream that :func:`train` draws from.

    Args:
        cfg: patch size, seed, and the online-degradation, black-region and clean shares.
        train_jsonl: the ``train/pairs.jsonl`` of a synthesized pairs folder.
        spec: the degradation spec, needed iff ``cfg.online_degradation_prob > 0``.

    Returns:
        The :class:`TrainPatches` over the pairs in ``train_jsonl``.
    """
    return TrainPatches(
        load_pairs(train_jsonl),
        cfg.patch_size,
        cfg.seed,
        cfg.online_degradation_prob,
        spec,
        black_region_prob=cfg.black_region_prob,
        clean_prob=cfg.clean_prob,
    )


def _make_accelerator(cfg: TrainConfig) -> Accelerator:
    """The run's ``Accelerator``: the CPU when there is no CUDA, ``cfg``'s precision and
    gradient accumulation."""
    return Accelerator(
        cpu=not torch.cuda.is_available(),
        mixed_precision=cfg.mixed_precision,
        gradient_accumulation_steps=cfg.grad_accum,
        # the schedule counts optimizer steps: step it ourselves, once per optimizer step
        step_scheduler_with_optimizer=False,
    )


def _prepare_parts(
    accelerator: Accelerator,
    model_cfg: ModelConfig,
    cfg: TrainConfig,
    init: dict[str, torch.Tensor] | None,
) -> Parts:
    """Build the seeded model (``init``'s weights when given), its optimizer, schedule and EMA,
    compile it if asked, prepare them on ``accelerator`` and register the checkpointed state.

    Args:
        accelerator: the run's accelerator.
        model_cfg: architecture and sizes.
        cfg: the run's settings.
        init: the weights of ``cfg.init_from`` (see :func:`train`), or None.
    """
    set_seed(cfg.seed)
    raw_model = build_model(model_cfg)
    if init is not None:
        init_weights(raw_model, init, str(cfg.init_from))
    memory_format = torch.channels_last if cfg.channels_last else torch.contiguous_format
    raw_model.to(accelerator.device, memory_format=memory_format)
    optimizer = build_optimizer(raw_model, cfg)
    scheduler = build_scheduler(optimizer, cfg)
    # copied before prepare(), which may patch the instance's forward for mixed precision,
    # and before compile(): the average is only evaluated, eagerly
    ema = EMA(raw_model, cfg.ema_decay) if cfg.ema_decay > 0 else None
    if cfg.compile:
        example = torch.zeros(cfg.batch_size, 3, cfg.patch_size, cfg.patch_size)
        example = example.to(accelerator.device, memory_format=memory_format)
        compile_or_eager(raw_model, example)
    model, optimizer, scheduler = accelerator.prepare(raw_model, optimizer, scheduler)
    if ema is not None:
        ema.module.to(accelerator.device)
    state, best = TrainState(), BestWeights()
    accelerator.register_for_checkpointing(state, best, *([ema] if ema is not None else []))
    eval_model = ema.module if ema is not None else accelerator.unwrap_model(model)
    return Parts(accelerator, raw_model, model, optimizer, scheduler, ema, state, eval_model, best)


def _resume(parts: Parts, ckpt_dir: Path, steps: int) -> int | None:
    """Load the latest complete checkpoint in ``ckpt_dir`` into ``parts``, if there is one.

    Returns:
        The step resumed from, or None when there was no checkpoint.
    """
    checkpoints = complete_checkpoints(ckpt_dir)
    if not checkpoints:
        return None
    parts.accelerator.load_state(str(checkpoints[-1][1]))
    log.info(f"resuming from {checkpoints[-1][1]} (step {parts.state.step}/{steps})")
    return parts.state.step


def _prepare_loader(
    accelerator: Accelerator, dataset: TrainPatches, cfg: TrainConfig, start: int, per_step: int
) -> DataLoader:
    """The prepared loader of ``dataset``'s samples ``start`` to ``cfg.steps * per_step``
    (those of the optimizer steps not done yet)."""
    return accelerator.prepare(
        make_loader(
            dataset,
            cfg.batch_size,
            start=start,
            stop=cfg.steps * per_step,
            num_workers=cfg.num_workers,
            pin_memory=accelerator.device.type == "cuda",
        )
    )


def _final_weights(
    parts: Parts, model_cfg: ModelConfig, *, kept: bool = False
) -> tuple[nn.Module, list[str]]:
    """The evaluated weights (``kept``: the best validated ones instead) in a fresh CPU model
    (eval mode), and every rank's digest of them.

    Raises:
        RuntimeError: the ranks ended with different weights.
    """
    final = build_model(model_cfg)
    source = parts.best.weights if kept and parts.best.weights is not None else None
    if source is None:
        source = {k: v.detach().cpu() for k, v in parts.eval_model.state_dict().items()}
    final.load_state_dict(source)
    final.eval()
    digest = weights_digest(final)
    accelerator = parts.accelerator
    digests = gather_object([digest]) if accelerator.num_processes > 1 else [digest]
    accelerator.free_memory()
    if len(set(digests)) > 1:  # a broken all-reduce or a rank-dependent step somewhere
        raise RuntimeError(f"the ranks ended with different weights: {digests}")
    return final, digests
