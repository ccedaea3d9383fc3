"""girml.degradations.recipe: steps and recipes, their JSON form and their replay."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from girml.degradations import OPS, Recipe, Step, apply_recipe, sample_recipe
from tests.degradations.common import make_spec, textured


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
