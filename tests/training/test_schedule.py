"""The optimizer and learning-rate schedule (girml.training.schedule): warm-up, cosine, floor."""

from __future__ import annotations

import numpy as np
import pytest
from torch import nn

from girml.config import TrainConfig
from girml.training.schedule import build_optimizer, build_scheduler, lr_factor


def test_schedule_warms_up_then_decays_to_the_floor() -> None:
    cfg = TrainConfig(steps=100, warmup_steps=10, lr=1e-3, min_lr_ratio=0.05)
    optimizer = build_optimizer(nn.Linear(2, 2), cfg)
    scheduler = build_scheduler(optimizer, cfg)
    lrs = []
    for _ in range(cfg.steps + 1):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    assert lrs[0] == pytest.approx(1e-3 / 11)
    assert np.all(np.diff(lrs[:11]) > 0)  # warm-up rises ...
    assert lrs[10] == pytest.approx(1e-3)  # ... to the peak
    assert np.all(np.diff(lrs[10:]) <= 1e-15)  # cosine only decays
    assert lrs[55] == pytest.approx(1e-3 * (0.05 + 0.95 * 0.5))  # half way: the midpoint
    assert lrs[100] == pytest.approx(5e-5)  # the floor
    assert lr_factor(500, 10, 100, 0.05) == pytest.approx(0.05)
    assert lr_factor(0, 0, 1, 0.0) == 1.0
    with pytest.raises(ValueError, match="step must be >= 0, got -1"):
        lr_factor(-1, 10, 100, 0.05)
    with pytest.raises(ValueError, match="min_lr_ratio must be in"):
        lr_factor(1, 10, 100, 1.5)
