"""girml.degradations.ops: the op registry's contract (every op validated, clamped, pure) and the
shared kernel helpers."""

from __future__ import annotations

import math
from typing import Any

import pytest
import torch

from girml.degradations import OPS, apply_kernel
from girml.degradations.ops import kernel_grid, kernel_size, luminance
from tests.degradations.common import VALID, run, textured

# One out-of-domain value per op: (param, value); the message must contain the value.
INVALID: dict[str, tuple[str, Any]] = {
    "gaussian_noise": ("sigma", -1.0),
    "poisson_noise": ("scale", 0.25),
    "speckle_noise": ("sigma", 300.0),
    "gaussian_blur": ("sigma", -2.5),
    "aniso_gaussian_blur": ("sigma_y", 0.0),
    "generalized_gaussian_blur": ("beta", 12.5),
    "motion_blur": ("length", 0.5),
    "defocus_blur": ("radius", 99.0),
    "resize": ("down_mode", "lanczos"),
    "downsample": ("scale", 0.5),
    "jpeg": ("quality", 101),
    "rain": ("intensity", 1.5),
    "haze": ("A", -0.25),
    "low_light": ("exposure", 2.5),
}
RANDOM_OPS = sorted(op for op in OPS if OPS.meta(op)["random"])


def test_every_op_has_test_arguments() -> None:
    assert sorted(VALID) == OPS.names() == sorted(INVALID)


@pytest.mark.parametrize("op", sorted(VALID))
def test_op_smoke_shape_range(op: str) -> None:
    image = textured()
    out = run(op, image)
    expected = (2, 3, round(37 / 4), round(53 / 4)) if op == "downsample" else image.shape
    assert out.shape == expected
    assert out.dtype == torch.float32
    assert float(out.min()) >= 0.0 and float(out.max()) <= 1.0
    if op != "downsample":
        assert not torch.equal(out, image)


@pytest.mark.parametrize("op", sorted(VALID))
def test_op_is_deterministic_and_pure(op: str) -> None:
    image = textured(1)
    before = image.clone()
    assert torch.equal(run(op, image), run(op, image))
    assert torch.equal(image, before), "ops must not modify their input"


@pytest.mark.parametrize("op", RANDOM_OPS)
def test_random_op_depends_on_seed(op: str) -> None:
    image = textured(2)
    assert not torch.equal(run(op, image, seed=1), run(op, image, seed=2))


@pytest.mark.parametrize("op", sorted(INVALID))
def test_op_rejects_out_of_domain_value(op: str) -> None:
    param, value = INVALID[op]
    with pytest.raises(ValueError, match=op) as info:
        run(op, textured(), **{param: value})
    assert repr(value) in str(info.value)


@pytest.mark.parametrize(
    ("op", "override", "error", "fragment"),
    [
        ("jpeg", {"quality": 50.5}, TypeError, "50.5"),
        ("gaussian_noise", {"sigma": "25"}, TypeError, "'25'"),
        ("gaussian_noise", {"gray": 2}, TypeError, "2"),
        ("gaussian_noise", {"sigma": math.nan}, ValueError, "nan"),
        ("gaussian_noise", {"seed": -3}, ValueError, "-3"),
        ("gaussian_noise", {"seed": 1.5}, TypeError, "1.5"),
        ("gaussian_blur", {"radius": 1.0}, TypeError, "radius"),
    ],
)
def test_op_rejects_bad_types(
    op: str, override: dict[str, Any], error: type[Exception], fragment: str
) -> None:
    with pytest.raises(error, match=op) as info:
        run(op, textured(), **override)
    assert fragment in str(info.value)


def test_missing_seed_and_bad_image_are_rejected() -> None:
    with pytest.raises(TypeError, match="seed"):
        OPS.get("gaussian_noise")(textured(), sigma=10.0)
    with pytest.raises(ValueError, match=r"\(3, 8, 8\)"):
        run("gaussian_blur", torch.rand(3, 8, 8))
    with pytest.raises(TypeError, match=r"torch\.uint8"):
        run("gaussian_blur", torch.zeros(1, 3, 8, 8, dtype=torch.uint8))
    with pytest.raises(ValueError, match="channels, got 4"):
        run("jpeg", torch.rand(1, 4, 8, 8))
    with pytest.raises(ValueError, match="no pixels"):
        run("downsample", torch.rand(1, 3, 4, 4), scale=10.0)


def test_registry_unknown_op_lists_available() -> None:
    with pytest.raises(KeyError, match="gaussian_noise") as info:
        OPS.get("gausian_noise")
    assert "motion_blur" in str(info.value)


def test_flag_accepts_zero_one() -> None:
    image = textured()
    assert torch.equal(
        run("gaussian_noise", image, gray=1), run("gaussian_noise", image, gray=True)
    )


def test_apply_kernel_delta_is_the_identity_and_box_averages() -> None:
    image = textured(14, (2, 3, 9, 11))
    delta = torch.zeros(5, 5, dtype=torch.float64)
    delta[2, 2] = 1.0
    torch.testing.assert_close(apply_kernel(image, delta), image)
    box = torch.full((3, 3), 1 / 9, dtype=torch.float64)
    out = apply_kernel(image, box, padding="constant")
    assert out.shape == image.shape and out.dtype == image.dtype
    torch.testing.assert_close(out[..., 4, 5], image[..., 3:6, 4:7].mean(dim=(-2, -1)))
    tiny = apply_kernel(textured(15, (1, 1, 2, 2)), delta)  # smaller than the kernel's reach
    assert tiny.shape == (1, 1, 2, 2)
    with pytest.raises(ValueError, match=r"odd side, got \(4, 4\)"):
        apply_kernel(image, torch.ones(4, 4))
    with pytest.raises(ValueError, match="got 'circular'"):
        apply_kernel(image, box, padding="circular")


def test_kernel_helpers() -> None:
    assert [kernel_size(r) for r in (0.0, 0.2, 2.0, 2.5, 100.0)] == [1, 3, 5, 7, 41]
    xx, yy = kernel_grid(3)
    assert xx.tolist() == [[-1, 0, 1]] * 3 and yy.tolist() == [[-1] * 3, [0] * 3, [1] * 3]


def test_luminance_weights_colour_and_averages_other_channels() -> None:
    rgb = torch.zeros(1, 3, 2, 2)
    rgb[:, 1] = 1.0  # pure green
    luma = luminance(rgb)
    assert luma.shape == (1, 1, 2, 2)
    assert float(luma[0, 0, 0, 0]) == pytest.approx(0.587, abs=1e-3)  # BT.601 green weight
    assert float(luminance(torch.ones(1, 3, 2, 2)).max()) == pytest.approx(1.0)
    two = torch.stack([torch.zeros(2, 2), torch.ones(2, 2)])[None]
    assert torch.equal(luminance(two), torch.full((1, 1, 2, 2), 0.5))
