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

Checkpoints (``<ckpt_dir>/checkpoint-<step>``, the last two kept) hold the model, optimizer,
scheduler, EMA weights and a :class:`TrainState` (step counter, elapsed time, history). They are
written to ``checkpoint-<step>.tmp`` and renamed when complete, so a kill at any moment leaves
only complete checkpoints under their final name. ``<ckpt_dir>/fingerprint.json`` hashes the
settings that shape the weights, the training pairs and the number of processes: a run resumes
only from checkpoints with the same fingerprint, and a launch whose only difference is the number
of processes is refused (:class:`WorldSizeChanged`) rather than silently started over.
Checkpoints of another fingerprint are set aside, never deleted up front: they move to
``<ckpt_dir>/previous-<hash>/`` (a run with that config again moves them back and resumes), and
older sets than the last :data:`KEEP_PREVIOUS` are deleted only once the new run has saved a
checkpoint of its own.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import json
import logging
import math
import os
import re
import shutil
import time
import uuid
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from accelerate import Accelerator, PartialState
from accelerate.logging import get_logger
from accelerate.utils import gather_object, set_seed
from torch import nn
from torch.optim import AdamW, Optimizer
from torch.optim.lr_scheduler import LambdaLR
from torch.utils.data import DataLoader
from tqdm import tqdm

from girml.config import DegradationsConfig, ModelConfig, TrainConfig
from girml.imageio import to_tensor, to_uint8, write_text
from girml.inference import restore_image, torch_threads
from girml.metrics import psnr
from girml.models import build_model
from girml.paths import RELEASE_DIR
from girml.training.data import PairSet, TrainPatches, load_pairs, make_loader
from girml.training.losses import restoration_loss
from girml.training.selection import BestWeights, selection_score

log = get_logger(__name__)  # inside train(): the main process only
# for the checkpoint-folder helpers, which run before (or without) an accelerate state
folder_log = logging.getLogger(__name__)

FINGERPRINT_FILE = "fingerprint.json"
# how torchrun, accelerate and MPI launchers tell a process the size of its group
_WORLD_SIZE_VARS = ("WORLD_SIZE", "PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "MV2_COMM_WORLD_SIZE")
KEEP_CHECKPOINTS = 2
KEEP_PREVIOUS = 1  # sets of another config's checkpoints kept after the new run's first save
PREVIOUS_PREFIX = "previous-"
VAL_BATCH = 8
# TrainConfig fields that change what is reported, or when, but not the trained weights
# (memory layout and compilation change float rounding only, not what is learned)
UNFINGERPRINTED = frozenset(
    {
        "val_every",
        "ckpt_every",
        "log_every",
        "num_workers",
        "num_threads",
        "use_tuned",
        "channels_last",
        "compile",
        "cpu_isa",
    }
)
_CHECKPOINT = re.compile(r"^checkpoint-(\d+)$")

LogCallback = Callable[[int, dict[str, float]], None]


@dataclass(frozen=True)
class TrainResult:
    """What :func:`train` returns.

    Attributes:
        model: final weights (EMA if enabled), eval mode, on the CPU.
        metrics: ``val.psnr_y_input``, ``val.psnr_y_model``, ``val.psnr_gain`` (dB, final
            validation), ``steps``, ``train_seconds`` (wall time of the loop, validation and
            checkpoints included, summed over resumed runs) and ``samples_per_second``.
        per_family: family -> ``{"psnr_y_input", "psnr_y_model", "n"}`` at the final validation.
        history: one row per log event (``step``, ``loss``, ``lr``, ``samples_per_second``)
            and per validation (``step`` and the ``val.*`` metrics), resumed runs included.
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


class WorldSizeChanged(ValueError):
    """The checkpoints to resume were written by a launch with another number of processes."""


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


# --------------------------------------------------------------------------- schedule


def lr_factor(step: int, warmup_steps: int, total_steps: int, min_lr_ratio: float) -> float:
    """Learning-rate multiplier for 0-based optimizer step ``step``.

    Linear warm-up ``(step + 1) / (warmup_steps + 1)`` for the first ``warmup_steps`` steps,
    then a half cosine from 1 at ``warmup_steps`` down to ``min_lr_ratio`` at ``total_steps``
    (and after).
    """
    if step < 0:
        raise ValueError(f"step must be >= 0, got {step}")
    if warmup_steps < 0 or total_steps < 1:
        raise ValueError(
            f"need warmup_steps >= 0 and total_steps >= 1, got {warmup_steps}, {total_steps}"
        )
    if not 0.0 <= min_lr_ratio <= 1.0:
        raise ValueError(f"min_lr_ratio must be in [0, 1], got {min_lr_ratio}")
    if step < warmup_steps:
        return (step + 1) / (warmup_steps + 1)
    progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
    return min_lr_ratio + (1.0 - min_lr_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))


def build_optimizer(model: nn.Module, cfg: TrainConfig) -> AdamW:
    """AdamW over every parameter with ``cfg.lr``, ``cfg.betas`` and ``cfg.weight_decay``.

    ``cfg.fused_optim`` selects the fused kernel (one pass over all parameters, CPU and CUDA);
    otherwise the multi-tensor ``foreach`` implementation.
    """
    impl = {"fused": True} if cfg.fused_optim else {"foreach": True}
    return AdamW(
        model.parameters(), lr=cfg.lr, betas=cfg.betas, weight_decay=cfg.weight_decay, **impl
    )


def build_scheduler(optimizer: Optimizer, cfg: TrainConfig) -> LambdaLR:
    """A ``LambdaLR`` applying :func:`lr_factor`; step it once per optimizer step."""
    factor = functools.partial(
        lr_factor,
        warmup_steps=cfg.warmup_steps,
        total_steps=cfg.steps,
        min_lr_ratio=cfg.min_lr_ratio,
    )
    return LambdaLR(optimizer, factor)


def source_weights(source: str) -> dict[str, torch.Tensor]:
    """The weights to start from for ``train.init_from``.

    Args:
        source: a model folder, a ``models:/`` or ``runs:/`` URI, or ``"release"`` for the
            shipped release model (``models/release/``).

    Raises:
        ValueError: the source cannot be loaded (the message names it).
    """
    from girml.models.store import load_model  # MLflow only when a URI is given

    uri = str(RELEASE_DIR) if source == "release" else source
    try:
        return load_model(uri).state_dict()
    except (FileNotFoundError, OSError, ValueError) as exc:
        raise ValueError(f"train.init_from={source!r}: cannot load it: {exc}") from exc


def init_weights(model: nn.Module, weights: dict[str, torch.Tensor], source: str) -> None:
    """Load ``weights`` (from :func:`source_weights`) into ``model``, in place.

    Raises:
        ValueError: the source's architecture differs from ``model``'s.
    """
    try:
        model.load_state_dict(weights)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[0]
        raise ValueError(
            f"train.init_from={source!r}: its weights do not fit params.yaml's model "
            f"section ({first}); use the same model config as the source"
        ) from exc


def compile_or_eager(model: nn.Module, example: torch.Tensor) -> bool:
    """``torch.compile`` ``model`` in place, falling back to eager mode if compiling fails.

    Compilation is lazy, so one forward and backward pass on ``example`` (gradients then
    cleared) triggers it here rather than in the middle of training.

    Args:
        model: the network, in train mode, on its device.
        example: (B,3,P,P) float input of the training shape.

    Returns:
        Whether the model runs compiled.
    """
    model.compile()
    try:
        model(example).float().mean().backward()
    except Exception as exc:  # inductor needs a C++ (CPU) or Triton (GPU) toolchain
        model._compiled_call_impl = None  # undoes nn.Module.compile
        log.warning(f"torch.compile failed ({type(exc).__name__}: {exc}); training eagerly")
        return False
    finally:
        model.zero_grad(set_to_none=True)
    return True


# --------------------------------------------------------------------------- EMA and state


class EMA:
    """Exponential moving average of a model's weights.

    The decay warms up as ``min(decay, (1 + n) / (10 + n))`` after ``n`` updates, so the
    average follows the fast early changes of short runs instead of the random init.

    Args:
        model: the raw model (copied; later updates read its parameters).
        decay: the long-run decay in (0, 1).
    """

    def __init__(self, model: nn.Module, decay: float) -> None:
        if not 0.0 < decay < 1.0:
            raise ValueError(f"decay must be in (0, 1), got {decay}")
        self.module = copy.deepcopy(model).eval().requires_grad_(False)
        self.decay = decay
        self.num_updates = 0

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        """Move the average towards ``model``'s current weights; buffers are copied."""
        self.num_updates += 1
        decay = min(self.decay, (1 + self.num_updates) / (10 + self.num_updates))
        # one multi-tensor kernel instead of a Python loop of small ones
        averages = list(self.module.parameters())
        current = [p.detach() for p in model.parameters()]
        if len(averages) != len(current):
            raise ValueError(f"EMA holds {len(averages)} parameters, model has {len(current)}")
        torch._foreach_lerp_(averages, current, 1.0 - decay)
        for avg, new in zip(self.module.buffers(), model.buffers(), strict=True):
            avg.copy_(new)

    def state_dict(self) -> dict[str, Any]:
        return {"module": self.module.state_dict(), "num_updates": self.num_updates}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.module.load_state_dict(state["module"])
        self.num_updates = int(state["num_updates"])


class TrainState:
    """Checkpointed bookkeeping: optimizer steps done, loop seconds so far, history rows."""

    def __init__(self) -> None:
        self.step = 0
        self.train_seconds = 0.0
        self.history: list[dict[str, float]] = []

    def state_dict(self) -> dict[str, Any]:
        return {
            "step": self.step,
            "train_seconds": self.train_seconds,
            "history": [dict(row) for row in self.history],
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.step = int(state["step"])
        self.train_seconds = float(state["train_seconds"])
        self.history = [dict(row) for row in state["history"]]


# --------------------------------------------------------------------------- validation


def validate(
    model: nn.Module, pairs: PairSet, batch_size: int = VAL_BATCH
) -> tuple[dict[str, float], dict[str, dict[str, float]]]:
    """Mean PSNR-Y (crop 0) of the degraded inputs and of the model's outputs on whole images.

    Outputs are clamped and rounded to uint8 before scoring, as a saved PNG would be. The
    model's train/eval mode is restored afterwards.

    Args:
        model: restoration network, (B,3,H,W) -> (B,3,H,W).
        pairs: validation pairs (same-size GT and LQ).
        batch_size: images per forward pass (same-size images are batched).

    Returns:
        ``({"val.psnr_y_input", "val.psnr_y_model", "val.psnr_gain"}, per_family)`` where
        ``per_family[family] = {"psnr_y_input", "psnr_y_model", "n"}``.
    """
    if len(pairs) == 0:
        raise ValueError("no validation pairs")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    by_shape: dict[tuple[int, ...], list[int]] = defaultdict(list)
    for i, gt in enumerate(pairs.gt):
        by_shape[gt.shape].append(i)
    scores_in = np.zeros(len(pairs))
    scores_out = np.zeros(len(pairs))
    was_training = model.training
    model.eval()
    try:
        for indices in by_shape.values():
            for first in range(0, len(indices), batch_size):
                chunk = indices[first : first + batch_size]
                lq = torch.cat([to_tensor(pairs.lq[i]) for i in chunk])
                out = restore_image(model, lq, tile=None, overlap=0)
                for j, i in enumerate(chunk):
                    scores_in[i] = psnr(pairs.lq[i], pairs.gt[i], crop_border=0, test_y=True)
                    scores_out[i] = psnr(to_uint8(out[j]), pairs.gt[i], crop_border=0, test_y=True)
    finally:
        model.train(was_training)
    families = np.array(pairs.families)
    per_family = {
        family: {
            "psnr_y_input": float(scores_in[families == family].mean()),
            "psnr_y_model": float(scores_out[families == family].mean()),
            "n": int((families == family).sum()),
        }
        for family in sorted(set(pairs.families))
    }
    metrics = {
        "val.psnr_y_input": float(scores_in.mean()),
        "val.psnr_y_model": float(scores_out.mean()),
        "val.psnr_gain": float(scores_out.mean() - scores_in.mean()),
    }
    return metrics, per_family


# --------------------------------------------------------------------------- checkpoints


def run_fingerprint(
    model_cfg: ModelConfig,
    cfg: TrainConfig,
    train_jsonl: Path,
    spec: DegradationsConfig | None,
    num_processes: int,
) -> dict[str, Any]:
    """What a checkpoint was trained on.

    Returns:
        ``{"config": sha256, "train_pairs": sha256, "world_size": num_processes}``: the first
        over the model config, the train config minus :data:`UNFINGERPRINTED` and (when online
        degradations are on) the spec; the second over the bytes of ``train/pairs.jsonl``.
    """
    online_spec = spec if cfg.online_degradation_prob > 0 else None
    config = {
        "model": model_cfg.model_dump(mode="json"),
        "train": cfg.model_dump(mode="json", exclude=set(UNFINGERPRINTED)),
        "spec": online_spec.model_dump(mode="json") if online_spec is not None else None,
    }
    encoded = json.dumps(config, sort_keys=True).encode()
    return {
        "config": hashlib.sha256(encoded).hexdigest(),
        "train_pairs": hashlib.sha256(train_jsonl.read_bytes()).hexdigest(),
        "world_size": num_processes,
    }


def check_world_size(ckpt_dir: Path, fingerprint: dict[str, Any]) -> None:
    """Refuse to start over checkpoints that differ from ``fingerprint`` only in world size.

    Resuming them would replay the sample stream with another number of samples per step, and
    setting them aside (as for any other config change) would quietly throw away the training
    done; a forgotten ``--nproc_per_node`` is the usual cause. Only reads files, so every rank
    calls it and all of them stop together.

    Raises:
        WorldSizeChanged: naming the folder, the step and both process counts.
    """
    saved = _read_fingerprint(ckpt_dir / FINGERPRINT_FILE)
    checkpoints = complete_checkpoints(ckpt_dir)
    if saved is None or not checkpoints:
        return
    same_run = all(saved.get(key) == fingerprint[key] for key in ("config", "train_pairs"))
    if same_run and saved.get("world_size") != fingerprint["world_size"]:
        raise WorldSizeChanged(
            f"{ckpt_dir}: its checkpoints (up to step {checkpoints[-1][0]}) were written by a "
            f"launch of {saved.get('world_size')} process(es) and this one has "
            f"{fingerprint['world_size']}: launch {saved.get('world_size')} process(es) to "
            f"resume, or move {ckpt_dir} away to train from scratch"
        )


def complete_checkpoints(ckpt_dir: Path) -> list[tuple[int, Path]]:
    """``(step, folder)`` of every complete ``checkpoint-<step>`` folder, oldest first."""
    if not ckpt_dir.is_dir():
        return []
    found = []
    for entry in ckpt_dir.iterdir():
        match = _CHECKPOINT.match(entry.name)
        if match and entry.is_dir():
            found.append((int(match.group(1)), entry))
    return sorted(found)


def _discard(path: Path) -> None:
    """Delete a checkpoint folder, renaming it first so a kill mid-way leaves no valid name."""
    doomed = path.with_name(path.name + ".old")
    shutil.rmtree(doomed, ignore_errors=True)
    path.rename(doomed)
    shutil.rmtree(doomed)


def _fingerprint_id(fingerprint: dict[str, Any]) -> str:
    """Short stable name of a fingerprint, for its set-aside folder."""
    return hashlib.sha256(json.dumps(fingerprint, sort_keys=True).encode()).hexdigest()[:12]


def _read_fingerprint(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _move_checkpoints(src: Path, dst: Path) -> None:
    """Move every complete checkpoint of ``src`` into ``dst`` (a rename each: no copy)."""
    for _, folder in complete_checkpoints(src):
        target = dst / folder.name
        if target.exists():  # the same config's same step, set aside before: replace it
            _discard(target)
        folder.rename(target)


def set_aside_dirs(ckpt_dir: Path) -> list[Path]:
    """Set-aside checkpoint sets (``previous-<hash>/``) in ``ckpt_dir``, newest first."""
    if not ckpt_dir.is_dir():
        return []
    found = [
        entry
        for entry in ckpt_dir.iterdir()
        if entry.name.startswith(PREVIOUS_PREFIX) and not entry.name.endswith(".old")
    ]
    found = [entry for entry in found if (entry / FINGERPRINT_FILE).is_file()]
    return sorted(found, key=lambda e: (e / FINGERPRINT_FILE).stat().st_mtime_ns, reverse=True)


def prune_set_aside(ckpt_dir: Path, keep: int = KEEP_PREVIOUS) -> list[Path]:
    """Delete all but the ``keep`` most recently set-aside checkpoint sets; return the deleted.

    Called once the current run has a checkpoint of its own, so a run that fails before its
    first save never costs the checkpoints it displaced.
    """
    doomed = set_aside_dirs(ckpt_dir)[keep:]
    for folder in doomed:
        _discard(folder)
    return doomed


def claim_checkpoint_dir(ckpt_dir: Path, fingerprint: dict[str, Any]) -> bool:
    """Prepare ``ckpt_dir`` for a run with ``fingerprint``.

    Leftovers of interrupted saves and deletions (``*.tmp``, ``*.old``) are removed. If the
    saved fingerprint differs (or is missing), the checkpoints are moved aside into
    ``previous-<hash>/`` (with their fingerprint) and the new fingerprint is written; nothing
    is deleted (see :func:`prune_set_aside`). If the folder then holds no checkpoint and a
    set-aside folder has this very fingerprint, its checkpoints are moved back. Other files in
    the folder are left alone.

    Returns:
        Whether the checkpoints now in ``ckpt_dir`` are this fingerprint's (so a run may resume
        from them): the saved fingerprint matched, or a set-aside set was brought back.
    """
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    path = ckpt_dir / FINGERPRINT_FILE
    saved = _read_fingerprint(path)
    matched = saved == fingerprint
    for entry in ckpt_dir.iterdir():
        ours = entry.name.startswith(("checkpoint-", PREVIOUS_PREFIX)) and entry.is_dir()
        if ours and entry.name.endswith((".tmp", ".old")):
            shutil.rmtree(entry)
    if not matched:
        if complete_checkpoints(ckpt_dir):
            if saved is None:  # whose they are is unknown: keep them under a name of their own
                saved = {"unknown": uuid.uuid4().hex}
            aside = ckpt_dir / f"{PREVIOUS_PREFIX}{_fingerprint_id(saved)}"
            aside.mkdir(exist_ok=True)
            write_text(aside / FINGERPRINT_FILE, json.dumps(saved, indent=2, sort_keys=True) + "\n")
            _move_checkpoints(ckpt_dir, aside)
            folder_log.warning(
                f"{ckpt_dir}: checkpoints are from another config or data; set aside in "
                f"{aside} (a run with that config again resumes from them)"
            )
        write_text(path, json.dumps(fingerprint, indent=2, sort_keys=True) + "\n")
    mine = ckpt_dir / f"{PREVIOUS_PREFIX}{_fingerprint_id(fingerprint)}"
    if not complete_checkpoints(ckpt_dir) and _read_fingerprint(mine / FINGERPRINT_FILE) == (
        fingerprint
    ):
        _move_checkpoints(mine, ckpt_dir)
        _discard(mine)
        folder_log.info(f"{ckpt_dir}: this config's checkpoints brought back from {mine.name}")
        return True
    return matched


def _save_checkpoint(accelerator: Accelerator, ckpt_dir: Path, step: int) -> None:
    final = ckpt_dir / f"checkpoint-{step}"
    tmp = final.with_name(final.name + ".tmp")
    if accelerator.is_main_process and tmp.exists():
        shutil.rmtree(tmp)
    accelerator.wait_for_everyone()
    accelerator.save_state(str(tmp))
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        if final.exists():
            _discard(final)
        tmp.rename(final)
        for _, old in complete_checkpoints(ckpt_dir)[:-KEEP_CHECKPOINTS]:
            _discard(old)
        prune_set_aside(ckpt_dir)  # this run has a checkpoint now: older sets may go
    accelerator.wait_for_everyone()


# --------------------------------------------------------------------------- training


def train(
    model_cfg: ModelConfig,
    cfg: TrainConfig,
    pairs_dir: Path,
    ckpt_dir: Path,
    *,
    spec: DegradationsConfig | None = None,
    on_log: LogCallback | None = None,
    on_validate: LogCallback | None = None,
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
        on_log: ``(step, {"loss", "lr", "samples_per_second"})`` every ``cfg.log_every``
            steps, on the main process.
        on_validate: ``(step, {"val.psnr_y_input", "val.psnr_y_model", "val.psnr_gain"})``
            every ``cfg.val_every`` steps and at the end, on the main process.

    Returns:
        The :class:`TrainResult`.
    """
    if cfg.online_degradation_prob > 0 and spec is None:
        raise ValueError(
            f"online_degradation_prob={cfg.online_degradation_prob} needs the degradations spec"
        )
    with torch_threads(cfg.num_threads):
        return _train(model_cfg, cfg, pairs_dir, ckpt_dir, spec, on_log, on_validate)


def _train(
    model_cfg: ModelConfig,
    cfg: TrainConfig,
    pairs_dir: Path,
    ckpt_dir: Path,
    spec: DegradationsConfig | None,
    on_log: LogCallback | None,
    on_validate: LogCallback | None,
) -> TrainResult:
    """:func:`train`'s body, at the thread count it chose."""
    pairs_dir, ckpt_dir = Path(pairs_dir), Path(ckpt_dir)
    train_jsonl = pairs_dir / "train" / "pairs.jsonl"
    accelerator = _make_accelerator(cfg)
    # loaded before the checkpoint folder is touched: a bad source changes nothing
    init = source_weights(cfg.init_from) if cfg.init_from is not None else None
    fingerprint = run_fingerprint(model_cfg, cfg, train_jsonl, spec, accelerator.num_processes)
    _claim_for_run(accelerator, ckpt_dir, fingerprint)
    dataset = train_dataset(cfg, train_jsonl, spec)
    val_pairs = load_pairs(pairs_dir / "val" / "pairs.jsonl")
    select_jsonl = pairs_dir / "select" / "pairs.jsonl"
    select_pairs = load_pairs(select_jsonl) if select_jsonl.is_file() else None

    parts = _prepare_parts(accelerator, model_cfg, cfg, init)
    resumed_from = _resume(parts, ckpt_dir, cfg.steps)
    per_step = cfg.batch_size * cfg.grad_accum * accelerator.num_processes
    loader = _prepare_loader(accelerator, dataset, cfg, parts.state.step * per_step, per_step)

    if not accelerator.is_main_process:  # callbacks run on the main process only
        on_log = on_validate = None
    loop = _Loop(parts, cfg, ckpt_dir, val_pairs, select_pairs, per_step, on_log, on_validate)
    parts.model.train()
    for lq, gt in loader:
        _train_step(loop, lq, gt)
    loop.bar.close()
    train_seconds = _loop_seconds(loop)

    val_metrics, per_family = _last_validation(loop)
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


@dataclass
class _Parts:
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
class _Loop:
    """What the steps of one run's loop share: its parts, settings, hooks and running counts.

    Attributes:
        parts: the prepared pieces.
        cfg: the run's settings.
        ckpt_dir: the checkpoint folder.
        val_pairs: the validation pairs.
        select_pairs: the selection set (``pairs/select``), or None: the selection then
            scores ``val_pairs``.
        per_step: samples per optimizer step, all processes together.
        on_log: :func:`train`'s ``on_log``; None off the main process.
        on_validate: :func:`train`'s ``on_validate``; None off the main process.
        bar: the progress bar (disabled off the main process).
        loss_sum: (0-dim tensor, on the device) micro-batch losses since the last log event.
        micro_batches: how many losses ``loss_sum`` holds.
        window_samples: samples trained since the last event (log, validation, checkpoint).
        window_start: ``time.perf_counter()`` at the end of the last event.
        base_seconds: loop seconds of the runs this one resumed.
        loop_start: ``time.perf_counter()`` when this run's loop started.
        validation: the last validation's ``(metrics, per_family)``; None before the first.
    """

    parts: _Parts
    cfg: TrainConfig
    ckpt_dir: Path
    val_pairs: PairSet
    select_pairs: PairSet | None
    per_step: int
    on_log: LogCallback | None
    on_validate: LogCallback | None
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


def _claim_for_run(accelerator: Accelerator, ckpt_dir: Path, fingerprint: dict[str, Any]) -> None:
    """Refuse a changed world size (every rank), then claim ``ckpt_dir`` (the main process).

    Raises:
        WorldSizeChanged: see :func:`check_world_size`.
    """
    check_world_size(ckpt_dir, fingerprint)
    if accelerator.is_main_process:
        claim_checkpoint_dir(ckpt_dir, fingerprint)
    accelerator.wait_for_everyone()


def _prepare_parts(
    accelerator: Accelerator,
    model_cfg: ModelConfig,
    cfg: TrainConfig,
    init: dict[str, torch.Tensor] | None,
) -> _Parts:
    """Build the seeded model (``init``'s weights when given), its optimizer, schedule and EMA,
    compile it if asked, prepare them on ``accelerator`` and register the checkpointed state.

    Args:
        accelerator: the run's accelerator.
        model_cfg: architecture and sizes.
        cfg: the run's settings.
        init: :func:`source_weights` of ``cfg.init_from``, or None.
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
    return _Parts(accelerator, raw_model, model, optimizer, scheduler, ema, state, eval_model, best)


def _resume(parts: _Parts, ckpt_dir: Path, steps: int) -> int | None:
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


def _train_step(loop: _Loop, lq: torch.Tensor, gt: torch.Tensor) -> None:
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


def _after_optimizer_step(loop: _Loop, lr: float) -> None:
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
    if step % cfg.val_every == 0 or step == cfg.steps:
        _validation_event(loop, step)
        events = True
    if step % cfg.ckpt_every == 0 or step == cfg.steps:
        parts.state.train_seconds = _loop_seconds(loop)
        _save_checkpoint(parts.accelerator, loop.ckpt_dir, step)
        events = True
    if events:  # samples/s measures training only, not validation or checkpointing
        loop.window_samples, loop.window_start = 0, time.perf_counter()


def _log_event(loop: _Loop, step: int, lr: float) -> None:
    """Record the mean loss (over processes and micro-batches), ``lr`` and samples/s since the
    last event in the history, the progress bar and ``on_log``; restart the loss sum."""
    mean_loss = (
        loop.parts.accelerator.reduce(loop.loss_sum, reduction="mean").item() / loop.micro_batches
    )
    speed = loop.window_samples / max(time.perf_counter() - loop.window_start, 1e-9)
    logged = {"loss": mean_loss, "lr": lr, "samples_per_second": speed}
    loop.parts.state.history.append({"step": step, **logged})
    loop.bar.set_postfix(loss=f"{mean_loss:.4f}", lr=f"{lr:.2e}", refresh=False)
    if loop.on_log is not None:
        loop.on_log(step, logged)
    loop.loss_sum.zero_()
    loop.micro_batches = 0


def _validation_event(loop: _Loop, step: int) -> None:
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


def _loop_seconds(loop: _Loop) -> float:
    """Wall seconds of the loop so far, the resumed runs' included."""
    return loop.base_seconds + time.perf_counter() - loop.loop_start


def _last_validation(
    loop: _Loop,
) -> tuple[dict[str, float], dict[str, dict[str, float]]]:
    """The loop's last validation; one now if the run resumed from its final checkpoint
    (nothing left to train), reported to ``on_validate`` but not added to the history."""
    if loop.validation is not None:
        return loop.validation
    validation = validate(loop.parts.eval_model, loop.val_pairs)
    if loop.on_validate is not None:
        loop.on_validate(loop.cfg.steps, validation[0])
    return validation


def _final_weights(
    parts: _Parts, model_cfg: ModelConfig, *, kept: bool = False
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
