"""Section 5 of the interpretation report: the evaluate stage's generalization and harm tables.

Read from ``metrics/eval.json``: metrics per suite, the GIR score and generalization gap, the
harm rates and the champion decision.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from girml.evaluation.bench import GIR_SUITES
from girml.evaluation.report import HARM_MARGIN_DB
from girml.evaluation.scores import MAX_PSNR
from girml.interpret.sections import Section, format_value

_SUITE_ORDER = (*GIR_SUITES, "unseen-content")


def generalization_section(eval_metrics: Mapping[str, Any] | None) -> Section:
    """Section 5: the generalization table of ``eval.json`` (suites x metrics, harm, decision)."""
    sec = Section("generalization", "Generalization")
    if eval_metrics is None:
        sec.unavailable("metrics/eval.json is missing: run `dvc repro evaluate`")
        return sec
    metrics = ("psnr_y", "ssim_y", "psnr_gain", "niqe", "lpips")
    suites = sorted(
        {k.split(".", 1)[1] for k in eval_metrics if k.split(".", 1)[0] in metrics and "." in k},
        key=lambda s: (_SUITE_ORDER.index(s) if s in _SUITE_ORDER else len(_SUITE_ORDER), s),
    )
    table = {s: {m: eval_metrics.get(f"{m}.{s}") for m in metrics} for s in suites}
    summary = {k: eval_metrics.get(k) for k in ("gir_score", "generalization_gap")}
    champion = {
        k[len("champion.") :]: v for k, v in eval_metrics.items() if k.startswith("champion.")
    }
    others = {k: v for k, v in eval_metrics.items() if k.endswith(".gir_score")}
    harm = {
        s: {"harm_rate": eval_metrics.get(f"harm_rate.{s}"), "clean_psnr_y": clean}
        for s in suites
        if (clean := eval_metrics.get(f"harm.clean_psnr_y.{s}")) is not None
        or f"harm_rate.{s}" in eval_metrics
    }
    worst = eval_metrics.get("harm.worst_family_gain")
    sec.data.update({"suites": table, **summary, "champion": champion, "gir_scores": others})
    sec.data["harm"] = {"suites": harm, "worst_family_gain": worst}
    sec.table(["suite", *metrics], [[s, *(table[s][m] for m in metrics)] for s in suites])
    sec.table(["metric", "value"], [[k, v] for k, v in {**summary, **others}.items()])
    if harm:
        sec.para(
            f"Harm: harm rate = fraction of degraded images made more than {HARM_MARGIN_DB:g} "
            f"dB worse; clean PSNR-Y = output against the clean input ({MAX_PSNR:g} dB = "
            f"unchanged); worst family gain (single-id) = {format_value(worst)} dB."
        )
        sec.table(
            ["suite", "harm rate", "clean PSNR-Y (dB)"],
            [[s, h["harm_rate"], h["clean_psnr_y"]] for s, h in harm.items()],
        )
    if champion:
        sec.table(["champion decision", "value"], [[k, v] for k, v in champion.items()])
    return sec
