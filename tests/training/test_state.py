"""The checkpointed state besides the model (girml.training.state): the EMA of the weights."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from girml.training.state import EMA


def test_ema_tracks_the_model() -> None:
    model = nn.Linear(3, 3)
    ema = EMA(model, decay=0.99)
    with torch.no_grad():
        model.weight.add_(1.0)
    before = ema.module.weight.clone()
    ema.update(model)  # first update: warm-up decay 2/11, mostly the new weights
    expected = before + (model.weight - before) * (1 - 2 / 11)
    torch.testing.assert_close(ema.module.weight, expected)
    assert not ema.module.weight.requires_grad
    restored = EMA(nn.Linear(3, 3), decay=0.99)
    restored.load_state_dict(ema.state_dict())
    assert restored.num_updates == 1 and torch.equal(restored.module.weight, ema.module.weight)
    with pytest.raises(ValueError, match="decay must be in"):
        EMA(model, decay=1.0)
