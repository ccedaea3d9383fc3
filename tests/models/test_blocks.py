"""The base of every architecture (girml/models/blocks.py: ``RestorationNet``): any input size
through padding to ``size_multiple`` and cropping back, a global residual, and the (B,3,H,W)
check, directly and through each registered architecture."""

from __future__ import annotations

import pytest
import torch

from girml.models import build_model
from girml.models.blocks import RestorationNet
from tests.models.common import ARCH_NAMES, activate_blocks, tiny_cfg

pytestmark = pytest.mark.usefixtures("single_thread")


class Offset(RestorationNet):
    """Residual = a constant 0.25, recording the shapes ``residual`` is called with."""

    size_multiple = 8

    def __init__(self) -> None:
        super().__init__()
        self.shapes: list[tuple[int, ...]] = []

    def residual(self, x: torch.Tensor) -> torch.Tensor:
        self.shapes.append(tuple(x.shape))
        return torch.full_like(x, 0.25)


def test_residual_sees_a_padded_multiple_and_the_output_is_cropped_back() -> None:
    model = Offset()
    x = torch.rand(2, 3, 13, 17)
    out = model(x)
    assert model.shapes == [(2, 3, 16, 24)]  # padded up to the next multiple of 8
    assert out.shape == x.shape
    torch.testing.assert_close(out, x + 0.25, rtol=0, atol=0)  # input + residual, not clamped


def test_an_abstract_net_cannot_be_built() -> None:
    with pytest.raises(TypeError, match="residual"):
        RestorationNet()  # type: ignore[abstract]


@pytest.mark.parametrize("arch", ARCH_NAMES)
@pytest.mark.parametrize("shape", [(1, 3, 37, 53), (2, 3, 16, 16), (1, 3, 1, 3)])
def test_forward_any_size(arch: str, shape: tuple[int, int, int, int]) -> None:
    torch.manual_seed(0)
    model = build_model(tiny_cfg(arch))
    activate_blocks(model)
    out = model(torch.rand(shape))
    assert out.shape == shape
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("arch", ARCH_NAMES)
def test_bad_input_shape_rejected(arch: str) -> None:
    model = build_model(tiny_cfg(arch))
    with pytest.raises(ValueError, match=r"\(B,3,H,W\).*\(1, 4, 8, 8\)"):
        model(torch.rand(1, 4, 8, 8))
    with pytest.raises(ValueError, match=r"\(3, 8, 8\)"):
        model(torch.rand(3, 8, 8))
