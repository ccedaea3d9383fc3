"""The ``degradations`` section: the study's degradation space (families of ops, their sampled
parameters, what is held out of training and how training composes the families)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from girml.config.base import Frozen

# The benchmark family whose input is its ground truth (no degradation, see
# girml.data.synthesize.CLEAN_SUITES); evaluation scores it as harm. No degradation family may
# take the name.
CLEAN_FAMILY = "clean"

Number = int | float


class ParamRange(Frozen):
    """A sampled parameter: uniform (or log-uniform) within the level's range."""

    id: tuple[Number, Number]
    ood: tuple[Number, Number] | None = None
    log: bool = False
    integer: bool = False

    @model_validator(mode="after")
    def _ordered(self) -> ParamRange:
        for name in ("id", "ood"):
            rng = getattr(self, name)
            if rng is not None and rng[0] > rng[1]:
                raise ValueError(f"{name} range must be [low, high] with low <= high, got {rng}")
            if rng is not None and self.log and rng[0] <= 0:
                raise ValueError(f"log ranges must be positive, got {name}={rng}")
        return self


class ParamChoice(Frozen):
    """A parameter drawn uniformly from a list (per level if ``ood`` is given)."""

    choices: list[Number | str] = Field(min_length=1)
    ood: list[Number | str] | None = None


ParamSpec = Number | str | ParamRange | ParamChoice


class OpSpec(Frozen):
    weight: float = Field(default=1.0, gt=0)
    params: dict[str, ParamSpec] = Field(default_factory=dict)


class FamilySpec(Frozen):
    ops: dict[str, OpSpec] = Field(min_length=1)
    weight: float = Field(
        default=1.0,
        gt=0,
        description="how often training recipes draw this family, relative to the others "
        "(single and mixed recipes; 1 everywhere: uniform, as before)",
    )


class HeldOut(Frozen):
    families: list[str] = Field(default_factory=list)
    combinations: list[list[str]] = Field(default_factory=list)


class MixedSpec(Frozen):
    k: tuple[int, int] = (2, 3)


class SecondOrderSpec(Frozen):
    """Real-ESRGAN-style two rounds of blur -> resize -> noise -> jpeg."""

    second_round_prob: float = Field(default=0.5, ge=0, le=1)
    skip_prob: float = Field(default=0.3, ge=0, le=1, description="chance to skip each op")


class DegradationsConfig(Frozen):
    """The study's degradation space. The families have no default, and what names them (held
    out of training, the benchmark's combinations) defaults to nothing: params.yaml states it."""

    families: dict[str, FamilySpec] = Field(min_length=1)
    held_out: HeldOut = HeldOut()
    train_composers: dict[Literal["single", "mixed", "second_order"], float] = Field(
        default_factory=lambda: {"single": 0.4, "mixed": 0.4, "second_order": 0.2}
    )
    mixed: MixedSpec = MixedSpec()
    second_order: SecondOrderSpec = SecondOrderSpec()
    bench_combinations: list[list[str]] = Field(default_factory=list)

    @model_validator(mode="after")
    def _families_known(self) -> DegradationsConfig:
        if CLEAN_FAMILY in self.families:
            raise ValueError(
                f"family name {CLEAN_FAMILY!r} is reserved for the benchmark's undegraded family"
            )
        known = set(self.families)
        named = list(self.held_out.families)
        for combo in [*self.held_out.combinations, *self.bench_combinations]:
            named.extend(combo)
        unknown = sorted(set(named) - known)
        if unknown:
            raise ValueError(f"unknown families {unknown}; declared: {sorted(known)}")
        if not any(w > 0 for w in self.train_composers.values()):
            raise ValueError("train_composers needs at least one positive weight")
        if len(set(self.families) - set(self.held_out.families)) == 0:
            raise ValueError("every family is held out: nothing left to train on")
        return self
