"""The whole-photo suite: whole test photos, restored the way ``girml restore`` restores them.

The crop suites (128-256 px) fit in one tile, so they never see what tiling does to a photo.
The ``whole`` suite (:data:`~girml.data.synthesize.WHOLE_SUITE`, written by the synthesize
stage) holds the test photos at full size, clean and under each trained family. The model and
the champion restore them through :func:`girml.core.inference.restore_image` with the settings of
``girml restore`` by default (tiles of :data:`~girml.config.RESTORE_TILE` pixels, overlap
:data:`~girml.config.RESTORE_OVERLAP`, no self-ensemble). Their rows carry the patch metric
``block_shift`` (:func:`girml.metrics.block_shift`); the report turns it into
``harm.block_shift.whole`` and the promotion gate compares it (DESIGN.md, "Benchmark suites").
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from torch import nn

from girml.config import RESTORE_OVERLAP, RESTORE_TILE, EvaluateConfig
from girml.data.synthesize import WHOLE_SUITE
from girml.evaluation.bench import Bench
from girml.evaluation.costs import RestoreCost
from girml.evaluation.harness import evaluate_method
from girml.evaluation.restorers import RestoreFn, model_restorer
from girml.metrics import LpipsMetric, NiqeModel


def has_whole_suite(bench_dir: Path) -> bool:
    """Whether the benchmark folder holds the whole-photo suite."""
    return (Path(bench_dir) / WHOLE_SUITE).is_dir()


def restore_restorer(model: nn.Module) -> RestoreFn:
    """``model`` as ``girml restore`` runs it by default: tiles of ``RESTORE_TILE`` overlapping
    by ``RESTORE_OVERLAP`` pixels, photo-level pooling, no self-ensemble."""
    return model_restorer(model, RESTORE_TILE, overlap=RESTORE_OVERLAP)


def evaluate_whole(
    models: dict[str, nn.Module],
    bench: Bench,
    cfg: EvaluateConfig,
    niqe_model: NiqeModel,
    lpips: LpipsMetric | None,
    costs: Mapping[str, RestoreCost] | None = None,
) -> list[dict[str, Any]]:
    """Rows of each model (``{method: network}``) on the whole-photo suite of ``bench``.

    Args:
        models: the networks to score, by method name (``model``, ``champion``).
        bench: a :class:`~girml.evaluation.bench.Bench` of the whole suite (``whole=True``).
        cfg: the ``evaluate`` section (``crop_border``; its real photos are not scored again).
        niqe_model: the NIQE pristine model.
        lpips: the LPIPS metric, or None.
        costs: method -> where its restoring time is added up (methods not in it are not
            timed).

    Returns:
        The rows of :func:`~girml.evaluation.harness.evaluate_method`, with ``block_shift``.
    """
    crops_only = cfg.model_copy(update={"real_dir": None})
    rows: list[dict[str, Any]] = []
    for method, model in models.items():
        fn = restore_restorer(model)
        if costs is not None and method in costs:
            fn = costs[method].timed(fn)
        rows += evaluate_method(fn, bench, crops_only, niqe_model, lpips, method=method)
    return rows
