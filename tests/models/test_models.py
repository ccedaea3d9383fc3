"""The architecture registry (girml/models/__init__.py): ``build_model`` by ``model.type``,
``model_stats``, and what every registered architecture does (seeded, learns to denoise)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from girml.config import ModelConfig
from girml.models import ARCHS, build_model, model_stats
from tests.models.common import ARCH_NAMES, smooth_images, tiny_cfg

pytestmark = pytest.mark.usefixtures("single_thread")


# --------------------------------------------------------------------------- registry / build


def test_registry_lists_all_architectures() -> None:
    assert ARCHS.names() == ARCH_NAMES
    assert "arXiv 2204.04676" in ARCHS.meta("nafnet")["paper"]


def test_unknown_type_lists_available_names() -> None:
    with pytest.raises(KeyError, match=r"unknown architecture 'unet'.*nafnet.*plain_cnn"):
        build_model(ModelConfig(type="unet"))


@pytest.mark.parametrize("arch", ARCH_NAMES)
def test_same_seed_same_model(arch: str) -> None:
    x = torch.rand(1, 3, 20, 24)
    outs = []
    for _ in range(2):
        torch.manual_seed(3)
        outs.append(build_model(tiny_cfg(arch))(x))
    torch.testing.assert_close(outs[0], outs[1], rtol=0, atol=0)


# --------------------------------------------------------------------------- stats


@pytest.mark.parametrize("arch", ARCH_NAMES)
def test_model_stats_positive_and_flops_scale_with_area(arch: str) -> None:
    model = build_model(tiny_cfg(arch))
    small = model_stats(model, 64, 64)
    large = model_stats(model, 128, 128)
    assert small["params"] == sum(p.numel() for p in model.parameters()) > 0
    assert small["flops"] > 0
    assert large["params"] == small["params"]
    assert 3.8 < large["flops"] / small["flops"] <= 4.0


def test_model_stats_counts_two_flops_per_multiply_add() -> None:
    width, blocks, side = 8, 2, 16
    model = build_model(tiny_cfg("plain_cnn", width=width, plain_blocks=blocks))
    macs_per_pixel = 27 * width + blocks * 2 * 9 * width * width + 9 * width * 3
    assert model_stats(model, side, side)["flops"] == 2 * macs_per_pixel * side * side


def test_model_stats_rejects_bad_size() -> None:
    with pytest.raises(ValueError, match="got 0x8"):
        model_stats(build_model(tiny_cfg("plain_cnn")), 0, 8)


# --------------------------------------------------------------------------- training


@pytest.mark.parametrize("arch", ARCH_NAMES)
def test_tiny_model_learns_to_denoise(arch: str) -> None:
    torch.manual_seed(0)
    model = build_model(tiny_cfg(arch))
    clean = smooth_images(4, 32, 32, seed=7)
    noise = torch.randn(clean.shape, generator=torch.Generator().manual_seed(8))
    noisy = clean + 0.15 * noise
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3)
    losses = []
    for _ in range(30):
        loss = F.l1_loss(model(noisy), clean)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.7 * losses[0], losses
