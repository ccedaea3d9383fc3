"""Which restorer each benchmark image goes to, for the study's multi-network approaches.

- Oracle routing (the ``specialists`` approach): each image goes to the specialists of the
  families its recipe applied, last applied first (the benchmark's recipe is the label);
  families without a specialist (held out) and ``clean`` images pass through unchanged.
- Classifier routing (the ``routed`` approach): the degradation classifier
  (:mod:`girml.training.classifier`) names one class per image, with no label. Each class goes
  to the method that did best on the validation pairs of that family (:func:`routing_table`):
  its specialist or one of the classical baselines; ``clean`` goes to ``identity``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from girml.baselines import BASELINES
from girml.config import CLEAN_FAMILY
from girml.data.records import BenchPair, read_jsonl
from girml.evaluation.bench import BenchItem
from girml.evaluation.report import IDENTITY
from girml.evaluation.restorers import BatchRestoreFn, RestoreFn
from girml.evaluation.specialists import specialist_method
from girml.metrics import psnr
from girml.models.classifier import DegradationClassifier
from girml.training.classifier import classify
from girml.training.data import load_pairs

log = logging.getLogger(__name__)

# (the benchmark image, its input) -> its output
ItemRestoreFn = Callable[[BenchItem, np.ndarray], np.ndarray]


def each(fn: ItemRestoreFn) -> BatchRestoreFn:
    """A batch restorer calling ``fn(item, lq)`` per image, keeping each image's exception."""

    def restore(items: Sequence[BenchItem], lqs: Sequence[np.ndarray]) -> list[Any]:
        outcomes: list[Any] = []
        for item, lq in zip(items, lqs, strict=True):
            try:
                outcomes.append(fn(item, lq))
            except Exception as exc:  # reported for this image; the others go on
                outcomes.append(exc)
        return outcomes

    return restore


def identity(lq: np.ndarray) -> np.ndarray:
    """The input, unchanged (a copy)."""
    return lq.copy()


def _recipe_families(bench_dir: Path) -> dict[tuple[str, str, str], list[str]]:
    """(suite, family folder, id) -> the families of its recipe's steps, in application order."""
    out = {}
    for jsonl in sorted(Path(bench_dir).glob("*/*/recipes.jsonl")):
        suite, family = jsonl.parent.parent.name, jsonl.parent.name
        for record in read_jsonl(jsonl, BenchPair):
            out[(suite, family, record.id)] = [step.family for step in record.recipe.steps]
    return out


def oracle_restorer(specialists: Mapping[str, RestoreFn], bench_dir: Path) -> ItemRestoreFn:
    """Undo each image's recipe with the specialists, last applied family first (a family
    without a specialist, and an image without a recipe, pass through)."""
    recipes = _recipe_families(bench_dir)

    def restore(item: BenchItem, lq: np.ndarray) -> np.ndarray:
        out = lq
        for family in reversed(recipes.get((item.suite, item.family, item.id), [])):
            if family in specialists:
                out = specialists[family](out)
        return out

    return restore


def routing_table(
    classes: Sequence[str],
    candidates: Mapping[str, Mapping[str, RestoreFn]],
    pairs_dir: Path,
) -> dict[str, str]:
    """Per class, the candidate method with the highest mean PSNR-Y gain on the validation pairs
    of that family alone; ``clean`` -> ``identity``; a family without validation pairs -> its
    first candidate.

    Args:
        classes: the classifier's classes.
        candidates: family -> {method name: restorer}, in preference order on ties.
        pairs_dir: holds ``val/pairs.jsonl``.
    """
    val = load_pairs(Path(pairs_dir) / "val" / "pairs.jsonl")
    table = {CLEAN_FAMILY: IDENTITY}
    for family in classes:
        if family == CLEAN_FAMILY:
            continue
        options = candidates[family]
        chosen = [i for i, f in enumerate(val.families) if f == family]
        if not chosen:
            table[family] = next(iter(options))
            continue
        inputs = [psnr(val.lq[i], val.gt[i], 0, test_y=True) for i in chosen]
        gains = {
            name: float(
                np.mean([psnr(fn(val.lq[i]), val.gt[i], 0, test_y=True) for i in chosen])
                - np.mean(inputs)
            )
            for name, fn in options.items()
        }
        table[family] = max(gains, key=lambda name: gains[name])  # first of equals wins
        log.info("routed: %s -> %s (validation gains %s)", family, table[family], gains)
    return table


def routed_restorer(
    classifier: DegradationClassifier,
    classes: Sequence[str],
    specialists: Mapping[str, RestoreFn],
    baselines: Sequence[str],
    pairs_dir: Path,
) -> tuple[ItemRestoreFn, dict[str, str]]:
    """The routed approach: the classifier's class of each image picks its method.

    Candidates per family: its specialist (``specialist:<family>``), every baseline of
    ``baselines`` but ``identity``, then ``identity``; :func:`routing_table` picks one.

    Args:
        classifier: the degradation classifier, in eval mode.
        classes: its classes (``clean`` first).
        specialists: family -> its specialist; every family of ``classes[1:]`` must have one.
        baselines: names in :data:`girml.baselines.BASELINES` (``evaluate.baselines``).
        pairs_dir: holds ``val/pairs.jsonl`` (the table is chosen there).

    Returns:
        ``(fn(item, lq), the routing table)``: class -> method name.
    """
    classical = {name: BASELINES.get(name) for name in baselines if name != IDENTITY}
    candidates = {
        family: {specialist_method(family): specialists[family], **classical, IDENTITY: identity}
        for family in classes[1:]
    }
    table = routing_table(classes, candidates, pairs_dir)
    methods = {family: candidates.get(family, {}).get(name, identity)
               for family, name in table.items()}  # fmt: skip

    def routed(_: BenchItem, lq: np.ndarray) -> np.ndarray:
        return methods[classes[classify(classifier, lq)]](lq)

    return routed, table
