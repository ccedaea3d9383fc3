"""girml.degradations.sampler: the spec check and recipes sampled from a seeded generator."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from girml.degradations import (
    check_spec,
    param_bounds,
    sample_recipe,
    sample_step,
    sample_train_recipe,
)
from girml.degradations.sampler import SECOND_ORDER_FAMILIES
from tests.degradations.common import make_spec, with_op


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


def test_family_weights_shift_single_and_mixed_draws() -> None:
    families = make_spec().model_dump()["families"]
    train = [f for f in families if f != "haze"]
    families[train[0]]["weight"] = 4.0
    weighted = make_spec(families=families)
    rng = np.random.default_rng(9)
    singles = [sample_recipe(weighted, "single", "id", rng).family_key for _ in range(900)]
    uniform = 1 / (len(train) - len([f for f in train if f in weighted.held_out.families]))
    pool = [f for f in train if f not in weighted.held_out.families]
    expected = 4.0 / (4.0 + len(pool) - 1)
    assert singles.count(train[0]) / len(singles) == pytest.approx(expected, abs=0.05)
    assert expected > uniform + 0.2
    mixed = [sample_recipe(weighted, "mixed", "id", rng).families for _ in range(600)]
    with_heavy = sum(train[0] in f for f in mixed) / len(mixed)
    plain = [sample_recipe(make_spec(), "mixed", "id", rng).families for _ in range(600)]
    assert with_heavy > sum(train[0] in f for f in plain) / len(plain) + 0.1


def test_unit_family_weights_draw_the_same_recipes_as_before() -> None:
    # the weights must not move a seeded data set when they are all 1 (or all equal)
    families = make_spec().model_dump()["families"]
    for family in families.values():
        family["weight"] = 2.5
    equal = make_spec(families=families)
    for composer in ("single", "mixed"):
        a = np.random.default_rng(3)
        b = np.random.default_rng(3)
        first = [sample_recipe(make_spec(), composer, "id", a).to_json() for _ in range(30)]
        second = [sample_recipe(equal, composer, "id", b).to_json() for _ in range(30)]
        assert first == second
