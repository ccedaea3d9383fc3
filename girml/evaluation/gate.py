"""The promotion gate: the pure rules that decide whether a new version becomes ``@champion``.

:func:`decide` compares the new version's per-(suite, family) PSNR-Y (:func:`group_psnr`),
``gir_score`` and harm keys with the current champion's, against the thresholds of
``evaluate.promotion`` (:class:`~girml.config.PromotionConfig`); :func:`champion_decision` does
so from the evaluate stage's per-family rows and :func:`decision_record` turns the outcome into
``eval.json``'s ``champion.*`` entries. Nothing here runs a model or touches the registry: that
is :mod:`girml.artifacts.promotion`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from girml.config import CLEAN_FAMILY, PromotionConfig
from girml.data.synthesize import WHOLE_SUITE
from girml.evaluation.bench import GIR_SUITES
from girml.evaluation.harness import MODEL_METHOD
from girml.evaluation.report import gir_score, harm_metrics, headline
from girml.tracking.versions import CHALLENGER, CHAMPION

CHAMPION_METHOD = "champion"
# The (suite, family) groups the gate compares: the GIR suites, and whole photos restored as
# `girml restore` does (girml.evaluation.whole)
GATE_SUITES = (*GIR_SUITES, WHOLE_SUITE)
BLOCK_SHIFT_KEY = "harm.block_shift."
GroupScores = Mapping[tuple[str, str], float]


@dataclass(frozen=True)
class Decision:
    """Whether the new version becomes ``@champion``, and why.

    Attributes:
        promoted: True: it becomes the champion; False: it becomes the challenger.
        reasons: human sentences with the numbers behind the decision.
    """

    promoted: bool
    reasons: tuple[str, ...]

    @property
    def alias(self) -> str:
        """The registry alias the new version gets."""
        return CHAMPION if self.promoted else CHALLENGER


def group_psnr(
    per_family: Sequence[Mapping[str, Any]], method: str
) -> dict[tuple[str, str], float]:
    """Per degraded (suite, family) of :data:`GATE_SUITES`: one method's mean psnr_y (what
    decide() compares; the ``clean`` family is compared through the harm keys instead)."""
    return {
        (row["suite"], row["family"]): row["psnr_y"]
        for row in per_family
        if row["method"] == method and row["suite"] in GATE_SUITES and row["family"] != CLEAN_FAMILY
    }


def decide(
    new: GroupScores,
    new_gir: float,
    champion: GroupScores | None,
    champion_gir: float | None,
    cfg: PromotionConfig,
    new_harm: Mapping[str, float] | None = None,
    champion_harm: Mapping[str, float] | None = None,
) -> Decision:
    """Promote the new version or keep it as the challenger.

    The first model (``champion`` None) becomes champion. Otherwise it is promoted only if its
    ``gir_score`` beats the champion's by at least ``cfg.min_gir_gain`` dB AND no (suite,
    family) group of the GIR suites present in both loses more than
    ``cfg.max_family_regression`` dB of mean PSNR-Y against the champion AND it does no more
    harm (when ``new_harm`` is given, see :func:`harm_reasons`): no suite's ``harm_rate`` rises
    more than ``cfg.max_harm_rate_increase`` and no suite's ``harm.clean_psnr_y`` drops more
    than ``cfg.max_clean_psnr_drop`` dB.

    Args:
        new: ``{(suite, family): mean psnr_y}`` of the new version (see :func:`group_psnr`);
            groups outside the GIR suites are ignored.
        new_gir: its ``gir_score``.
        champion: the same for the current champion, on the same benchmark; None if none.
        champion_gir: the champion's ``gir_score`` (ignored when ``champion`` is None).
        cfg: the thresholds.
        new_harm: the new version's
            :func:`~girml.evaluation.report.harm_metrics`; None skips the harm checks.
        champion_harm: the champion's; None or without harm keys (an older run) skips the
            harm checks with a note among the reasons.

    Returns:
        The :class:`Decision`; its reasons state every comparison made.
    """
    if champion is None:
        return Decision(True, ("no champion yet: the first model becomes the champion",))
    if champion_gir is None:
        raise ValueError("champion_gir is required when champion is given")
    gain = new_gir - champion_gir
    # a tolerance so that a gain printed as exactly the threshold counts as reaching it
    gain_ok = gain >= cfg.min_gir_gain - 1e-9
    reasons = [
        f"gir_score {new_gir:.2f} dB vs champion {champion_gir:.2f} dB: {gain:+.2f} "
        f"{'>=' if gain_ok else '<'} {cfg.min_gir_gain:.2f}"
    ]
    families_ok, notes = regression_reasons(new, champion, cfg)
    reasons += notes
    harm_ok = True
    if new_harm is not None:
        harm_ok, notes = harm_reasons(new_harm, champion_harm, cfg)
        reasons += notes
    return Decision(gain_ok and families_ok and harm_ok, tuple(reasons))


def regression_reasons(
    new: GroupScores, champion: GroupScores, cfg: PromotionConfig
) -> tuple[bool, list[str]]:
    """The per-family part of :func:`decide`: does any group lose too much against the champion?

    Compared per (suite, family) of :data:`GATE_SUITES` present in both with finite scores; a group
    whose mean PSNR-Y drops more than ``cfg.max_family_regression`` dB refuses.

    Args:
        new: ``{(suite, family): mean psnr_y}`` of the new version.
        champion: the same for the champion.
        cfg: the thresholds.

    Returns:
        ``(ok, reasons)``: one reason per regressed group, or one summary line naming the
        largest change when none regressed (none when no group was compared).
    """
    drops = {
        key: champion[key] - new[key]
        for key in sorted(set(new) & set(champion))
        if key[0] in GATE_SUITES and math.isfinite(new[key]) and math.isfinite(champion[key])
    }
    regressed = {k: d for k, d in drops.items() if d > cfg.max_family_regression}
    reasons = [
        f"{suite}/{family} regressed {drop:.2f} dB > {cfg.max_family_regression:.2f}"
        for (suite, family), drop in regressed.items()
    ]
    if drops and not regressed:
        (suite, family), worst = max(drops.items(), key=lambda kv: kv[1])
        reasons.append(
            f"no (suite, family) regressed more than {cfg.max_family_regression:.2f} dB "
            f"(largest change: {suite}/{family} {-worst:+.2f} dB)"
        )
    return not regressed, reasons


def harm_reasons(
    new: Mapping[str, float], champion: Mapping[str, float] | None, cfg: PromotionConfig
) -> tuple[bool, list[str]]:
    """The harm part of :func:`decide`: is the new version no more harmful than the champion?

    Compared per key present in both: ``harm_rate.<suite>`` (refused when the new rate exceeds
    the champion's by more than ``cfg.max_harm_rate_increase``), ``harm.clean_psnr_y.<suite>``
    (refused when the new value is more than ``cfg.max_clean_psnr_drop`` dB below the
    champion's) and ``harm.block_shift.<suite>`` (refused when the new largest block shift
    exceeds the champion's by more than ``cfg.max_block_shift_rise`` grey levels). A key the
    champion lacks is skipped, with a note.

    Args:
        new: the new version's :func:`~girml.evaluation.report.harm_metrics`.
        champion: the champion's, or None (an older run without harm metrics).
        cfg: the thresholds.

    Returns:
        ``(ok, reasons)``: ok is False when any check refuses; one reason per refusal, one
        summary line per passed kind of check and one note per skipped key.
    """
    keys = [k for k in new if k.startswith(("harm_rate.", "harm.clean_psnr_y.", BLOCK_SHIFT_KEY))]
    if not keys:
        return True, []
    champion = {k: v for k, v in (champion or {}).items() if math.isfinite(v)}
    if not any(k in champion for k in keys):
        return True, ["champion has no harm metrics (older run): harm checks skipped"]
    compared = [key for key in keys if key in champion and math.isfinite(new[key])]
    rises = {k: new[k] - champion[k] for k in compared if not k.startswith("harm.clean_psnr_y.")}
    drops = {k: champion[k] - new[k] for k in compared if k.startswith("harm.clean_psnr_y.")}
    changes = {**rises, **drops}
    refusals = [
        _harm_refusal(key, new[key], champion[key], changes[key], cfg)
        for key in compared
        if changes[key] > _harm_limit(key, cfg) + 1e-9
    ]
    summary = _harm_summary(rises, drops, refusals, cfg)
    notes = [f"champion has no {key}: that check skipped" for key in keys if key not in champion]
    return not refusals, [*refusals, *summary, *notes]


def _harm_limit(key: str, cfg: PromotionConfig) -> float:
    """How much harm key ``key`` may worsen: a ``harm_rate.*`` rise (a fraction), a
    ``harm.block_shift.*`` rise (grey levels), a ``harm.clean_psnr_y.*`` drop (dB)."""
    if key.startswith("harm_rate."):
        return cfg.max_harm_rate_increase
    if key.startswith(BLOCK_SHIFT_KEY):
        return cfg.max_block_shift_rise
    return cfg.max_clean_psnr_drop


def _harm_refusal(
    key: str, new: float, champion: float, change: float, cfg: PromotionConfig
) -> str:
    """The reason harm key ``key`` refuses: its value ``new`` against the champion's, worse by
    ``change`` (a rise or a drop, see :func:`_harm_limit`) than the limit allows."""
    limit = _harm_limit(key, cfg)
    if key.startswith(BLOCK_SHIFT_KEY):
        return (
            f"{key} {new:.1f} vs champion {champion:.1f} grey levels: {change:+.1f} > {limit:.1f}"
        )
    if key.startswith("harm_rate."):
        return (
            f"{key} {new:.1%} vs champion {champion:.1%}: {change * 100:+.1f} "
            f"points > {limit * 100:.1f}"
        )
    return (
        f"{key} {new:.2f} dB vs champion {champion:.2f} dB: {-change:+.2f} dB, a drop > {limit:.2f}"
    )


def _harm_summary(
    rises: Mapping[str, float],
    drops: Mapping[str, float],
    refusals: Sequence[str],
    cfg: PromotionConfig,
) -> list[str]:
    """One line per kind of harm check that was made and refused nothing, naming its largest
    change.

    Args:
        rises: new minus champion of each compared ``harm_rate.*`` key.
        drops: champion minus new (dB) of each compared ``harm.clean_psnr_y.*`` key.
        refusals: the refusals of :func:`_harm_refusal`.
        cfg: the thresholds.
    """
    summary = []
    shifts = {k: v for k, v in rises.items() if k.startswith(BLOCK_SHIFT_KEY)}
    rises = {k: v for k, v in rises.items() if k.startswith("harm_rate.")}
    if shifts and not any(r.startswith(BLOCK_SHIFT_KEY) for r in refusals):
        key, rise = max(shifts.items(), key=lambda kv: kv[1])
        summary.append(
            f"no block shift rose more than {cfg.max_block_shift_rise:.1f} grey levels "
            f"(largest change: {key} {rise:+.1f})"
        )
    if rises and not any(r.startswith("harm_rate.") for r in refusals):
        key, rise = max(rises.items(), key=lambda kv: kv[1])
        summary.append(
            f"no harm_rate rose more than {cfg.max_harm_rate_increase * 100:.1f} points "
            f"(largest change: {key} {rise * 100:+.1f})"
        )
    if drops and not any(r.startswith("harm.clean_psnr_y.") for r in refusals):
        key, drop = max(drops.items(), key=lambda kv: kv[1])
        summary.append(
            f"no clean PSNR-Y dropped more than {cfg.max_clean_psnr_drop:.2f} dB "
            f"(largest change: {key} {-drop:+.2f} dB)"
        )
    return summary


def decision_record(
    decision: Decision,
    version: int,
    previous_version: int | None,
    previous_gir: float | None,
) -> dict[str, Any]:
    """The ``champion.*`` entries of ``eval.json`` (keys without the prefix)."""
    record: dict[str, Any] = {
        "promoted": decision.promoted,
        "alias": decision.alias,
        "version": version,
        "previous_version": previous_version,
        "reasons": list(decision.reasons),
    }
    if previous_gir is not None:
        record["previous_gir_score"] = previous_gir
    return record


def champion_decision(
    per_family: Sequence[Mapping[str, Any]],
    version: int,
    previous: int | None,
    cfg: PromotionConfig,
) -> tuple[Decision, float | None]:
    """:func:`decide` for the new ``version`` against the ``previous`` champion (evaluated as
    method ``champion``); a version that already is the champion stays it.

    Returns:
        The decision, and the champion's ``gir_score`` when it was compared (else None).
    """
    new_gir = headline(per_family, MODEL_METHOD)["gir_score"]
    if previous == version:
        return Decision(True, (f"version {previous} is already the champion",)), None
    if previous is None:
        return decide(group_psnr(per_family, MODEL_METHOD), new_gir, None, None, cfg), None
    previous_gir = gir_score(per_family, CHAMPION_METHOD)
    decision = decide(
        group_psnr(per_family, MODEL_METHOD),
        new_gir,
        group_psnr(per_family, CHAMPION_METHOD),
        previous_gir,
        cfg,
        new_harm=harm_metrics(per_family, MODEL_METHOD),
        champion_harm=harm_metrics(per_family, CHAMPION_METHOD),
    )
    return decision, previous_gir
