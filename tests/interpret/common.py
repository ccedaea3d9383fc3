"""What the interpretation tests share: the tiny model and config, and synthetic samples."""

from __future__ import annotations

import base64
import re
from pathlib import Path

import torch

from girml.config import InterpretConfig, ModelConfig
from girml.evaluation.bench import BenchItem
from girml.interpret.inputs import Sample
from girml.models import build_model
from tests.factories import textured_image

TINY = ModelConfig(width=4, enc_blocks=[1], middle_blocks=0)
CFG = InterpretConfig(
    images_per_group=3,
    tsne_perplexity=5,
    lam_window=8,
    lam_steps=8,
    lam_images_per_family=1,
    sensitivity_levels=4,
    sensitivity_images=2,
    comparisons_per_family=1,
)
XSS = "<script>alert('x')</script> & \"q\""


def nonlinear_tiny_model(seed: int = 0) -> torch.nn.Module:
    """A tiny NAFNet that is not the identity (its last conv starts at zero) and whose blocks
    are active (beta = gamma = 0 makes a fresh one linear)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng():  # the default init draws from the global RNG
        torch.manual_seed(seed)
        model = build_model(TINY)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if name.endswith(("beta", "gamma", "ending.weight")):
                param.copy_(0.5 * torch.randn(param.shape, generator=gen))
    return model.eval()


def data_uri_images(page: str) -> list[bytes]:
    """The PNG bytes of every ``data:`` image of an HTML page."""
    return [base64.b64decode(m) for m in re.findall(r'src="data:image/png;base64,([^"]+)"', page)]


def make_sample(
    suite: str,
    family: str,
    index: int,
    gain: float = 0.0,
    category: str = "cat0",
    size: int = 16,
) -> Sample:
    """A synthetic :class:`Sample`: a textured ground truth, its input and output alike, and
    PSNR scores whose difference is ``gain`` (no model run, no file read)."""
    gt = textured_image(index, size, size)
    item = BenchItem(suite, family, f"{index:03d}", f"src{index}", "id", Path("lq.png"), None)
    return Sample(item, category, gt.copy(), gt, gt.copy(), 16.0, 16.0 + gain)
