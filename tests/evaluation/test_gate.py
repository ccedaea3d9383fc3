"""The promotion gate (girml/evaluation/gate.py): the pure rules that decide whether a new
version becomes ``@champion``, on given numbers."""

from __future__ import annotations

import math

import pytest

from girml.config import PromotionConfig
from girml.evaluation.gate import (
    Decision,
    champion_decision,
    decide,
    decision_record,
    group_psnr,
)
from girml.tracking.versions import CHALLENGER, CHAMPION


def test_decide_rules() -> None:
    cfg = PromotionConfig(min_gir_gain=0.05, max_family_regression=0.25)
    old = {("single-id", "noise"): 30.0, ("single-ood", "noise"): 25.0, ("mixed", "a+b"): 24.0}

    first = decide(old, 5.0, None, None, cfg)
    assert first.promoted and first.alias == CHAMPION and "first model" in first.reasons[0]

    better = {key: v + 0.3 for key, v in old.items()}
    up = decide(better, 5.21, old, 4.90, cfg)
    assert up.promoted and up.alias == CHAMPION
    assert up.reasons[0] == "gir_score 5.21 dB vs champion 4.90 dB: +0.31 >= 0.05"

    regressed = {**better, ("single-ood", "noise"): 25.0 - 0.42}
    down = decide(regressed, 5.21, old, 4.90, cfg)
    assert not down.promoted and down.alias == CHALLENGER
    assert "single-ood/noise regressed 0.42 dB > 0.25" in down.reasons

    flat = decide(old, 4.92, old, 4.90, cfg)
    assert not flat.promoted and flat.reasons[0].endswith("+0.02 < 0.05")

    # unseen-content is not a gir suite: a regression there does not block promotion
    content = {**better, ("unseen-content", "noise"): 10.0}
    assert decide(content, 5.21, {**old, ("unseen-content", "noise"): 30.0}, 4.90, cfg).promoted
    with pytest.raises(ValueError, match="champion_gir"):
        decide(old, 5.0, old, None, cfg)


def test_decide_refuses_more_harm() -> None:
    cfg = PromotionConfig(max_harm_rate_increase=0.05, max_clean_psnr_drop=1.0)
    old = {("single-id", "noise"): 30.0}
    better = {("single-id", "noise"): 31.0}
    champion_harm = {
        "harm_rate.single-id": 0.10,
        "harm_rate.unseen": 0.20,
        "harm.clean_psnr_y.single-id": 45.0,
        "harm.worst_family_gain": 1.0,
    }

    def run(changes: dict[str, float] | None = None) -> Decision:
        new = {**champion_harm, **(changes or {})}
        return decide(better, 5.5, old, 4.5, cfg, new, champion_harm)

    same = run()
    assert same.promoted
    assert "no harm_rate rose more than 5.0 points (largest change: harm_rate.single-id +0.0)" in (
        same.reasons
    )
    assert any(r.startswith("no clean PSNR-Y dropped more than 1.00 dB") for r in same.reasons)

    harmful = run({"harm_rate.unseen": 0.30})
    assert not harmful.promoted and harmful.alias == CHALLENGER
    assert "harm_rate.unseen 30.0% vs champion 20.0%: +10.0 points > 5.0" in harmful.reasons
    assert run({"harm_rate.unseen": 0.25}).promoted  # exactly at the threshold is allowed

    blurry = run({"harm.clean_psnr_y.single-id": 43.5})
    assert not blurry.promoted
    assert (
        "harm.clean_psnr_y.single-id 43.50 dB vs champion 45.00 dB: -1.50 dB, a drop > 1.00"
        in blurry.reasons
    )
    assert run({"harm.clean_psnr_y.single-id": 44.5}).promoted
    # a lower harm rate or a higher clean PSNR never blocks
    assert run({"harm_rate.single-id": 0.0, "harm.clean_psnr_y.single-id": 60.0}).promoted

    # an older champion without harm metrics: the checks are skipped, with a note
    older = decide(better, 5.5, old, 4.5, cfg, {**champion_harm, "harm_rate.unseen": 0.9}, {})
    assert older.promoted
    assert "champion has no harm metrics (older run): harm checks skipped" in older.reasons
    partial = {k: v for k, v in champion_harm.items() if not k.startswith("harm.clean")}
    no_clean = decide(better, 5.5, old, 4.5, cfg, champion_harm, partial)
    assert no_clean.promoted
    assert "champion has no harm.clean_psnr_y.single-id: that check skipped" in no_clean.reasons
    # without harm for the new version (older callers): the rules are the gir and family ones
    assert decide(better, 5.5, old, 4.5, cfg).reasons == same.reasons[:2]


def test_decide_refuses_tile_patches_and_whole_photo_regressions() -> None:
    cfg = PromotionConfig(max_block_shift_rise=1.0, max_family_regression=0.25)
    old = {("single-id", "noise"): 30.0, ("whole", "jpeg"): 33.0}
    champion_harm = {"harm.block_shift.whole": 0.8, "harm.clean_psnr_y.whole": 50.0}

    def run(new_scores: dict, changes: dict[str, float] | None = None) -> Decision:
        return decide(
            new_scores, 5.5, old, 4.5, cfg, {**champion_harm, **(changes or {})}, champion_harm
        )

    better = {("single-id", "noise"): 31.0, ("whole", "jpeg"): 33.0}
    same = run(better)
    assert same.promoted
    assert any(r.startswith("no block shift rose more than 1.0 grey levels") for r in same.reasons)
    patches = run(better, {"harm.block_shift.whole": 12.0})
    assert not patches.promoted
    assert "harm.block_shift.whole 12.0 vs champion 0.8 grey levels: +11.2 > 1.0" in patches.reasons
    assert run(better, {"harm.block_shift.whole": 1.8}).promoted  # at the threshold
    # crops better, whole photos worse: refused (girml restore restores whole photos)
    crops_only = run({("single-id", "noise"): 31.0, ("whole", "jpeg"): 32.0})
    assert not crops_only.promoted
    assert "whole/jpeg regressed 1.00 dB > 0.25" in crops_only.reasons


def _rows(method: str, scores: dict[tuple[str, str], float]) -> list[dict]:
    """``per_family.csv`` rows of ``method``: psnr_y as given, the input 20 dB, no harm."""
    return [
        {
            "method": method,
            "suite": suite,
            "family": family,
            "n": 4,
            "psnr_y": psnr_y,
            "ssim_y": 0.8,
            "psnr_y_input": 20.0,
            "ssim_y_input": 0.6,
            "psnr_gain": psnr_y - 20.0,
            "harm_rate": 0.0,
            "niqe": 7.0,
        }
        for (suite, family), psnr_y in scores.items()
    ]


SCORES = {("single-id", "noise"): 26.0, ("single-ood", "blur"): 24.0, ("unseen", "haze"): 22.0}


def test_group_psnr_keeps_the_degraded_groups_the_gate_compares() -> None:
    rows = _rows("model", {**SCORES, ("single-id", "clean"): 48.0, ("unseen-content", "noise"): 9})
    rows += _rows("champion", {("single-id", "noise"): 1.0})
    assert group_psnr(rows, "model") == SCORES  # no clean family, no unseen-content suite
    assert group_psnr(rows, "champion") == {("single-id", "noise"): 1.0}
    assert group_psnr(rows, "nlm") == {}


def test_champion_decision_from_the_evaluated_rows() -> None:
    cfg = PromotionConfig(min_gir_gain=0.05, max_family_regression=0.25)
    rows = _rows("model", SCORES)
    first, gir = champion_decision(rows, 1, None, cfg)
    assert first.promoted and gir is None and "first model" in first.reasons[0]
    again, gir = champion_decision(rows, 3, 3, cfg)
    assert again == Decision(True, ("version 3 is already the champion",)) and gir is None
    worse = _rows("champion", {key: value - 1.0 for key, value in SCORES.items()})
    up, gir = champion_decision(rows + worse, 4, 3, cfg)
    assert up.promoted and gir is not None and math.isfinite(gir)
    better = _rows("champion", {key: value + 1.0 for key, value in SCORES.items()})
    down, gir = champion_decision(rows + better, 4, 3, cfg)
    assert not down.promoted and down.alias == CHALLENGER
    assert "single-id/noise regressed 1.00 dB > 0.25" in down.reasons


def test_decision_record_is_the_eval_json_champion_entries() -> None:
    decision = Decision(False, ("a", "b"))
    assert decision_record(decision, 4, 3, 2.5) == {
        "promoted": False,
        "alias": CHALLENGER,
        "version": 4,
        "previous_version": 3,
        "reasons": ["a", "b"],
        "previous_gir_score": 2.5,
    }
    first = decision_record(Decision(True, ("first",)), 1, None, None)
    assert first["alias"] == CHAMPION and "previous_gir_score" not in first


def test_decide_refuses_a_model_that_brightens_dim_clean_crops() -> None:
    """Dim is not dark: a clean crop's mean brightness shift (the crop suites' patch metric)
    rising beyond the threshold refuses the model, whatever it gains elsewhere."""
    cfg = PromotionConfig(max_block_shift_rise=1.0)
    old = {("single-id", "lowlight"): 20.0}
    champion_harm = {"harm.block_shift.single-id": 1.2, "harm.clean_psnr_y.single-id": 60.0}
    brightened = {**champion_harm, "harm.block_shift.single-id": 10.6}
    decision = decide(
        {("single-id", "lowlight"): 22.0}, 6.0, old, 4.0, cfg, brightened, champion_harm
    )
    assert not decision.promoted
    assert "harm.block_shift.single-id 10.6 vs champion 1.2 grey levels: +9.4 > 1.0" in (
        decision.reasons
    )
