"""The method names of one-family specialists in the evaluation tables.

Specialists are trained by :mod:`girml.training.specialists`; the harness scores each one as
method ``specialist:<family>`` (:func:`specialist_method`), and ``eval.json`` reports it under
``specialists.<family>.`` (:func:`girml.evaluation.report.eval_metrics`).
"""

from __future__ import annotations

SPECIALIST_PREFIX = "specialist:"


def specialist_method(family: str) -> str:
    """The ``method`` name of a family's specialist in the evaluation tables."""
    return f"{SPECIALIST_PREFIX}{family}"
