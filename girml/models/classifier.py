"""A small degradation classifier: which family (or ``clean``) an image shows.

The routed approach of the study (``girml/evaluation/approaches.py``) uses it to pick a
specialist or a classical method per image, with no label at test time.
"""

from __future__ import annotations

import itertools

import torch
from torch import Tensor, nn


class DegradationClassifier(nn.Module):
    """Four strided 3x3 convolutions, then the channels' mean, max and standard deviation over
    the whole image (any size) into a linear layer: one logit per class.

    Args:
        num_classes: classes, >= 2.
        width: channels of the first convolution (doubling once, then kept).
    """

    def __init__(self, num_classes: int, width: int = 16) -> None:
        super().__init__()
        if num_classes < 2:
            raise ValueError(f"num_classes must be >= 2, got {num_classes}")
        if width < 1:
            raise ValueError(f"width must be >= 1, got {width}")
        chans = [3, width, 2 * width, 4 * width, 4 * width]
        layers: list[nn.Module] = []
        for cin, cout in itertools.pairwise(chans):
            layers += [nn.Conv2d(cin, cout, 3, stride=2, padding=1), nn.GELU()]
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(3 * chans[-1] + 6, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        """(B,3,H,W) in [0,1] -> (B, num_classes) logits."""
        if x.ndim != 4 or x.shape[1] != 3:
            raise ValueError(f"expected (B,3,H,W), got shape {tuple(x.shape)}")
        f = self.features(x * 2 - 1)
        pooled = [f.mean(dim=(2, 3)), f.amax(dim=(2, 3)), f.std(dim=(2, 3), correction=0)]
        # the input's own brightness and spread: exposure and haze cues the convolutions,
        # which start from a centred input, see only through their biases
        stats = [x.mean(dim=(2, 3)), x.std(dim=(2, 3), correction=0)]
        return self.head(torch.cat([*pooled, *stats], dim=1))
