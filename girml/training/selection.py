"""Harm-aware checkpoint selection: which of a run's validated weights it keeps.

At every validation the loop also restores the selection set (``pairs/select``: the validation
photos, whole but box-reduced, clean and under each trained family; see
:func:`girml.data.synthesize.plan_select`) and scores it with :func:`selection_score`:

    score = mean gain over the families
            - harm_weight * (sum over families of the dB each loses below its input
                             + the dB the clean photos fall below clean_floor)

A model that helps most families but harms one is ranked below one that helps them a little
less and harms none. With ``train.select: best`` the run returns the weights of the validation
with the highest score (:class:`BestWeights`, checkpointed, so a resumed run keeps it); with
``last`` it returns the final weights, as before. Either way ``metrics/train.json: selection``
records every validation's score, the step kept and why.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from girml.config import CLEAN_FAMILY

# PSNR of an output identical to its target is infinite; scored as this many dB, as evaluation
# clips it (girml.evaluation.harness.clipped_psnr)
PSNR_CLIP = 100.0


@dataclass(frozen=True)
class SelectionScore:
    """One validation's selection score and its parts (dB)."""

    score: float
    mean_gain: float
    harm: float  # dB lost below the inputs, summed over families
    clean_shortfall: float  # dB the clean photos fall below the floor (0 without clean ones)
    gains: dict[str, float]
    clean_psnr_y: float | None


def selection_score(
    per_family: dict[str, dict[str, float]], *, harm_weight: float, clean_floor: float
) -> SelectionScore:
    """Score one validation of the selection set.

    Args:
        per_family: family -> ``{"psnr_y_input", "psnr_y_model"}`` (``validate``'s second
            result); the ``clean`` family's input PSNR is infinite.
        harm_weight: dB of score lost per dB of harm.
        clean_floor: PSNR-Y (dB) the clean photos should keep.

    Raises:
        ValueError: no degraded family to score.
    """
    gains = {
        family: min(v["psnr_y_model"], PSNR_CLIP) - min(v["psnr_y_input"], PSNR_CLIP)
        for family, v in per_family.items()
        if family != CLEAN_FAMILY
    }
    if not gains:
        raise ValueError("the selection set has no degraded family")
    mean_gain = sum(gains.values()) / len(gains)
    harm = sum(max(0.0, -g) for g in gains.values())
    clean = per_family.get(CLEAN_FAMILY)
    clean_psnr = None if clean is None else min(clean["psnr_y_model"], PSNR_CLIP)
    shortfall = 0.0 if clean_psnr is None else max(0.0, clean_floor - clean_psnr)
    return SelectionScore(
        score=mean_gain - harm_weight * (harm + shortfall),
        mean_gain=mean_gain,
        harm=harm,
        clean_shortfall=shortfall,
        gains=gains,
        clean_psnr_y=clean_psnr,
    )


class BestWeights:
    """The best-scoring validated weights so far, and every validation's score (checkpointed
    with the run: ``state_dict``/``load_state_dict`` as accelerate's custom objects)."""

    def __init__(self) -> None:
        self.step: int | None = None
        self.score = -math.inf
        self.weights: dict[str, torch.Tensor] | None = None
        self.validation: dict[str, Any] | None = None
        self.scores: dict[int, float] = {}

    def offer(self, step: int, score: float, model: nn.Module, validation: dict[str, Any]) -> bool:
        """Record ``step``'s score; keep ``model``'s weights (a CPU copy) when it is the best.

        Ties keep the earlier step. Returns whether ``model`` is now the best.
        """
        self.scores[step] = score
        if score <= self.score:
            return False
        self.step, self.score = step, score
        self.weights = {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}
        self.validation = copy.deepcopy(validation)
        return True

    def record(self, rule: str, last_step: int) -> dict[str, Any]:
        """``metrics/train.json: selection``: the rule, the step kept, the scores and why."""
        kept = self.step if rule == "best" and self.step is not None else last_step
        scores = dict(sorted(self.scores.items()))
        if rule == "last" or self.step is None:
            why = f"train.select is {rule!r}: the final weights (step {last_step})"
        elif kept == last_step:
            why = f"the final weights scored best ({self.score:.2f} dB)"
        else:
            last = scores.get(last_step)
            last_text = f"{last:.2f}" if last is not None else "not scored"
            why = (
                f"step {kept} scored best ({self.score:.2f} dB) of {len(scores)} validations; "
                f"the final step {last_step} scored {last_text}"
            )
        return {
            "rule": rule,
            "kept_step": kept,
            "last_step": last_step,
            "best_score": None if self.step is None else self.score,
            "scores": {str(step): round(score, 4) for step, score in scores.items()},
            "why": why,
        }

    def state_dict(self) -> dict[str, Any]:
        return {
            "step": self.step,
            "score": self.score,
            "weights": self.weights,
            "validation": self.validation,
            "scores": dict(self.scores),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.step = state["step"]
        self.score = float(state["score"])
        self.weights = state["weights"]
        self.validation = state["validation"]
        self.scores = {int(k): float(v) for k, v in state["scores"].items()}
