"""The ``study`` section: the approaches the study trains at matched compute and compares, and
how their leaderboard's intervals are computed."""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from girml.config.base import Frozen
from girml.config.evaluate import RESERVED_METHODS


class ApproachConfig(Frozen):
    """One approach of the study (``study.approaches.<name>``; ``girml/evaluation/approaches.py``).

    ``kind``: ``unified`` (one model for every degradation; ``model`` overrides the ``model``
    section, e.g. ``{type: prompt_nafnet}``), ``specialists`` (one model per training family,
    told the family at test time: oracle routing), ``routed`` (a degradation classifier picks a
    specialist of the approach named by ``specialists``, or a classical method, per image) or
    ``release`` (the shipped ``models/release``, not trained).
    """

    kind: Literal["unified", "specialists", "routed", "release"]
    model: dict[str, Any] = Field(default_factory=dict, description="model section overrides")
    specialists: str = Field(default="specialists", description="routed: the specialists' approach")

    @model_validator(mode="after")
    def _model_only_where_trained(self) -> ApproachConfig:
        if self.model and self.kind in ("routed", "release"):
            raise ValueError(f"kind {self.kind!r} trains no restorer: remove model")
        return self


class StudyConfig(Frozen):
    """The study (DVC stages ``approach@<name>``, ``approach-eval@<name>`` and ``study``).

    ``approaches``: name -> :class:`ApproachConfig`, each trained at the compute of the ``train``
    section's run (FLOP-matched; docs/study.md). Empty in the quick profile;
    ``profiles/study.yaml`` lists the approaches the GIR literature compares.
    """

    reference: str = Field(default="model", description="the method paired differences are against")
    seed: int = Field(default=0, description="bootstrap seed")
    n_boot: int = Field(default=2000, ge=100, description="bootstrap resamples per interval")
    approaches: dict[str, ApproachConfig] = Field(default_factory=dict)
    classifier_steps: int = Field(default=400, ge=1, description="routed: classifier steps")

    @field_validator("approaches")
    @classmethod
    def _names(cls, value: dict[str, ApproachConfig]) -> dict[str, ApproachConfig]:
        for name, approach in value.items():
            if not re.fullmatch(r"[a-z][a-z0-9_]*", name):
                raise ValueError(
                    f"approach name {name!r} must be lower case letters, digits and _ "
                    "(it names a DVC stage and a folder)"
                )
            if name in RESERVED_METHODS:
                raise ValueError(f"approach name {name!r} is taken by the evaluate stage's rows")
            if approach.kind == "routed":
                target = value.get(approach.specialists)
                if target is None or target.kind != "specialists":
                    raise ValueError(
                        f"approach {name!r} routes to {approach.specialists!r}, which is not an "
                        "approach of kind specialists"
                    )
        return value
