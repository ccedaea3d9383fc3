"""Tests for girml.degradations: ops (contract + properties), recipes and the sampler."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
import torch

from girml.config import DegradationsConfig
from girml.degradations import (
    OPS,
    Recipe,
    Step,
    apply_recipe,
    check_spec,
    param_bounds,
    sample_recipe,
    sample_step,
    sample_train_recipe,
)
from girml.degradations.blur import gaussian_kernel
from girml.degradations.sampler import SECOND_ORDER_FAMILIES

# One valid argument set per op (seed added for random ops).
VALID: dict[str, dict[str, Any]] = {
    "gaussian_noise": {"sigma": 25.0, "gray": False},
    "poisson_noise": {"scale": 30.0, "gray": True},
    "speckle_noise": {"sigma": 20.0},
    "gaussian_blur": {"sigma": 2.0},
    "aniso_gaussian_blur": {"sigma_x": 3.0, "sigma_y": 1.0, "theta": 0.5},
    "generalized_gaussian_blur": {"sigma": 2.0, "beta": 4.0},
    "motion_blur": {"length": 12.0},
    "defocus_blur": {"radius": 3.0},
    "resize": {"scale": 3.0, "down_mode": "area", "up_mode": "bicubic"},
    "downsample": {"scale": 4.0, "mode": "bicubic"},
    "jpeg": {"quality": 20},
    "rain": {"count": 80.0, "length": 15.0, "width": 1.5, "angle": 10.0, "intensity": 0.8},
    "haze": {"A": 0.9, "beta": 1.5},
    "low_light": {"gamma": 2.0, "exposure": 0.5, "noise_sigma": 5.0},
}
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


def kwargs_for(op: str, seed: int = 7) -> dict[str, Any]:
    params = dict(VALID[op])
    if OPS.meta(op)["random"]:
        params["seed"] = seed
    return params


def run(op: str, image: torch.Tensor, **override: Any) -> torch.Tensor:
    return OPS.get(op)(image, **{**kwargs_for(op), **override})


def flat(value: float, size: int = 64, channels: int = 3) -> torch.Tensor:
    return torch.full((1, channels, size, size), value)


def textured(seed: int = 0, shape: tuple[int, ...] = (2, 3, 37, 53)) -> torch.Tensor:
    return torch.rand(shape, generator=torch.Generator().manual_seed(seed))


def high_band_energy(image: torch.Tensor) -> float:
    """Spectral energy above half the Nyquist frequency (either axis)."""
    spectrum = torch.fft.fft2(image - image.mean(dim=(-2, -1), keepdim=True)).abs() ** 2
    fy = torch.fft.fftfreq(image.shape[-2]).abs().view(-1, 1)
    fx = torch.fft.fftfreq(image.shape[-1]).abs().view(1, -1)
    return float(spectrum[..., (fy > 0.25) | (fx > 0.25)].sum())


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(10 * torch.log10(1.0 / torch.mean((a - b) ** 2)))


# --------------------------------------------------------------------------- op contract


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


# --------------------------------------------------------------------------- noise


@pytest.mark.parametrize("gray", [False, True])
def test_gaussian_noise_std_matches_sigma(gray: bool) -> None:
    image = flat(0.5)
    noise = run("gaussian_noise", image, sigma=25.0, gray=gray) - image
    assert float(noise.std()) == pytest.approx(25.0 / 255.0, rel=0.05)
    assert abs(float(noise.mean())) < 0.01


def test_gray_noise_is_identical_across_channels() -> None:
    for op in ("gaussian_noise", "poisson_noise"):
        noise = run(op, flat(0.5), gray=True) - flat(0.5)
        assert torch.equal(noise[:, 0], noise[:, 1]) and torch.equal(noise[:, 1], noise[:, 2])
        assert not torch.equal(noise[:, 0], torch.zeros_like(noise[:, 0]))
    colour = run("gaussian_noise", flat(0.5), gray=False)
    assert not torch.equal(colour[:, 0], colour[:, 1])


@pytest.mark.parametrize(("level", "scale"), [(0.5, 50.0), (0.2, 20.0)])
def test_poisson_variance_is_level_over_scale(level: float, scale: float) -> None:
    image = flat(level, size=96)
    out = run("poisson_noise", image, scale=scale, gray=False)
    assert float(out.var()) == pytest.approx(level / scale, rel=0.08)
    assert float(out.mean()) == pytest.approx(level, abs=0.01)


def test_speckle_noise_scales_with_intensity() -> None:
    sigma = 30.0
    for level in (0.2, 0.6):
        noise = run("speckle_noise", flat(level), sigma=sigma) - flat(level)
        assert float(noise.std()) == pytest.approx(level * sigma / 255.0, rel=0.05)


# --------------------------------------------------------------------------- blur

BLURS = [
    "gaussian_blur",
    "aniso_gaussian_blur",
    "generalized_gaussian_blur",
    "motion_blur",
    "defocus_blur",
]


@pytest.mark.parametrize("op", BLURS)
def test_blur_removes_high_frequencies_and_keeps_flat(op: str) -> None:
    image = textured(3, (1, 3, 48, 48))
    assert high_band_energy(run(op, image)) < 0.2 * high_band_energy(image)
    assert torch.allclose(run(op, flat(0.4, 24)), flat(0.4, 24), atol=1e-6)


def test_gaussian_kernel_sums_to_one_and_is_capped() -> None:
    for sigma in (0.3, 1.0, 2.5, 10.0):
        kernel = gaussian_kernel(sigma)
        assert float(kernel.sum()) == pytest.approx(1.0, abs=1e-12)
        assert kernel.shape[0] % 2 == 1 and kernel.shape[0] <= 41
        assert torch.equal(kernel, kernel.flip(0)) and torch.equal(kernel, kernel.T)
    assert gaussian_kernel(10.0).shape == (41, 41)
    with pytest.raises(ValueError, match="-1"):
        gaussian_kernel(-1.0)


def test_stronger_blur_removes_more() -> None:
    image = textured(4, (1, 3, 48, 48))
    weak = high_band_energy(run("gaussian_blur", image, sigma=0.8))
    strong = high_band_energy(run("gaussian_blur", image, sigma=2.5))
    assert strong < weak


def test_aniso_blur_is_directional() -> None:
    impulse = torch.zeros(1, 1, 31, 31)
    impulse[..., 15, 15] = 1.0
    psf = run("aniso_gaussian_blur", impulse, sigma_x=3.0, sigma_y=0.5, theta=0.0)[0, 0]
    assert float(psf[15].sum()) > 3 * float(psf[:, 15].sum())  # spread along rows (x)


def test_blur_works_on_images_smaller_than_kernel() -> None:
    out = run("gaussian_blur", textured(5, (1, 3, 5, 7)), sigma=6.0)
    assert out.shape == (1, 3, 5, 7)


# --------------------------------------------------------------------------- resize


def test_resize_keeps_size_and_loses_high_frequencies() -> None:
    image = textured(6, (1, 3, 48, 48))
    for down in ("area", "bilinear", "bicubic"):
        out = run("resize", image, scale=3.0, down_mode=down, up_mode="bilinear")
        assert out.shape == image.shape
        assert high_band_energy(out) < 0.3 * high_band_energy(image)


def test_downsample_output_size() -> None:
    image = textured(7, (2, 3, 37, 53))
    for scale in (1.0, 2.0, 2.5, 3.7):
        out = run("downsample", image, scale=scale)
        assert out.shape == (2, 3, round(37 / scale), round(53 / scale))


# --------------------------------------------------------------------------- jpeg


def test_jpeg_quality_orders_psnr() -> None:
    image = torch.nn.functional.avg_pool2d(textured(8, (1, 3, 66, 66)), 3, stride=1)
    scores = [psnr(run("jpeg", image, quality=q), image) for q in (10, 40, 90)]
    assert scores[0] < scores[1] < scores[2]
    assert not torch.equal(run("jpeg", image, quality=10), run("jpeg", image, quality=90))


def test_jpeg_output_is_on_8bit_grid_and_handles_gray() -> None:
    out = run("jpeg", textured(9, (2, 1, 17, 23)), quality=50)
    assert out.shape == (2, 1, 17, 23)
    assert torch.equal(out * 255, (out * 255).round())


# --------------------------------------------------------------------------- rain, haze, light


def test_rain_adds_oriented_bright_streaks() -> None:
    image = flat(0.3, size=96)
    out = run("rain", image, count=60.0, length=20.0, width=1.0, angle=0.0, intensity=0.8)
    added = out - image
    assert float(added.min()) >= 0.0 and float(out.mean()) > float(image.mean()) + 0.005
    across = float((added[..., :, 1:] - added[..., :, :-1]).abs().mean())
    along = float((added[..., 1:, :] - added[..., :-1, :]).abs().mean())
    assert across > 2 * along  # vertical streaks: sharp across (x), smooth along (y)


def test_rain_count_scales_signal() -> None:
    image = flat(0.2, size=96)
    few = float(run("rain", image, count=10.0).mean())
    many = float(run("rain", image, count=200.0).mean())
    assert many > few > 0.2


def test_haze_moves_pixels_toward_airlight() -> None:
    image = textured(10, (1, 3, 40, 40))
    airlight = 0.9
    distance = (image - airlight).abs()
    light = (run("haze", image, A=airlight, beta=0.5) - airlight).abs()
    dense = (run("haze", image, A=airlight, beta=2.0) - airlight).abs()
    assert bool((light <= distance + 1e-6).all()) and bool((dense <= light + 1e-6).all())
    assert float(dense.mean()) < float(light.mean()) < float(distance.mean())
    top, bottom = dense[..., :5, :].mean(), dense[..., -5:, :].mean()
    assert float(top) < float(bottom), "the top of the frame is farther, so hazier"


def test_low_light_lowers_brightness() -> None:
    image = textured(11, (1, 3, 40, 40))
    out = run("low_light", image, gamma=2.0, exposure=0.5, noise_sigma=0.0)
    assert torch.allclose(out, 0.5 * image**2)
    assert float(run("low_light", image).mean()) < 0.5 * float(image.mean())


# --------------------------------------------------------------------------- spec + sampler


def make_spec(**changes: Any) -> DegradationsConfig:
    raw: dict[str, Any] = {
        "families": {
            "noise": {
                "ops": {
                    "gaussian_noise": {
                        "weight": 2,
                        "params": {
                            "sigma": {"id": [15, 50], "ood": [50, 70]},
                            "gray": {"choices": [0, 1]},
                        },
                    },
                    "poisson_noise": {
                        "params": {"scale": {"id": [20, 100], "ood": [5, 20], "log": True}}
                    },
                    "speckle_noise": {"params": {"sigma": {"id": [10, 30], "ood": [30, 50]}}},
                }
            },
            "blur": {
                "ops": {
                    "gaussian_blur": {"params": {"sigma": {"id": [1, 3], "ood": [3, 5]}}},
                    "aniso_gaussian_blur": {
                        "params": {
                            "sigma_x": {"id": [1, 3], "ood": [3, 5]},
                            "sigma_y": {"id": [1, 3], "ood": [3, 5]},
                            "theta": {"id": [0, 3.1416]},
                        }
                    },
                    "generalized_gaussian_blur": {
                        "params": {"sigma": {"id": [1, 3]}, "beta": {"id": [0.5, 4]}}
                    },
                    "motion_blur": {"params": {"length": {"id": [5, 15], "ood": [15, 25]}}},
                    "defocus_blur": {"params": {"radius": {"id": [1, 3], "ood": [3, 5]}}},
                }
            },
            "resize": {
                "ops": {
                    "resize": {
                        "params": {
                            "scale": {"id": [2, 4], "ood": [4, 6]},
                            "down_mode": {"choices": ["area", "bilinear", "bicubic"]},
                            "up_mode": {"choices": ["bilinear", "bicubic"]},
                        }
                    }
                }
            },
            "jpeg": {
                "ops": {
                    "jpeg": {
                        "params": {"quality": {"id": [30, 70], "ood": [10, 30], "integer": True}}
                    }
                }
            },
            "rain": {
                "ops": {
                    "rain": {
                        "params": {
                            "count": {"id": [20, 60], "ood": [60, 120], "integer": True},
                            "length": {"id": [10, 30]},
                            "width": {"id": [1, 2]},
                            "angle": {"id": [-20, 20], "ood": [-45, 45]},
                            "intensity": {"id": [0.5, 0.9]},
                        }
                    }
                }
            },
            "haze": {
                "ops": {
                    "haze": {
                        "params": {
                            "A": {"id": [0.7, 1.0]},
                            "beta": {"id": [0.5, 1.5], "ood": [1.5, 2.5]},
                        }
                    }
                }
            },
            "lowlight": {
                "ops": {
                    "low_light": {
                        "params": {
                            "gamma": {"id": [1, 3], "ood": [3, 4]},
                            "exposure": {"id": [0.3, 0.8], "ood": [0.1, 0.3]},
                            "noise_sigma": {"id": [0, 5], "ood": [5, 10]},
                        }
                    }
                }
            },
        },
        "held_out": {"families": ["haze"], "combinations": [["noise", "blur"], ["rain", "jpeg"]]},
        "train_composers": {"single": 1.0, "mixed": 1.0, "second_order": 1.0},
        "mixed": {"k": [2, 3]},
        "second_order": {"second_round_prob": 0.8, "skip_prob": 0.2},
    }
    raw.update(changes)
    return DegradationsConfig.model_validate(raw)


def with_op(family: str, op: str, op_spec: dict[str, Any]) -> DegradationsConfig:
    """The default spec with one op of ``family`` replaced (or added)."""
    families = make_spec().model_dump()["families"]
    families[family]["ops"][op] = op_spec
    return make_spec(families=families)


def test_default_spec_is_valid() -> None:
    check_spec(make_spec())


@pytest.mark.parametrize(
    ("family", "op", "op_spec", "fragments"),
    [
        (
            "noise",
            "gaussian_noise",
            {"params": {"sigma": {"id": [15, 50], "ood": [50, 300]}}},
            [
                "degradations.families.noise.ops.gaussian_noise.params.sigma: "
                "ood range (50, 300) outside valid domain [0, 255]"
            ],
        ),
        (
            "noise",
            "gausian_noise",
            {"params": {"sigma": 10}},
            ["degradations.families.noise.ops.gausian_noise: unknown op", "speckle_noise"],
        ),
        (
            "noise",
            "gaussian_blur",
            {"params": {"sigma": 1}},
            ["degradations.families.noise.ops.gaussian_blur", "belongs to family 'blur'"],
        ),
        (
            "blur",
            "gaussian_blur",
            {"params": {"sigma": 1, "size": 5}},
            ["degradations.families.blur.ops.gaussian_blur.params.size: unknown param"],
        ),
        (
            "blur",
            "aniso_gaussian_blur",
            {"params": {"sigma_x": 1}},
            ["degradations.families.blur.ops.aniso_gaussian_blur.params: missing", "sigma_y"],
        ),
        (
            "jpeg",
            "jpeg",
            {"params": {"quality": {"id": [30, 70]}}},
            ["degradations.families.jpeg.ops.jpeg.params.quality", "integer: true"],
        ),
        (
            "jpeg",
            "jpeg",
            {"params": {"quality": 0}},
            ["degradations.families.jpeg.ops.jpeg.params.quality: value 0"],
        ),
        (
            "resize",
            "resize",
            {"params": {"scale": 2, "up_mode": {"choices": ["bicubic", "lanczos"]}}},
            ["degradations.families.resize.ops.resize.params.up_mode: choice 'lanczos'"],
        ),
        (
            "rain",
            "rain",
            {"params": {"count": 20, "length": 10, "seed": 3}},
            ["degradations.families.rain.ops.rain.params.seed"],
        ),
    ],
)
def test_check_spec_rejects_with_dotted_key(
    family: str, op: str, op_spec: dict[str, Any], fragments: list[str]
) -> None:
    with pytest.raises(ValueError) as info:
        check_spec(with_op(family, op, op_spec))
    for fragment in fragments:
        assert fragment in str(info.value)


def test_sample_step_is_reproducible_and_in_range() -> None:
    spec = make_spec()
    first = [sample_step(spec, "noise", "id", np.random.default_rng(3)) for _ in range(2)]
    assert first[0] == first[1]
    rng = np.random.default_rng(4)
    for _ in range(200):
        step = sample_step(spec, "jpeg", "ood", rng)
        assert isinstance(step.params["quality"], int) and 10 <= step.params["quality"] <= 30
        rain = sample_step(spec, "rain", "ood", rng)
        assert 60 <= rain.params["count"] <= 120 and -45 <= rain.params["angle"] <= 45
        assert 10 <= rain.params["length"] <= 30  # no ood range: falls back to id
        assert 0 <= rain.params["seed"] < 2**31


@pytest.mark.parametrize("level", ["id", "ood"])
def test_sampled_params_lie_in_param_bounds(level: str) -> None:
    spec = make_spec()
    rng = np.random.default_rng(5)
    for family in spec.families:
        for _ in range(30):
            step = sample_step(spec, family, level, rng)
            for name, value in step.params.items():
                bounds = param_bounds(spec, family, step.op, name, level)
                if bounds is not None:
                    assert bounds[0] <= value <= bounds[1], (step, name)
    assert param_bounds(spec, "noise", "poisson_noise", "scale", "ood") == (5.0, 20.0)
    assert param_bounds(spec, "noise", "gaussian_noise", "seed", "id") is None


def test_op_weights_are_respected() -> None:
    spec = make_spec()
    rng = np.random.default_rng(6)
    ops = [sample_step(spec, "noise", "id", rng).op for _ in range(800)]
    share = ops.count("gaussian_noise") / len(ops)
    assert share == pytest.approx(0.5, abs=0.06)


def test_train_recipes_respect_held_out() -> None:
    spec = make_spec()
    rng = np.random.default_rng(7)
    held = [set(c) for c in spec.held_out.combinations]
    composers = set()
    for _ in range(600):
        recipe = sample_train_recipe(spec, rng)
        composers.add(recipe.composer)
        assert recipe.level == "id"
        assert "haze" not in recipe.families
        assert set(recipe.families) not in held
        if recipe.composer == "second_order":
            assert set(recipe.families) <= set(SECOND_ORDER_FAMILIES)
        if recipe.composer == "mixed":
            assert 2 <= len(recipe.steps) <= 3
    assert composers == {"single", "mixed", "second_order"}


def test_mixed_order_is_shuffled_and_families_can_be_forced() -> None:
    spec = make_spec()
    rng = np.random.default_rng(8)
    orders = {
        tuple(s.family for s in sample_recipe(spec, "mixed", "id", rng, ["rain", "noise"]).steps)
        for _ in range(40)
    }
    assert orders == {("rain", "noise"), ("noise", "rain")}
    held_out = sample_recipe(spec, "single", "ood", rng, ["haze"])  # benchmarks may force it
    assert held_out.family_key == "haze" and held_out.level == "ood"
    with pytest.raises(ValueError, match="exactly one family"):
        sample_recipe(spec, "single", "id", rng, ["noise", "blur"])
    with pytest.raises(ValueError, match="'fog'"):
        sample_recipe(spec, "mixed", "id", rng, ["noise", "fog"])
    with pytest.raises(ValueError, match="'triple'"):
        sample_recipe(spec, "triple", "id", rng)


def test_sampler_is_reproducible_for_a_seed() -> None:
    spec = make_spec()

    def draw(seed: int) -> list[str]:
        rng = np.random.default_rng(seed)
        return [sample_train_recipe(spec, rng).to_json() for _ in range(20)]

    assert draw(11) == draw(11)
    assert draw(11) != draw(12)


# --------------------------------------------------------------------------- recipes


def test_recipe_json_round_trip_replays_byte_identically() -> None:
    spec = make_spec()
    rng = np.random.default_rng(9)
    image = textured(12, (1, 3, 33, 41))
    recipes = [sample_recipe(spec, "second_order", "ood", rng) for _ in range(3)]
    recipes.append(sample_recipe(spec, "mixed", "id", rng, list(spec.families)))
    for recipe in recipes:
        back = Recipe.from_json(recipe.to_json())
        assert back == recipe and back.to_json() == recipe.to_json()
        assert torch.equal(apply_recipe(image, back), apply_recipe(image, recipe))
        assert Recipe.from_dict(recipe.to_dict()) == recipe


def test_recipe_properties_and_validation() -> None:
    recipe = Recipe(
        composer="mixed",
        level="mixed",
        steps=(
            Step("jpeg", "jpeg", {"quality": 40}),
            Step("gaussian_noise", "noise", {"sigma": 10.0, "seed": 1}),
            Step("jpeg", "jpeg", {"quality": 80}),
        ),
    )
    assert recipe.families == ("jpeg", "noise") and recipe.family_key == "jpeg+noise"
    image = textured(13, (1, 3, 16, 16))
    expected = OPS.get("jpeg")(
        OPS.get("gaussian_noise")(OPS.get("jpeg")(image, quality=40), sigma=10.0, seed=1),
        quality=80,
    )
    assert torch.equal(apply_recipe(image, recipe), expected)
    with pytest.raises(ValueError, match="'blur'"):
        Step("jpeg", "blur", {"quality": 40})
    with pytest.raises(KeyError, match="available"):
        Step("jpg", "jpeg", {})
    with pytest.raises(ValueError, match="'fourth_order'"):
        Recipe("fourth_order", "id", ())
    with pytest.raises(ValueError, match="keys"):
        Recipe.from_dict({"composer": "single", "level": "id"})
    params = {"quality": 40}
    step = Step("jpeg", "jpeg", params)
    params["quality"] = 1
    assert step.params == {"quality": 40}, "steps copy their params"
