"""Recording a champion decision: the registry's alias and the new version's MLflow run.

:func:`apply_decision` points ``@champion`` (with the reason, :func:`set_champion`) or
``@challenger`` at the new version and adds the decision and the evaluation to the run that
trained it, through :func:`girml.tracking.runs.log_to_run`. The ``evaluate`` stage calls it
with what :func:`girml.artifacts.promotion.evaluate_and_promote` returned.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from girml.evaluation.gate import Decision
from girml.tracking.registry import set_champion
from girml.tracking.runs import log_to_run
from girml.tracking.versions import REGISTERED_MODEL, set_alias

log = logging.getLogger(__name__)


def apply_decision(
    decision: Decision,
    version: int,
    run_id: str,
    metrics: Mapping[str, Any],
    previous_version: int | None,
    artifacts: Sequence[Path] = (),
) -> None:
    """Record a decision in the (already configured) MLflow registry and the version's run.

    Points ``@champion`` (promoted) or ``@challenger`` at ``version``, then appends to run
    ``run_id``: tags ``champion.promoted`` (``true``/``false``), ``champion.alias``,
    ``champion.previous_version`` and ``champion.reasons`` (one per line); every numeric value
    of ``metrics`` as a metric (booleans as 0/1); and ``artifacts`` under ``evaluation/``.
    Tags, not params, hold the decision: params are immutable and a re-evaluation may decide
    differently.

    Args:
        decision: the outcome of :func:`~girml.evaluation.gate.decide`.
        version: the new model version in :data:`~girml.tracking.versions.REGISTERED_MODEL`.
        run_id: the MLflow run that trained and registered it.
        metrics: e.g. the ``eval.json`` content; non-numeric values are skipped.
        previous_version: the champion before the decision, or None.
        artifacts: files to attach (e.g. ``eval.json``, ``per_family.csv``).
    """
    if decision.promoted:
        set_champion(version, "; ".join(decision.reasons)[:1000])
    else:
        set_alias(REGISTERED_MODEL, decision.alias, version)
    tags = {
        "champion.promoted": str(decision.promoted).lower(),
        "champion.alias": decision.alias,
        "champion.previous_version": "none" if previous_version is None else str(previous_version),
        "champion.reasons": "\n".join(decision.reasons),
    }
    numeric = {
        key: float(value)
        for key, value in metrics.items()
        if isinstance(value, int | float) and math.isfinite(value)
    }
    log_to_run(
        run_id, tags=tags, metrics=numeric, artifact_files=artifacts, artifact_path="evaluation"
    )
    log.info("champion decision for version %d: %s", version, decision.alias)
