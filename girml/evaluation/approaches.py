"""The study's approaches (``study.approaches``): train each at equal compute, then restore the
benchmark with it (DVC stages ``approach@<name>`` and ``approach-eval@<name>``).

Kinds (:class:`~girml.config.ApproachConfig`):

- ``unified``: one model for every degradation, the ``model`` section with the approach's
  overrides (``nafnet``, ``prompt_nafnet``, ``plain_cnn``), trained by
  :func:`girml.training.train` with the ``train`` section.
- ``specialists``: one model per training family (every family not held out), each trained on
  that family alone (:func:`girml.evaluation.specialists.train_specialists`). At test time each
  image goes to the specialists of the families its recipe applied, last applied first
  (oracle routing: the benchmark's recipe is the label); families without a specialist (held
  out) and ``clean`` images pass through unchanged.
- ``routed``: a :class:`~girml.models.classifier.DegradationClassifier` trained on fresh
  single-family degradations of the training crops, plus clean crops, names one class per
  image (no label at test time). Each class goes to the method that did best on the validation
  pairs of that family: its specialist (of the approach named by ``specialists``) or one of the
  classical baselines of ``evaluate.baselines``; ``clean`` goes to ``identity``.
- ``release``: the shipped ``models/release``, not trained.

Equal compute. The budget is the ``train`` section's run of the ``model`` section's network:
``train.steps x train.batch_size`` samples of ``F_ref`` forward FLOPs each (a
``train.patch_size`` square, :func:`girml.models.model_stats`). A unified approach whose network
costs ``F`` trains ``round(train.steps x F_ref / F)`` steps; the specialists share the budget,
``1/n`` of it each for ``n`` families. The routed approach uses those specialists and adds its
classifier (``study.classifier_steps``), whose FLOPs ``approach.json`` states.

Files. ``models/approaches/<name>/approach.json`` (:func:`train_approach`: kind, steps, FLOPs,
seconds, parameters) beside the trained weights: a model folder (unified), one model folder
per family (specialists) or ``classifier.safetensors`` (routed). The evaluation writes the
approach's per-image rows (the evaluate stage's columns, method = the approach's name) and its
cost (``seconds_per_megapixel``, ``params``, and the routed approach's table).
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch import nn

from girml.baselines import BASELINES
from girml.config import (
    CLEAN_FAMILY,
    ApproachConfig,
    DegradationsConfig,
    EvaluateConfig,
    ModelConfig,
    TrainConfig,
)
from girml.evaluation.harness import (
    BatchRestoreFn,
    Bench,
    BenchItem,
    MethodRows,
    evaluate_batches,
    fit_pristine_niqe,
    model_restorer,
)
from girml.evaluation.outputs import per_image_csv
from girml.evaluation.report import IDENTITY
from girml.evaluation.specialists import (
    default_specialist_families,
    specialist_spec,
    train_specialists,
)
from girml.imageio import staged_dir, to_tensor, write_text
from girml.metrics import load_lpips, psnr
from girml.models import build_model, model_stats
from girml.models.classifier import DegradationClassifier
from girml.models.release import load_release
from girml.models.store import load_model_dir, save_model_dir
from girml.records import BenchPair, read_jsonl
from girml.training.data import TrainPatches, load_pairs
from girml.training.loop import train

log = logging.getLogger(__name__)

APPROACH_FILE = "approach.json"
CLASSIFIER_FILE = "classifier.safetensors"

RestoreFn = Callable[[np.ndarray], np.ndarray]


# --------------------------------------------------------------------------- compute


def approach_model_config(model_cfg: ModelConfig, approach: ApproachConfig) -> ModelConfig:
    """The ``model`` section with the approach's overrides (validated; errors name the key)."""
    return ModelConfig(**{**model_cfg.model_dump(), **approach.model})


def forward_flops(model_cfg: ModelConfig, patch_size: int) -> int:
    """Forward FLOPs of ``model_cfg``'s network on one ``patch_size`` square."""
    return model_stats(build_model(model_cfg), patch_size, patch_size)["flops"]


def matched_steps(steps: int, reference_flops: int, flops: int, share: int = 1) -> int:
    """Steps of a network of ``flops`` per sample that cost ``1/share`` of ``steps`` steps of
    the reference network (``reference_flops``); at least 1.

    Raises:
        ValueError: a non-positive FLOP count or share.
    """
    if reference_flops <= 0 or flops <= 0 or share < 1:
        raise ValueError(
            f"FLOPs must be > 0 and share >= 1, got {reference_flops}, {flops}, {share}"
        )
    return max(1, round(steps * reference_flops / flops / share))


def _tflop(steps: int, batch: int, flops: int) -> float:
    """Training TFLOPs: forward and backward (3x forward) per sample."""
    return 3 * steps * batch * flops / 1e12


# --------------------------------------------------------------------------- training


def train_approach(
    approach: ApproachConfig,
    model_cfg: ModelConfig,
    train_cfg: TrainConfig,
    spec: DegradationsConfig,
    pairs_dir: Path,
    out_dir: Path,
    work_dir: Path,
    classifier_steps: int,
) -> dict[str, Any]:
    """Train one approach into ``out_dir`` (replaced as a whole, only on success).

    Args:
        approach: the approach.
        model_cfg: the ``model`` section: the reference network of the budget.
        train_cfg: the ``train`` section: the budget and the recipe.
        spec: the degradation spec.
        pairs_dir: the synthesize stage's pairs (``train/``, ``val/``).
        out_dir: ``models/approaches/<name>``.
        work_dir: checkpoints (an interrupted training resumes there).
        classifier_steps: the routed classifier's steps.

    Returns:
        What ``approach.json`` holds: ``kind``, and for trained kinds ``steps`` (per model),
        ``tflop`` (training compute), ``train_seconds``, ``params``, ``val_psnr_gain`` (unified),
        ``families`` (specialists, routed), ``val_accuracy`` (routed).
    """
    reference = forward_flops(model_cfg, train_cfg.patch_size)
    budget = _tflop(train_cfg.steps, train_cfg.batch_size, reference)
    record: dict[str, Any] = {"kind": approach.kind, "budget_tflop": round(budget, 3)}
    with staged_dir(out_dir) as tmp:
        if approach.kind in ("unified", "specialists"):
            record.update(
                _train_networks(
                    approach, model_cfg, train_cfg, spec, pairs_dir, tmp, work_dir, reference
                )
            )
        elif approach.kind == "routed":
            record.update(train_classifier_into(train_cfg, spec, pairs_dir, tmp, classifier_steps))
        write_text(tmp / APPROACH_FILE, json.dumps(record, indent=2) + "\n")
    return record


def _train_networks(
    approach: ApproachConfig,
    model_cfg: ModelConfig,
    train_cfg: TrainConfig,
    spec: DegradationsConfig,
    pairs_dir: Path,
    out: Path,
    work_dir: Path,
    reference: int,
) -> dict[str, Any]:
    """``unified``: one network on every degradation (``out/model``); ``specialists``: one per
    training family (``out/<family>``), the budget split evenly between them."""
    cfg = approach_model_config(model_cfg, approach)
    flops = forward_flops(cfg, train_cfg.patch_size)
    families = default_specialist_families(spec) if approach.kind == "specialists" else []
    steps = matched_steps(train_cfg.steps, reference, flops, share=max(1, len(families)))
    run_cfg = train_cfg.model_copy(update={"steps": steps})
    record: dict[str, Any] = {"model": cfg.type, "steps": steps}
    log.info("training %s (%s) for %d steps: FLOP-matched", approach.kind, cfg.type, steps)
    start = time.perf_counter()
    if families:
        models = train_specialists(cfg, run_cfg, spec, families, pairs_dir, work_dir)
        record["families"] = families
    else:
        result = train(cfg, run_cfg, pairs_dir, work_dir, spec=spec)
        models = {"model": result.model}
        record["val_psnr_gain"] = round(result.metrics["val.psnr_gain"], 4)
    for name, model in models.items():
        save_model_dir(model, cfg, out / name, extra={"train": run_cfg})
    return {
        **record,
        "tflop": round(len(models) * _tflop(steps, train_cfg.batch_size, flops), 3),
        "train_seconds": round(time.perf_counter() - start, 1),
        "params": sum(_params(model) for model in models.values()),
    }


def _params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def classifier_classes(spec: DegradationsConfig) -> list[str]:
    """The routed classifier's classes: ``clean``, then every training family."""
    return [CLEAN_FAMILY, *default_specialist_families(spec)]


def train_classifier(
    train_cfg: TrainConfig,
    spec: DegradationsConfig,
    pairs_dir: Path,
    steps: int,
) -> tuple[DegradationClassifier, list[str], float]:
    """Train the degradation classifier on the training crops.

    Sample ``k`` has class ``k mod C``: a clean crop, or a fresh single-family degradation of
    a crop (the family's in-distribution levels), from the seeded stream of
    :class:`~girml.training.data.TrainPatches` (seed ``train.seed``, patch ``train.patch_size``).
    AdamW at ``train.lr``, batch ``train.batch_size``, cross-entropy, ``steps`` steps.

    Returns:
        ``(classifier in eval mode, classes, accuracy on the single-family and clean validation
        images)`` (accuracy NaN when there are none).
    """
    classes = classifier_classes(spec)
    pairs = load_pairs(Path(pairs_dir) / "train" / "pairs.jsonl")
    size, seed = train_cfg.patch_size, train_cfg.seed
    streams = [TrainPatches(pairs, size, seed, clean_prob=1.0)] + [
        TrainPatches(pairs, size, seed, online_prob=1.0, spec=specialist_spec(spec, family))
        for family in classes[1:]
    ]
    torch.manual_seed(seed)
    model = DegradationClassifier(len(classes))
    optimizer = torch.optim.AdamW(model.parameters(), lr=train_cfg.lr, weight_decay=1e-4)
    n, batch = len(classes), train_cfg.batch_size
    model.train()
    for step in range(steps):
        ks = range(step * batch, (step + 1) * batch)
        x = torch.stack([streams[k % n][k // n][0] for k in ks])
        y = torch.tensor([k % n for k in ks])
        loss = nn.functional.cross_entropy(model(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    model.eval()
    return model, classes, _val_accuracy(model, classes, Path(pairs_dir))


def _val_accuracy(model: DegradationClassifier, classes: Sequence[str], pairs_dir: Path) -> float:
    val = load_pairs(pairs_dir / "val" / "pairs.jsonl")
    images, labels = [], []
    for family, lq, gt in zip(val.families, val.lq, val.gt, strict=True):
        if family in classes:
            images.append(lq)
            labels.append(classes.index(family))
        images.append(gt)  # every GT crop is a clean example
        labels.append(0)
    if not images:
        return math.nan
    with torch.inference_mode():
        hits = [
            classify(model, image) == label for image, label in zip(images, labels, strict=True)
        ]
    return sum(hits) / len(hits)


def classify(model: DegradationClassifier, image: np.ndarray) -> int:
    """The class index the classifier gives an (H,W,3) uint8 image."""
    with torch.inference_mode():
        return int(model(to_tensor(image)).argmax(dim=1)[0])


def train_classifier_into(
    train_cfg: TrainConfig,
    spec: DegradationsConfig,
    pairs_dir: Path,
    out: Path,
    steps: int,
) -> dict[str, Any]:
    """:func:`train_classifier`, its weights saved to ``out/classifier.safetensors``."""
    start = time.perf_counter()
    model, classes, accuracy = train_classifier(train_cfg, spec, pairs_dir, steps)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, out / CLASSIFIER_FILE)
    flops = model_stats(model, train_cfg.patch_size, train_cfg.patch_size)["flops"]
    return {
        "classes": classes,
        "classifier_steps": steps,
        "classifier_tflop": round(_tflop(steps, train_cfg.batch_size, flops), 4),
        "train_seconds": round(time.perf_counter() - start, 1),
        "classifier_params": _params(model),
        "val_accuracy": None if math.isnan(accuracy) else round(accuracy, 4),
    }


def load_classifier(folder: Path) -> tuple[DegradationClassifier, list[str]]:
    """The routed approach's classifier and classes from its folder (never unpickles)."""
    record = read_approach(folder)
    classes = list(record["classes"])
    model = DegradationClassifier(len(classes))
    model.load_state_dict(load_file(folder / CLASSIFIER_FILE))
    return model.eval(), classes


def read_approach(folder: Path) -> dict[str, Any]:
    """``approach.json`` of a trained approach.

    Raises:
        FileNotFoundError: the folder has none (the message says which stage writes it).
    """
    path = Path(folder) / APPROACH_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: run `dvc repro approach@{Path(folder).name}`")
    return json.loads(path.read_text(encoding="utf-8"))


# --------------------------------------------------------------------------- restoring


@dataclass(frozen=True)
class Restorer:
    """An approach ready to run: its batch restorer and its parameter count."""

    restore: BatchRestoreFn
    params: int


def _recipe_families(bench_dir: Path) -> dict[tuple[str, str, str], list[str]]:
    """(suite, family folder, id) -> the families of its recipe's steps, in application order."""
    out = {}
    for jsonl in sorted(Path(bench_dir).glob("*/*/recipes.jsonl")):
        suite, family = jsonl.parent.parent.name, jsonl.parent.name
        for record in read_jsonl(jsonl, BenchPair):
            out[(suite, family, record.id)] = [step.family for step in record.recipe.steps]
    return out


def _each(fn: Callable[[BenchItem, np.ndarray], np.ndarray]) -> BatchRestoreFn:
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


def oracle_restorer(
    specialists: Mapping[str, RestoreFn], bench_dir: Path
) -> Callable[[BenchItem, np.ndarray], np.ndarray]:
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


def load_restorer(
    approach: ApproachConfig,
    folder: Path,
    approaches_dir: Path,
    release_dir: Path,
    bench_dir: Path,
    pairs_dir: Path,
    cfg: EvaluateConfig,
) -> tuple[Restorer, dict[str, Any]]:
    """The approach's restorer and what it chose (the routed table), from its trained folder.

    Args:
        approach: the approach.
        folder: its ``models/approaches/<name>``.
        approaches_dir: ``models/approaches`` (the routed approach's specialists live there).
        release_dir: ``models/release``.
        bench_dir: the benchmark (the oracle reads its recipes).
        pairs_dir: the pairs (the routed table is chosen on ``val/``).
        cfg: ``tile`` and ``baselines`` (the routed approach's classical candidates).
    """
    if approach.kind == "release":
        model = load_release(release_dir)
        fn = model_restorer(model, cfg.tile, cfg.self_ensemble)
        return Restorer(_each(lambda _, lq: fn(lq)), _params(model)), {}
    if approach.kind == "unified":
        read_approach(folder)
        model = load_model_dir(folder / "model")
        fn = model_restorer(model, cfg.tile, cfg.self_ensemble)
        return Restorer(_each(lambda _, lq: fn(lq)), _params(model)), {}
    if approach.kind == "specialists":
        fns, params = _specialists(folder, cfg)
        return Restorer(_each(oracle_restorer(fns, bench_dir)), sum(params.values())), {}
    classifier, classes = load_classifier(folder)
    fns, params = _specialists(approaches_dir / approach.specialists, cfg)
    missing = [family for family in classes[1:] if family not in fns]
    if missing:
        raise ValueError(
            f"{folder}: the classifier knows families {missing} that "
            f"{approaches_dir / approach.specialists} has no specialist for: retrain both"
        )
    baselines = {name: BASELINES.get(name) for name in cfg.baselines if name != IDENTITY}
    candidates = {
        family: {f"specialist:{family}": fns[family], **baselines, IDENTITY: _identity}
        for family in classes[1:]
    }
    table = routing_table(classes, candidates, pairs_dir)
    methods = {family: candidates.get(family, {}).get(name, _identity)
               for family, name in table.items()}  # fmt: skip

    def routed(_: BenchItem, lq: np.ndarray) -> np.ndarray:
        return methods[classes[classify(classifier, lq)]](lq)

    shipped = sum(params[f] for f, name in table.items() if name == f"specialist:{f}")
    return Restorer(_each(routed), _params(classifier) + shipped), {"routing": table}


def _identity(lq: np.ndarray) -> np.ndarray:
    return lq.copy()


def _specialists(folder: Path, cfg: EvaluateConfig) -> tuple[dict[str, RestoreFn], dict[str, int]]:
    """Each family's specialist as a restorer, and its parameter count."""
    record = read_approach(folder)
    models = {family: load_model_dir(folder / family) for family in record["families"]}
    fns = {f: model_restorer(m, cfg.tile, cfg.self_ensemble) for f, m in models.items()}
    return fns, {f: _params(m) for f, m in models.items()}


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
