"""Checkpoint folders (girml.training.checkpoints): fingerprints, resuming only the same run,
setting other runs' checkpoints aside and pruning them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from girml.training.checkpoints import (
    KEEP_PREVIOUS,
    claim_checkpoint_dir,
    complete_checkpoints,
    run_fingerprint,
    set_aside_dirs,
)
from girml.training.loop import train
from tests.training.common import BASE, MODEL, weights_equal

pytestmark = pytest.mark.usefixtures("single_thread")


def test_changed_config_does_not_resume(pairs_dir: Path, tmp_path: Path) -> None:
    ckpt = tmp_path / "ckpt"
    cfg = BASE.model_copy(update={"steps": 6, "ckpt_every": 3, "val_every": 6})
    first = train(MODEL, cfg, pairs_dir, ckpt)
    assert first.resumed_from is None and [s for s, _ in complete_checkpoints(ckpt)] == [3, 6]
    (ckpt / "checkpoint-9.tmp").mkdir()  # a save killed half-way
    (ckpt / "notes.txt").write_text("not ours")

    # reporting-only settings keep the fingerprint: the finished run is reused as is
    cosmetic = cfg.model_copy(update={"log_every": 2, "val_every": 3, "num_workers": 1})
    again = train(MODEL, cosmetic, pairs_dir, ckpt)
    assert again.resumed_from == 6 and weights_equal(again.model, first.model)
    assert not (ckpt / "checkpoint-9.tmp").exists()

    changed = cfg.model_copy(update={"lr": 1e-3})
    fresh = train(MODEL, changed, pairs_dir, ckpt)
    assert fresh.resumed_from is None
    assert not weights_equal(fresh.model, first.model)
    assert (ckpt / "notes.txt").exists()  # only checkpoints are moved
    # the first config's checkpoints were set aside, not deleted: going back resumes from them
    (aside,) = set_aside_dirs(ckpt)
    assert [s for s, _ in complete_checkpoints(aside)] == [3, 6]
    back = train(MODEL, cfg, pairs_dir, ckpt)
    assert back.resumed_from == 6 and weights_equal(back.model, first.model)
    assert [s for s, _ in complete_checkpoints(set_aside_dirs(ckpt)[0])] == [3, 6]  # `changed`


def test_bad_config_never_costs_checkpoints(pairs_dir: Path, tmp_path: Path) -> None:
    """A run of another config that dies before its first save leaves every checkpoint."""
    ckpt = tmp_path / "ckpt"
    cfg = BASE.model_copy(update={"steps": 4, "ckpt_every": 2, "val_every": 4})
    first = train(MODEL, cfg, pairs_dir, ckpt)
    too_big = cfg.model_copy(update={"patch_size": 4096})  # fails after claiming the folder
    with pytest.raises(ValueError, match="patch_size"):
        train(MODEL, too_big, pairs_dir, ckpt)
    with pytest.raises(KeyError, match="unet9000"):
        train(MODEL.model_copy(update={"type": "unet9000"}), cfg, pairs_dir, ckpt)
    assert complete_checkpoints(ckpt) == []
    (aside,) = set_aside_dirs(ckpt)  # the same set, moved once, never deleted
    assert [s for s, _ in complete_checkpoints(aside)] == [2, 4]
    again = train(MODEL, cfg, pairs_dir, ckpt)
    assert again.resumed_from == 4 and weights_equal(again.model, first.model)

    # a new config's first save prunes all but the last KEEP_PREVIOUS set-aside sets
    other = cfg.model_copy(update={"lr": 1e-3})
    third = cfg.model_copy(update={"lr": 3e-4})
    train(MODEL, other, pairs_dir, ckpt)
    assert len(set_aside_dirs(ckpt)) == 1
    train(MODEL, third, pairs_dir, ckpt)
    assert len(set_aside_dirs(ckpt)) == KEEP_PREVIOUS == 1
    assert [s for s, _ in complete_checkpoints(ckpt)] == [2, 4]


def test_fingerprint_covers_config_and_pairs(pairs_dir: Path, tmp_path: Path) -> None:
    jsonl = tmp_path / "pairs.jsonl"
    jsonl.write_bytes((pairs_dir / "train" / "pairs.jsonl").read_bytes())
    base = run_fingerprint(MODEL, BASE, jsonl, None, 1)
    assert run_fingerprint(MODEL, BASE.model_copy(update={"log_every": 1}), jsonl, None, 1) == base
    assert run_fingerprint(MODEL, BASE.model_copy(update={"steps": 41}), jsonl, None, 1) != base
    assert run_fingerprint(MODEL.model_copy(update={"width": 16}), BASE, jsonl, None, 1) != base
    assert run_fingerprint(MODEL, BASE, jsonl, None, 2) != base
    jsonl.write_bytes(jsonl.read_bytes()[:-200])
    changed = run_fingerprint(MODEL, BASE, jsonl, None, 1)
    assert changed["config"] == base["config"] and changed["train_pairs"] != base["train_pairs"]

    ckpt = tmp_path / "ckpt"
    assert not claim_checkpoint_dir(ckpt, base)  # empty folder: nothing to resume
    (ckpt / "checkpoint-4").mkdir()
    assert claim_checkpoint_dir(ckpt, base) and (ckpt / "checkpoint-4").exists()
    assert not claim_checkpoint_dir(ckpt, changed) and not (ckpt / "checkpoint-4").exists()
    (aside,) = set_aside_dirs(ckpt)
    assert (aside / "checkpoint-4").is_dir()
    assert json.loads((aside / "fingerprint.json").read_text()) == base
    assert claim_checkpoint_dir(ckpt, base) and (ckpt / "checkpoint-4").is_dir()
    assert set_aside_dirs(ckpt) == []
