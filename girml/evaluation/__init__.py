"""GIR evaluation: the benchmark harness, reports, specialists and champion promotion.

:func:`evaluate_and_promote` is the whole ``evaluate`` stage; the pieces are public for reuse:
:func:`evaluate_method` scores any ``uint8 -> uint8`` restorer on the bench, :func:`summarize`
and :func:`headline` aggregate its rows (:func:`harm_metrics`: what it does to clean images and
how often it makes a degraded one worse), :func:`decide` compares a new version with the
champion.
"""

from girml.evaluation.harness import (
    GIR_SUITES,
    MAX_PSNR,
    Bench,
    BenchItem,
    RestoreFn,
    evaluate_baselines,
    evaluate_method,
    fit_pristine_niqe,
    model_restorer,
    scan_bench,
    scan_real,
)
from girml.evaluation.promotion import (
    Decision,
    EvaluationResult,
    SpecialistInputs,
    apply_decision,
    decide,
    evaluate_and_promote,
    group_psnr,
    registered_model,
)
from girml.evaluation.report import (
    HARM_MARGIN_DB,
    best_baselines,
    eval_metrics,
    gir_score,
    harm_metrics,
    harm_rate,
    headline,
    summarize,
    write_outputs,
)
from girml.evaluation.specialists import specialist_spec, train_specialists

__all__ = [
    "GIR_SUITES",
    "HARM_MARGIN_DB",
    "MAX_PSNR",
    "Bench",
    "BenchItem",
    "Decision",
    "EvaluationResult",
    "RestoreFn",
    "SpecialistInputs",
    "apply_decision",
    "best_baselines",
    "decide",
    "eval_metrics",
    "evaluate_and_promote",
    "evaluate_baselines",
    "evaluate_method",
    "fit_pristine_niqe",
    "gir_score",
    "group_psnr",
    "harm_metrics",
    "harm_rate",
    "headline",
    "model_restorer",
    "registered_model",
    "scan_bench",
    "scan_real",
    "specialist_spec",
    "summarize",
    "train_specialists",
    "write_outputs",
]
