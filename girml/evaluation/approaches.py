"""Restoring and scoring the study's approaches (DVC stage ``approach-eval@<name>``).

Each trained approach (:mod:`girml.training.approaches`) becomes one batch restorer
(:func:`load_restorer`): the ``unified`` and ``release`` networks restore each image, the
``specialists`` are routed by the image's recipe and the ``routed`` approach by its classifier
(:mod:`girml.evaluation.routing`). :func:`evaluate_approach` scores it on every benchmark image
as the evaluate stage scores its methods: per-image rows (the evaluate stage's columns, method =
the approach's name) and its cost (``seconds_per_megapixel``, ``params``, and the routed
approach's table), which :func:`write_approach_outputs` writes.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from torch import nn

from girml.config import ApproachConfig, EvaluateConfig
from girml.core.imageio import staged_dir, write_text
from girml.evaluation.bench import Bench, BenchItem
from girml.evaluation.harness import MethodRows, evaluate_batches
from girml.evaluation.outputs import per_image_csv
from girml.evaluation.restorers import BatchRestoreFn, ModelLoader, RestoreFn, model_restorer
from girml.evaluation.routing import each, oracle_restorer, routed_restorer
from girml.evaluation.scores import fit_pristine_niqe
from girml.evaluation.specialists import specialist_method
from girml.metrics import load_lpips
from girml.training.approaches import APPROACH_FILE, CLASSIFIER_FILE, param_count, read_approach
from girml.training.classifier import load_classifier


@dataclass(frozen=True)
class Restorer:
    """An approach ready to run: its batch restorer and its parameter count."""

    restore: BatchRestoreFn
    params: int


def load_restorer(
    approach: ApproachConfig,
    folder: Path,
    approaches_dir: Path,
    release_dir: Path,
    bench_dir: Path,
    pairs_dir: Path,
    cfg: EvaluateConfig,
    load_model: ModelLoader,
) -> tuple[Restorer, dict[str, Any]]:
    """The approach's restorer and what it chose (the routed table), from its trained folder.

    Args:
        approach: the approach.
        folder: its ``models/approaches/<name>``.
        approaches_dir: ``models/approaches`` (the routed approach's specialists live there).
        release_dir: ``models/release``.
        bench_dir: the benchmark (the oracle reads its recipes).
        pairs_dir: the pairs (the routed table is chosen on ``val/``).
        cfg: ``tile``, ``self_ensemble`` and ``baselines`` (the routed approach's classical
            candidates).
        load_model: reads a model folder or the release folder into a network.

    Raises:
        FileNotFoundError: no ``approach.json`` (the message names the stage to run).
        ValueError: a routed classifier that knows a family its specialists do not cover.
    """
    if approach.kind == "release":
        return _single(load_model(str(release_dir)), cfg), {}
    if approach.kind == "unified":
        read_approach(folder)
        return _single(load_model(str(folder / "model")), cfg), {}
    if approach.kind == "specialists":
        fns, params = _specialists(folder, cfg, load_model)
        return Restorer(each(oracle_restorer(fns, bench_dir)), sum(params.values())), {}
    classes = list(read_approach(folder)["classes"])
    classifier = load_classifier(folder / CLASSIFIER_FILE, len(classes), folder / APPROACH_FILE)
    fns, params = _specialists(approaches_dir / approach.specialists, cfg, load_model)
    missing = [family for family in classes[1:] if family not in fns]
    if missing:
        raise ValueError(
            f"{folder}: the classifier knows families {missing} that "
            f"{approaches_dir / approach.specialists} has no specialist for: retrain both"
        )
    routed, table = routed_restorer(classifier, classes, fns, cfg.baselines, pairs_dir)
    shipped = sum(params[f] for f, name in table.items() if name == specialist_method(f))
    return Restorer(each(routed), param_count(classifier) + shipped), {"routing": table}


def _single(model: nn.Module, cfg: EvaluateConfig) -> Restorer:
    """One network restoring every image."""
    fn = model_restorer(model, cfg.tile, cfg.self_ensemble)
    return Restorer(each(lambda _, lq: fn(lq)), param_count(model))


def _specialists(
    folder: Path, cfg: EvaluateConfig, load_model: ModelLoader
) -> tuple[dict[str, RestoreFn], dict[str, int]]:
    """Each family's specialist as a restorer, and its parameter count."""
    record = read_approach(folder)
    models = {family: load_model(str(folder / family)) for family in record["families"]}
    fns = {f: model_restorer(m, cfg.tile, cfg.self_ensemble) for f, m in models.items()}
    return fns, {f: param_count(m) for f, m in models.items()}


def evaluate_approach(
    name: str,
    restorer: Restorer,
    bench_dir: Path,
    clean_dir: Path,
    cfg: EvaluateConfig,
) -> tuple[MethodRows, dict[str, Any]]:
    """Score an approach on every benchmark image, as the evaluate stage scores its methods.

    Returns:
        ``(rows and failures, cost)``: ``cost`` = ``seconds_per_megapixel`` (restoring time over
        the inputs' megapixels, this machine) and ``params``.
    """
    bench = Bench(bench_dir)
    niqe = fit_pristine_niqe(Path(clean_dir), cfg.niqe_patch_size)
    lpips = load_lpips(Path(cfg.lpips_weights) if cfg.lpips_weights else None)
    spent = {"seconds": 0.0, "pixels": 0}

    def timed(items: Sequence[BenchItem], lqs: Sequence[np.ndarray]) -> list[Any]:
        start = time.perf_counter()
        out = restorer.restore(items, lqs)
        spent["seconds"] += time.perf_counter() - start
        spent["pixels"] += sum(lq.shape[0] * lq.shape[1] for lq in lqs)
        return out

    result = evaluate_batches(timed, bench, cfg, niqe, lpips, method=name)
    megapixels = spent["pixels"] / 1e6
    cost = {
        "seconds_per_megapixel": round(spent["seconds"] / megapixels, 4) if megapixels else None,
        "params": restorer.params,
    }
    return result, cost


def write_approach_outputs(
    rows: Sequence[Mapping[str, Any]],
    cost: Mapping[str, Any],
    out_dir: Path,
    rows_name: str,
    cost_name: str,
) -> None:
    """``out_dir/<rows_name>`` (the per-image CSV) and ``out_dir/<cost_name>`` (JSON), replacing
    the folder as a whole."""
    with staged_dir(out_dir) as tmp:
        write_text(tmp / rows_name, per_image_csv(rows))
        write_text(tmp / cost_name, json.dumps(dict(cost), indent=2) + "\n")
