"""What the training tests share: the tiny model and run, and helpers to compare and make pairs."""

from __future__ import annotations

import torch
from torch import nn

from girml.config import ModelConfig, TrainConfig
from girml.training.data import PairSet
from tests.factories import textured_image

MODEL = ModelConfig(type="nafnet", width=8, enc_blocks=[1], middle_blocks=1)
BASE = TrainConfig(
    seed=3,
    steps=40,
    batch_size=4,
    patch_size=16,
    lr=2e-3,
    warmup_steps=5,
    ema_decay=0.9,
    val_every=20,
    ckpt_every=10,
    log_every=10,
    num_workers=0,
    # the plain loop these tests were written for (params.yaml's defaults switch these on)
    loss="charbonnier",
    online_degradation_prob=0.0,
    clean_prob=0.0,
    channels_last=False,
    num_threads=0,
)


def weights_equal(a: nn.Module, b: nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def identity_pairs(n: int = 6, size: int = 40) -> PairSet:
    """Pairs whose LQ is the pixelwise inverse of the GT, to check alignment."""
    gts = tuple(textured_image(i, size, size + 8) for i in range(n))
    return PairSet(
        ids=tuple(f"p{i}" for i in range(n)),
        families=tuple("noise" if i % 2 else "blur" for i in range(n)),
        gt=gts,
        lq=tuple(255 - gt for gt in gts),
    )
