"""The ``interpret`` section: what the interpretation report computes (features, attribution,
sensitivity, crops)."""

from __future__ import annotations

from pydantic import Field

from girml.config.base import Frozen


class InterpretConfig(Frozen):
    """What the interpretation report computes (features, attribution, sensitivity, crops)."""

    layer: str = Field(default="bottleneck", description="feature layer for the t-SNE maps")
    images_per_group: int = Field(default=8, ge=2, description="per suite/family for t-SNE")
    tsne_perplexity: float = Field(default=15.0, gt=1)
    lam_window: int = Field(default=16, ge=4, description="output window side for LAM")
    lam_steps: int = Field(default=16, ge=4, description="integrated-gradients steps")
    lam_images_per_family: int = Field(default=1, ge=1)
    sensitivity_levels: int = Field(default=7, ge=3)
    sensitivity_images: int = Field(default=4, ge=1)
    sensitivity_extend: float = Field(default=1.5, ge=1, description="sweep past the ood range")
    comparisons_per_family: int = Field(default=1, ge=1, description="worst and best each")
    seed: int = 0
