"""Degradation library: registered pure ops, serialisable recipes and a spec-driven sampler.

Importing this package registers every op in :data:`OPS` (explicit imports, one per family).
"""

from girml.degradations import blur, haze, jpeg, lowlight, noise, rain, resize
from girml.degradations.ops import OPS, apply_kernel, check_param, register_op
from girml.degradations.recipe import Recipe, Step, apply_recipe
from girml.degradations.sampler import (
    check_spec,
    param_bounds,
    sample_recipe,
    sample_step,
    sample_train_recipe,
)

__all__ = [
    "OPS",
    "Recipe",
    "Step",
    "apply_kernel",
    "apply_recipe",
    "blur",
    "check_param",
    "check_spec",
    "haze",
    "jpeg",
    "lowlight",
    "noise",
    "param_bounds",
    "rain",
    "register_op",
    "resize",
    "sample_recipe",
    "sample_step",
    "sample_train_recipe",
]
