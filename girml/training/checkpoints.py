"""Checkpoint folders: the run fingerprint, the world-size check, listing, saving, setting aside.

Checkpoints (``<ckpt_dir>/checkpoint-<step>``, the last :data:`KEEP_CHECKPOINTS` kept) hold the
model, optimizer, scheduler, EMA weights and a :class:`~girml.training.state.TrainState` (step
counter, elapsed time, history). They are written to ``checkpoint-<step>.tmp`` and renamed when
complete, so a kill at any moment leaves only complete checkpoints under their final name.
``<ckpt_dir>/fingerprint.json`` hashes the settings that shape the weights, the training pairs and
the number of processes: a run resumes only from checkpoints with the same fingerprint, and a
launch whose only difference is the number of processes is refused (:class:`WorldSizeChanged`)
rather than silently started over. Checkpoints of another fingerprint are set aside, never
deleted up front: they move to ``<ckpt_dir>/previous-<hash>/`` (a run with that config again
moves them back and resumes), and older sets than the last :data:`KEEP_PREVIOUS` are deleted only
once the new run has saved a checkpoint of its own.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import shutil
import uuid
from pathlib import Path
from typing import Any

from accelerate import Accelerator

from girml.config import DegradationsConfig, ModelConfig, TrainConfig
from girml.core.imageio import write_text

# the folder helpers run before (or without) an accelerate state: a plain logger
log = logging.getLogger(__name__)

FINGERPRINT_FILE = "fingerprint.json"
KEEP_CHECKPOINTS = 2
KEEP_PREVIOUS = 1  # sets of another config's checkpoints kept after the new run's first save
PREVIOUS_PREFIX = "previous-"
# TrainConfig fields that change what is reported, or when, but not the trained weights
# (memory layout and compilation change float rounding only, not what is learned)
UNFINGERPRINTED = frozenset(
    {
        "val_every",
        "curve_every",
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


class WorldSizeChanged(ValueError):
    """The checkpoints to resume were written by a launch with another number of processes."""


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
            log.warning(
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
        log.info(f"{ckpt_dir}: this config's checkpoints brought back from {mine.name}")
        return True
    return matched


def claim_for_run(accelerator: Accelerator, ckpt_dir: Path, fingerprint: dict[str, Any]) -> None:
    """Refuse a changed world size (every rank), then claim ``ckpt_dir`` (the main process).

    Raises:
        WorldSizeChanged: see :func:`check_world_size`.
    """
    check_world_size(ckpt_dir, fingerprint)
    if accelerator.is_main_process:
        claim_checkpoint_dir(ckpt_dir, fingerprint)
    accelerator.wait_for_everyone()


def save_checkpoint(accelerator: Accelerator, ckpt_dir: Path, step: int) -> None:
    """Save ``accelerator``'s registered state as ``ckpt_dir/checkpoint-<step>``, on every rank.

    Written to ``checkpoint-<step>.tmp`` and renamed when complete; then the main process keeps
    the last :data:`KEEP_CHECKPOINTS` checkpoints and prunes set-aside sets
    (:func:`prune_set_aside`).
    """
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
