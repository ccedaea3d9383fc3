"""Recipes: an ordered, serialisable list of degradation steps, replayed exactly."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from torch import Tensor

from girml.degradations.ops import OPS, ParamValue

COMPOSERS = ("single", "mixed", "second_order")
RECIPE_LEVELS = ("id", "ood", "mixed")
_STEP_KEYS = frozenset({"op", "family", "params"})
_RECIPE_KEYS = frozenset({"composer", "level", "steps"})


@dataclass(frozen=True)
class Step:
    """One op application: registry name, its family and the exact keyword arguments.

    ``params`` holds JSON scalars only (``bool``, ``int``, ``float``, ``str``), ``seed``
    included for random ops; it is copied on construction.
    """

    op: str
    family: str
    params: dict[str, ParamValue]

    def __post_init__(self) -> None:
        actual = OPS.meta(self.op)["family"]  # KeyError listing the ops if unknown
        if actual != self.family:
            raise ValueError(f"step {self.op!r} belongs to family {actual!r}, not {self.family!r}")
        for name, value in self.params.items():
            if not isinstance(value, bool | int | float | str):
                raise TypeError(
                    f"step {self.op!r}: param {name} must be a JSON scalar, got {value!r}"
                )
        object.__setattr__(self, "params", dict(self.params))

    def to_dict(self) -> dict[str, Any]:
        return {"op": self.op, "family": self.family, "params": dict(self.params)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Step:
        _check_keys(data, _STEP_KEYS, "step")
        if not isinstance(data["params"], Mapping):
            raise ValueError(f"step params must be a mapping, got {data['params']!r}")
        return cls(op=data["op"], family=data["family"], params=dict(data["params"]))


@dataclass(frozen=True)
class Recipe:
    """A full degradation: how it was composed, its level and the steps in order.

    Attributes:
        composer: ``single``, ``mixed`` or ``second_order``.
        level: ``id`` (in-distribution params), ``ood`` or ``mixed`` (steps of both levels).
        steps: applied first to last by :func:`apply_recipe`.
    """

    composer: str
    level: str
    steps: tuple[Step, ...]

    def __post_init__(self) -> None:
        if self.composer not in COMPOSERS:
            raise ValueError(f"composer must be one of {list(COMPOSERS)}, got {self.composer!r}")
        if self.level not in RECIPE_LEVELS:
            raise ValueError(f"level must be one of {list(RECIPE_LEVELS)}, got {self.level!r}")
        steps = tuple(self.steps)
        if not all(isinstance(step, Step) for step in steps):
            raise TypeError(f"steps must be Step objects, got {self.steps!r}")
        object.__setattr__(self, "steps", steps)

    @property
    def families(self) -> tuple[str, ...]:
        """Sorted unique families of the steps."""
        return tuple(sorted({step.family for step in self.steps}))

    @property
    def family_key(self) -> str:
        """``"+".join(families)``, e.g. ``"blur+noise"``."""
        return "+".join(self.families)

    def to_dict(self) -> dict[str, Any]:
        return {
            "composer": self.composer,
            "level": self.level,
            "steps": [step.to_dict() for step in self.steps],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Recipe:
        _check_keys(data, _RECIPE_KEYS, "recipe")
        if not isinstance(data["steps"], list | tuple):
            raise ValueError(f"recipe steps must be a list, got {data['steps']!r}")
        steps = tuple(Step.from_dict(step) for step in data["steps"])
        return cls(composer=data["composer"], level=data["level"], steps=steps)

    def to_json(self) -> str:
        """Canonical JSON (sorted keys); floats use Python's exact shortest repr."""
        return json.dumps(self.to_dict(), sort_keys=True, allow_nan=False)

    @classmethod
    def from_json(cls, text: str) -> Recipe:
        return cls.from_dict(json.loads(text))


def _check_keys(data: Mapping[str, Any], expected: frozenset[str], what: str) -> None:
    if not isinstance(data, Mapping):
        raise ValueError(f"{what} must be a mapping, got {data!r}")
    if set(data) != expected:
        raise ValueError(f"{what} keys must be {sorted(expected)}, got {sorted(data)}")


def apply_recipe(image: Tensor, recipe: Recipe) -> Tensor:
    """Apply every step of ``recipe`` in order (deterministic: same input, same bytes).

    Args:
        image: (B,C,H,W) float in [0,1].
        recipe: the degradation to apply.

    Returns:
        (B,C,H',W') float in [0,1]; H',W' differ from H,W only if a ``downsample`` step is used.
    """
    for step in recipe.steps:
        image = OPS.get(step.op)(image, **step.params)
    return image
