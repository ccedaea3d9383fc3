"""Interpreting the unified model (DVC stage ``interpret``), after Kong et al.'s GIR study.

:func:`run_interpretation` (:mod:`.report`) writes the whole report from :mod:`.inputs` (what
the stage reads), :mod:`.sections` (the report's sections as plain data) and :mod:`.render` (the
HTML page, from the jinja2 templates in ``templates/``). The pieces are public for reuse:
:mod:`.features` (pooled layer features, Calinski-Harabasz, t-SNE), :mod:`.attribution` (local
attribution maps and the diffusion index), :mod:`.sensitivity` (PSNR gain against degradation
strength) and :mod:`.figures`.
"""

from girml.interpret.attribution import Attribution, diffusion_index, gini, lam, textured_window
from girml.interpret.features import (
    calinski_harabasz,
    feature_layers,
    nearest_seen,
    pooled_features,
    standardize,
    tsne_map,
)
from girml.interpret.report import log_report, run_interpretation, summary_metrics
from girml.interpret.sensitivity import (
    SweepParam,
    main_param,
    model_batch_restorer,
    per_image,
    sensitivity_curve,
    sweep_values,
)

__all__ = [
    "Attribution",
    "SweepParam",
    "calinski_harabasz",
    "diffusion_index",
    "feature_layers",
    "gini",
    "lam",
    "log_report",
    "main_param",
    "model_batch_restorer",
    "nearest_seen",
    "per_image",
    "pooled_features",
    "run_interpretation",
    "sensitivity_curve",
    "standardize",
    "summary_metrics",
    "sweep_values",
    "textured_window",
    "tsne_map",
]
