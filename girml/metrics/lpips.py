"""LPIPS (Zhang et al. 2018), AlexNet v0.1, computed only when its weights are available locally.

The network is implemented here in plain torch and loaded from ONE ``state_dict`` file (a dict
of tensors saved with ``torch.save``) that holds exactly these keys:

- ``features.{0,3,6,8,10}.weight`` and ``features.{0,3,6,8,10}.bias``: the five convolutions
  of torchvision's ImageNet AlexNet ``features`` stack, under torchvision's own names;
- ``lin{0..4}.model.1.weight``: the five 1x1 linear heads of LPIPS v0.1 (``alex.pth`` of the
  ``lpips`` package), shapes (1, C, 1, 1) for C = 64, 192, 384, 256, 256.

Such a file is the union of the two published state dicts, for example
``{k: v for k, v in alexnet.state_dict().items() if k.startswith("features.")} | lin_weights``.
Nothing is ever downloaded: without a configured path :func:`load_lpips` returns ``None`` and
the caller reports ``lpips: not computed (no weights configured)``.
"""

from __future__ import annotations

import pickle
import zipfile
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from girml.core.imageio import to_tensor
from girml.metrics.fidelity import check_rgb_uint8

CHANNELS = (64, 192, 384, 256, 256)
MIN_SIDE = 31  # smallest input for which the second max-pool still has a 3x3 window
# LPIPS' ScalingLayer: ImageNet statistics expressed for inputs in [-1, 1].
_SHIFT = (-0.030, -0.088, -0.188)
_SCALE = (0.458, 0.448, 0.450)
_EPS = 1e-10


def _alexnet_features() -> nn.Sequential:
    """torchvision's AlexNet ``features`` up to relu5 (indices, hence state_dict keys, kept)."""
    return nn.Sequential(
        nn.Conv2d(3, 64, kernel_size=11, stride=4, padding=2),
        nn.ReLU(),
        nn.MaxPool2d(kernel_size=3, stride=2),
        nn.Conv2d(64, 192, kernel_size=5, padding=2),
        nn.ReLU(),
        nn.MaxPool2d(kernel_size=3, stride=2),
        nn.Conv2d(192, 384, kernel_size=3, padding=1),
        nn.ReLU(),
        nn.Conv2d(384, 256, kernel_size=3, padding=1),
        nn.ReLU(),
        nn.Conv2d(256, 256, kernel_size=3, padding=1),
        nn.ReLU(),
    )


class _LinearHead(nn.Module):
    """LPIPS ``NetLinLayer``: dropout (inactive in eval) then a bias-free 1x1 convolution."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.model = nn.Sequential(nn.Dropout(), nn.Conv2d(channels, 1, 1, bias=False))

    def forward(self, x: Tensor) -> Tensor:
        return self.model(x)


class LpipsMetric(nn.Module):
    """AlexNet-LPIPS v0.1 distance; build it with :func:`load_lpips`.

    ``forward(x, y)`` takes (B,3,H,W) float tensors in [0,1] (H, W >= 31) and returns (B,)
    distances (0 for identical images, larger is more different); :meth:`score` takes uint8
    images.
    """

    def __init__(self) -> None:
        super().__init__()
        self.features = _alexnet_features()
        self.lin0, self.lin1, self.lin2, self.lin3, self.lin4 = (_LinearHead(c) for c in CHANNELS)
        self.register_buffer("shift", torch.tensor(_SHIFT).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("scale", torch.tensor(_SCALE).view(1, 3, 1, 1), persistent=False)

    def _taps(self, x: Tensor) -> list[Tensor]:
        """Unit-normalised (along channels) relu1..relu5 activations."""
        h = (2.0 * x - 1.0 - self.shift) / self.scale
        taps = []
        for i, layer in enumerate(self.features):
            h = layer(h)
            if i in (1, 4, 7, 9, 11):
                taps.append(h / (h.pow(2).sum(dim=1, keepdim=True).sqrt() + _EPS))
        return taps

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        for name, t in (("x", x), ("y", y)):
            if t.ndim != 4 or t.shape[1] != 3 or min(t.shape[2:]) < MIN_SIDE:
                raise ValueError(
                    f"lpips: {name} must have shape (B,3,H,W) with H, W >= {MIN_SIDE}, "
                    f"got {tuple(t.shape)}"
                )
        if x.shape != y.shape:
            raise ValueError(f"lpips needs equal shapes, got {tuple(x.shape)} and {tuple(y.shape)}")
        heads = (self.lin0, self.lin1, self.lin2, self.lin3, self.lin4)
        total = torch.zeros(x.shape[0], dtype=x.dtype, device=x.device)
        for head, fx, fy in zip(heads, self._taps(x), self._taps(y), strict=True):
            total = total + head((fx - fy) ** 2).mean(dim=(1, 2, 3))
        return total

    @torch.no_grad()
    def score(self, a: np.ndarray, b: np.ndarray) -> float:
        """LPIPS distance between two (H, W, 3) uint8 images of the same shape (H, W >= 31)."""
        x = to_tensor(check_rgb_uint8("lpips image a", a))
        y = to_tensor(check_rgb_uint8("lpips image b", b))
        device = self.shift.device
        return float(self(x.to(device), y.to(device))[0])


def load_lpips(path: Path | None) -> LpipsMetric | None:
    """The LPIPS metric from a local weights file, or ``None`` when no path is configured.

    Args:
        path: ``state_dict`` file with the keys listed in the module docstring, or ``None``.

    Returns:
        An :class:`LpipsMetric` in eval mode on the CPU, or ``None`` for ``path=None``.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: the file is unreadable, not a state dict, or has missing/unexpected keys or
            wrong shapes (the message names the path).
    """
    if path is None:
        return None
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"LPIPS weights not found: {path}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, OSError, EOFError, pickle.UnpicklingError, zipfile.BadZipFile) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ValueError(f"{path}: unreadable LPIPS weights ({reason})") from None
    if not isinstance(state, dict) or not all(isinstance(v, Tensor) for v in state.values()):
        raise ValueError(f"{path}: LPIPS weights must be a state_dict of tensors")
    metric = LpipsMetric()
    try:
        metric.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise ValueError(f"{path}: not AlexNet-LPIPS v0.1 weights: {exc}") from None
    return metric.eval()
