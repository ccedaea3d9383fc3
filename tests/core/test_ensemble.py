"""girml.core.ensemble: the geometric self-ensemble (flips and transposes, mapped back,
averaged)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from girml.config import ModelConfig
from girml.core.ensemble import SELF_ENSEMBLE_SIZES, SelfEnsemble, view, with_self_ensemble
from girml.core.inference import restore_image
from girml.models import build_model


class _Ramp(nn.Module):
    """Adds a left-to-right ramp: not flip-equivariant, so the views disagree."""

    size_multiple = 4

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + torch.linspace(0, 0.2, x.shape[-1])


class _BatchSizes(nn.Module):
    """Wraps a model and records the batch size of every call."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner
        self.sizes: list[int] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.sizes.append(x.shape[0])
        return self.inner(x)


def test_each_view_is_undone_by_its_inverse() -> None:
    x = torch.rand(2, 3, 5, 7, generator=torch.Generator().manual_seed(0))
    shapes = set()
    for t in range(8):
        forward = view(x, t, forward=True)
        shapes.add(tuple(forward.shape))
        assert torch.equal(view(forward, t, forward=False), x)
    assert shapes == {(2, 3, 5, 7), (2, 3, 7, 5)}  # bit 2 transposes
    flips = [view(x, t, forward=True) for t in range(4)]
    assert all(not torch.equal(flips[a], flips[b]) for a in range(4) for b in range(a))


@pytest.mark.parametrize("n", SELF_ENSEMBLE_SIZES)
def test_self_ensemble_maps_each_view_back(n: int, image: torch.Tensor) -> None:
    identity = with_self_ensemble(nn.Identity(), n)
    assert torch.allclose(identity(image), image)  # every view undone exactly
    ramp = with_self_ensemble(_Ramp(), n)
    out = ramp(torch.zeros(1, 3, 6, 8))
    if n == 1:
        assert ramp.__class__ is _Ramp and out[0, 0, 0, -1] == pytest.approx(0.2)
    else:  # the ramp and its mirror average to a constant: what the views agree on survives
        assert torch.allclose(out, torch.full_like(out, 0.1))


def test_self_ensemble_averages_a_real_network_and_tiles_like_it(
    nafnet: nn.Module, image: torch.Tensor
) -> None:
    plus = with_self_ensemble(nafnet, 8)
    assert isinstance(plus, SelfEnsemble) and not plus.training
    assert plus.size_multiple == nafnet.size_multiple
    whole = restore_image(plus, image, None, 0)
    assert not torch.allclose(whole, restore_image(nafnet, image, None, 0))
    tiled = restore_image(plus, image, 64, 16)  # the tiled path reads size_multiple
    assert tiled.shape == whole.shape and (tiled - whole).abs().mean() < 0.02
    with pytest.raises(ValueError, match=r"one of \(1, 2, 4, 8\), got 3"):
        with_self_ensemble(nafnet, 3)


def test_self_ensemble_keeps_the_training_mode(nafnet: nn.Module) -> None:
    training = build_model(ModelConfig(width=4, enc_blocks=[1], middle_blocks=0)).train()
    assert with_self_ensemble(training, 2).training
    assert not with_self_ensemble(nafnet, 2).training
    assert with_self_ensemble(nafnet, 1) is nafnet


def test_self_ensemble_batches_views_of_one_shape(nafnet: nn.Module) -> None:
    probe = _BatchSizes(nafnet)
    plus = SelfEnsemble(probe, 8)
    for shape, batches in (((1, 3, 32, 32), [8]), ((2, 3, 24, 40), [8, 8])):
        x = torch.rand(shape)
        probe.sizes.clear()
        with torch.inference_mode():
            out = plus(x)
            one_at_a_time = sum(
                view(nafnet(view(x, t, forward=True)), t, forward=False) for t in range(8)
            )
        assert probe.sizes == batches  # 4 views x 2 images per batch
        torch.testing.assert_close(out, one_at_a_time / 8, rtol=0, atol=1e-5)
    probe.sizes.clear()
    with torch.inference_mode():
        plus(torch.rand(1, 3, 512, 512))  # too big to batch: one view at a time
    assert probe.sizes == [1] * 8
