"""The degradation-aware NAFNet (girml/models/prompt.py): prompts mixed by input-dependent
weights, FiLM that starts as the identity, so a fresh model is exactly the plain NAFNet."""

from __future__ import annotations

import pytest
import torch

from girml.models import build_model
from girml.models.prompt import PromptNAFNet
from tests.models.common import activate_blocks, smooth_images, tiny_cfg

pytestmark = pytest.mark.usefixtures("single_thread")


def test_one_prompt_block_per_level_and_the_unet_multiple() -> None:
    model = build_model(tiny_cfg("prompt_nafnet", enc_blocks=[1, 1], prompt_len=5))
    assert isinstance(model, PromptNAFNet)
    assert model.size_multiple == 4  # two levels
    assert [tuple(block.prompts.shape) for block in model.prompts] == [
        (5, 8, 16, 16),
        (5, 16, 8, 8),
    ]


def test_fresh_prompt_nafnet_equals_nafnet_then_diverges() -> None:
    """FiLM conv is zero-initialised: a fresh prompt model computes exactly the plain U-Net."""
    x = smooth_images(2, 24, 24, seed=1)
    torch.manual_seed(5)
    plain = build_model(tiny_cfg("nafnet"))
    torch.manual_seed(5)
    prompted = build_model(tiny_cfg("prompt_nafnet"))
    assert isinstance(prompted, PromptNAFNet)
    for model in (plain, prompted):  # same "trained" U-Net weights in both
        torch.manual_seed(6)
        activate_blocks(model)
    torch.testing.assert_close(prompted(x), plain(x), rtol=0, atol=1e-6)
    with torch.no_grad():
        for block in prompted.prompts:
            block.film.weight.normal_(0.0, 0.1)
    assert (prompted(x) - plain(x)).abs().max() > 1e-3


def test_prompt_weights_are_input_dependent_distributions() -> None:
    torch.manual_seed(0)
    model = build_model(tiny_cfg("prompt_nafnet", prompt_len=4))
    clean = smooth_images(1, 32, 32, seed=2)
    noisy = clean + 0.3 * torch.randn(clean.shape, generator=torch.Generator().manual_seed(0))
    weights = model.prompt_weights(torch.cat([clean, noisy.clamp(0, 1)]))
    assert [tuple(w.shape) for w in weights] == [(2, 4), (2, 4)]
    for w in weights:
        torch.testing.assert_close(w.sum(dim=1), torch.ones(2))
        assert (w > 0).all()
    assert (weights[0][0] - weights[0][1]).abs().max() > 1e-4
    assert all(len(block._forward_pre_hooks) == 0 for block in model.prompts)
