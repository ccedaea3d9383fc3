"""Validation (girml.training.validation): PSNR-Y of inputs and outputs, per family."""

from __future__ import annotations

from pathlib import Path

import pytest
from torch import nn

from girml.training.data import load_pairs
from girml.training.validation import validate

pytestmark = pytest.mark.usefixtures("single_thread")


def test_load_pairs_and_validate(pairs_dir: Path) -> None:
    val = load_pairs(pairs_dir / "val" / "pairs.jsonl")
    assert len(val) == 6
    assert all(g.shape == q.shape == (32, 32, 3) for g, q in zip(val.gt, val.lq, strict=True))
    metrics, per_family = validate(nn.Identity(), val, batch_size=4)
    assert metrics["val.psnr_gain"] == pytest.approx(0.0, abs=1e-12)  # identity restores nothing
    assert sum(f["n"] for f in per_family.values()) == 6
    assert set(per_family) == set(val.families)
    weighted = sum(f["psnr_y_input"] * f["n"] for f in per_family.values()) / 6
    assert weighted == pytest.approx(metrics["val.psnr_y_input"])
    with pytest.raises(FileNotFoundError, match="pairs file not found"):
        load_pairs(pairs_dir / "nope" / "pairs.jsonl")
