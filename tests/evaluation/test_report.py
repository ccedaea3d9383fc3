"""Per-image rows to tables, headline and harm metrics (girml.evaluation.report), on hand-made
rows whose numbers can be worked out by hand."""

from __future__ import annotations

import math

import pytest

from girml.evaluation.gate import group_psnr
from girml.evaluation.report import (
    HARM_MARGIN_DB,
    LPIPS_NOT_COMPUTED,
    best_baselines,
    eval_metrics,
    format_table,
    gir_score,
    harm_metrics,
    harm_rate,
    headline,
    summarize,
)
from girml.evaluation.scores import MAX_PSNR


def _group(
    method: str, suite: str, family: str, psnr_y: float, psnr_in: float, harm: float = 0.0
) -> dict:
    return {
        "method": method,
        "suite": suite,
        "family": family,
        "n": 2,
        "psnr_y": psnr_y,
        "ssim_y": 0.5,
        "psnr_y_input": psnr_in,
        "psnr_gain": psnr_y - psnr_in,
        "harm_rate": math.nan if family == "clean" else harm,
        "niqe": 5.0,
    }


def test_headline_keys_and_hand_computed_scores() -> None:
    table = [
        _group("model", "single-id", "noise", 30.0, 24.0),  # gain 6
        _group("model", "single-id", "blur", 28.0, 26.0),  # gain 2
        _group("model", "single-ood", "noise", 25.0, 22.0),  # gain 3
        _group("model", "mixed", "blur+noise", 24.0, 23.0),  # gain 1
        _group("model", "unseen", "rain", 20.0, 20.0),  # gain 0
        _group("model", "unseen-content", "noise", 29.0, 24.0),  # gain 5, not in gir_score
        {**_group("model", "real", "real", math.nan, math.nan), "niqe": 7.0},
        _group("other", "single-id", "noise", 99.0, 24.0),  # another method: ignored
    ]
    head = headline(table, "model")
    suites = ["single-id", "single-ood", "mixed", "unseen", "unseen-content"]
    expected = {f"{m}.{s}" for m in ("psnr_y", "ssim_y", "psnr_gain", "niqe") for s in suites}
    expected |= {f"harm_rate.{s}" for s in suites} | {"harm.worst_family_gain"}
    assert set(head) == expected | {"niqe.real", "gir_score", "generalization_gap"}
    assert head["psnr_y.single-id"] == 29.0 and head["psnr_gain.single-id"] == 4.0
    # mean over the five (suite, family) groups of single-id/ood, mixed, unseen
    assert head["gir_score"] == pytest.approx((6 + 2 + 3 + 1 + 0) / 5)
    # psnr_gain.single-id - mean(psnr_gain.single-ood, psnr_gain.unseen)
    assert head["generalization_gap"] == pytest.approx(4.0 - (3.0 + 0.0) / 2)
    assert head["niqe.real"] == 7.0
    assert gir_score(table, "other") == 75.0
    with pytest.raises(ValueError, match=r"no \(suite, family\) group"):
        gir_score(table, "missing")


def test_clean_family_changes_no_comparable_number() -> None:
    """gir_score, the suite means and the generalization gap ignore the clean family."""
    table = [
        _group("model", "single-id", "noise", 30.0, 24.0),
        _group("model", "single-ood", "noise", 25.0, 22.0),
        _group("model", "unseen", "rain", 20.0, 20.0),
        _group("model", "unseen-content", "noise", 29.0, 24.0),
    ]
    with_clean = [
        *table,
        _group("model", "single-id", "clean", 45.0, MAX_PSNR),
        _group("model", "unseen-content", "clean", 40.0, MAX_PSNR),
    ]
    before, after = headline(table, "model"), headline(with_clean, "model")
    assert after == {
        **before,
        "harm.clean_psnr_y.single-id": 45.0,
        "harm.clean_psnr_y.unseen-content": 40.0,
    }
    assert gir_score(with_clean, "model") == gir_score(table, "model") == pytest.approx(3.0)
    assert group_psnr(with_clean, "model") == group_psnr(table, "model")


def test_harm_keys_on_hand_made_rows() -> None:
    def row(family: str, out: float, inp: float, suite: str = "single-id") -> dict:
        ident = {"method": "m", "suite": suite, "family": family, "id": "0", "source_id": "s"}
        return {**ident, "psnr_y": out, "psnr_y_input": inp, "niqe": math.nan}

    margin = HARM_MARGIN_DB
    rows = [
        row("noise", 30.0, 25.0),  # better
        row("noise", 25.0 - margin / 2, 25.0),  # worse, but within the margin: not harmed
        row("noise", 25.0 - 2 * margin, 25.0),  # harmed
        row("noise", 20.0, 25.0),  # harmed
        row("blur", 26.0, 27.0),  # harmed; blur: 1 of 1
        row("clean", 42.0, MAX_PSNR),  # judged by the clean PSNR, not counted in harm_rate
        row("clean", 44.0, MAX_PSNR),
        row("noise", 10.0, 20.0, suite="single-ood"),
        row("noise", 21.0, 20.0, suite="single-ood"),
        row("real", math.nan, math.nan, suite="real"),
    ]
    assert harm_rate(rows[:4]) == 0.5 and math.isnan(harm_rate(rows[-1:]))
    per_family = summarize(rows)
    rates = {(r["suite"], r["family"]): r["harm_rate"] for r in per_family}
    assert rates[("single-id", "noise")] == 0.5 and rates[("single-id", "blur")] == 1.0
    assert math.isnan(rates[("single-id", "clean")]) and math.isnan(rates[("real", "real")])
    harm = harm_metrics(per_family, "m")
    assert harm == {
        "harm_rate.single-id": pytest.approx(3 / 5),  # images, not families: (2 + 1) / (4 + 1)
        "harm.clean_psnr_y.single-id": 43.0,
        "harm_rate.single-ood": 0.5,
        # noise gains (5 - 0.05 - 0.2 - 5) / 4 = -0.0625 dB, blur -1 dB
        "harm.worst_family_gain": pytest.approx(-1.0),
    }
    assert harm_metrics(per_family, "other") == {}


def test_summarize_means_skip_nan() -> None:
    base = {"method": "m", "suite": "single-id", "family": "noise", "id": "0", "source_id": "s"}
    scores = {"psnr": 20.0, "ssim": 0.5, "psnr_y": 22.0, "ssim_y": 0.6}
    rows = [
        {**base, **scores, "psnr_y_input": 20.0, "ssim_y_input": 0.4, "niqe": 4.0},
        {**base, **scores, "psnr_y": 26.0, "psnr_y_input": 21.0, "ssim_y_input": 0.4},
    ]
    rows[1]["niqe"] = math.nan
    (group,) = summarize(rows)
    assert group["n"] == 2 and group["niqe"] == 4.0
    assert group["psnr_y"] == 24.0 and group["psnr_gain"] == pytest.approx(24.0 - 20.5)


def _table() -> list[dict]:
    """The model, two baselines, identity and one specialist on single-id noise and blur."""
    return [
        _group("model", "single-id", "noise", 30.0, 24.0),
        _group("model", "single-id", "blur", 28.0, 26.0, harm=0.5),
        _group("identity", "single-id", "noise", 24.0, 24.0),
        _group("identity", "single-id", "blur", 26.0, 26.0),
        _group("nlm", "single-id", "noise", 27.0, 24.0),
        _group("nlm", "single-id", "blur", 25.0, 26.0),
        _group("wiener", "single-id", "noise", 27.0, 24.0),  # ties nlm: the first name wins
        _group("wiener", "single-id", "blur", 26.5, 26.0),
        _group("specialist:blur", "single-id", "blur", 29.0, 26.0),
        _group("model", "single-id", "clean", 45.0, MAX_PSNR),
        _group("nlm", "single-id", "clean", 60.0, MAX_PSNR),  # clean: no best baseline
        _group("tool", "single-id", "noise", 25.0, 24.0),
    ]


def test_best_baselines_skip_identity_and_clean_and_break_ties_by_order() -> None:
    best = best_baselines(_table(), ["identity", "nlm", "wiener"])
    assert best == {"noise": ("nlm", 27.0), "blur": ("wiener", 26.5)}
    assert best_baselines(_table(), ["identity"]) == {}
    assert best_baselines(_table(), ["nlm"], suite="unseen") == {}


def test_eval_metrics_name_every_method_under_its_prefix() -> None:
    champion = {"promoted": True, "version": 3, "reasons": ["first"]}
    out = eval_metrics(
        _table(), ["identity", "nlm"], champion, ["blur"], {"tool": ["single-id/noise/0: boom"]}
    )
    assert out["gir_score"] == pytest.approx((6.0 + 2.0) / 2)
    assert out["lpips"] == LPIPS_NOT_COMPUTED
    assert out["baselines.identity.gir_score"] == 0.0
    assert out["baselines.nlm.gir_score"] == pytest.approx((3.0 - 1.0) / 2)
    assert out["specialists.blur.gir_score"] == pytest.approx(3.0)
    assert out["specialists.blur.harm_rate.single-id"] == 0.0
    assert out["best_baseline.noise.name"] == "nlm" and out["best_baseline.noise.psnr_y"] == 27.0
    assert out["methods.tool.gir_score"] == pytest.approx(1.0)
    assert out["methods.tool.failed"] == 1
    assert out["methods.tool.errors"] == ["single-id/noise/0: boom"]
    assert {k: v for k, v in out.items() if k.startswith("champion.")} == {
        "champion.promoted": True,
        "champion.version": 3,
        "champion.reasons": ["first"],
    }
    with pytest.raises(ValueError, match=r"no \(suite, family\) group"):
        eval_metrics(_table(), ["missing"], champion)


def test_format_table_lists_each_group_with_a_column_per_method() -> None:
    lines = format_table(_table(), ["model", "nlm"]).splitlines()
    assert lines[0].split() == ["psnr_y", "(dB)", "model", "nlm"]
    assert lines[1].split() == ["single-id/noise", "30.00", "27.00"]
    assert lines[2].split() == ["single-id/blur", "28.00", "25.00"]
    assert lines[3].split() == ["single-id/clean", "45.00", "60.00"]
    assert "nan" in format_table(_table(), ["model", "specialist:blur"]).splitlines()[1]
