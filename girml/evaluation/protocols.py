"""Scoring a protocol: every restorer run on its rows as the evaluate stage runs it, every output
scored by the protocol's metric convention.

The rows and their inputs come from :func:`girml.evaluation.protocol_inputs.build_rows`.
:func:`run_protocol` hands them to each restorer in batches of one row
(:data:`girml.evaluation.restorers.BatchRestoreFn`, the type every evaluate restorer has: the
model, ``identity`` for the degraded input itself, and ``evaluate.methods``) and scores each
output with :func:`girml.metrics.conventions.score_pair`; a ``real`` set without ground truth
with NIQE.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from girml.config import ProtocolSpec
from girml.evaluation.bench import BenchItem
from girml.evaluation.methods import MethodError
from girml.evaluation.protocol_inputs import Row, RowImage
from girml.evaluation.restorers import BatchRestoreFn, usable_output
from girml.evaluation.scores import MAX_PSNR, niqe_or_nan
from girml.metrics import NiqeModel
from girml.metrics.conventions import get_convention, score_pair

log = logging.getLogger(__name__)

# inputs handed to a restorer at once (a command method runs once per batch)
BATCH = 32
MODEL_METHOD = "model"
INPUT_METHOD = "identity"  # the degraded input itself, scored as a method


def _item(protocol: str, row: Row, image: RowImage) -> BenchItem:
    """The harness's description of an image, for restorers (a command names files by id)."""
    return BenchItem(protocol, row.name, image.id, "", "", image.path, None)


class _Scores:
    """Per-image scores of one (method, row), reduced to means at the end."""

    def __init__(self) -> None:
        self.values: dict[str, list[float]] = {}

    def add(self, scores: Mapping[str, float]) -> None:
        for key, value in scores.items():
            self.values.setdefault(key, []).append(value)

    def means(self) -> dict[str, float | int]:
        out: dict[str, float | int] = {}
        for key, values in self.values.items():
            finite = [v for v in values if math.isfinite(v)]
            out[key] = round(float(np.mean(finite)), 6) if finite else math.nan
        out["n"] = max((len(v) for v in self.values.values()), default=0)
        return out


def _score(
    row: Row, out: np.ndarray, gt: np.ndarray | None, niqe: NiqeModel | None
) -> dict[str, float]:
    if row.convention is None:
        assert niqe is not None
        return {"niqe": niqe_or_nan(out, niqe, f"{row.name} output")}
    assert gt is not None
    scores = score_pair(out, gt, row.convention)
    return {"psnr": min(scores["psnr"], MAX_PSNR), "ssim": scores["ssim"]}


def _check_first(name: str, restore: BatchRestoreFn, protocol: str, rows: Sequence[Row]) -> None:
    """Run an outside method on the protocol's first image before anything is scored."""
    row = next((r for r in rows if r.images), None)
    if row is None:
        return
    image = row.images[0]
    lq, _ = image.load()
    outcomes = restore([_item(protocol, row, image)], [lq])
    out = usable_output(outcomes[0], lq, name, image.path) if outcomes else None
    if out is None or isinstance(out, Exception):
        reason = "no output" if out is None else f"{type(out).__name__}: {out}"
        raise MethodError(f"method {name!r} failed on {row.name}/{image.id}: {reason}")


def _restore_chunk(
    protocol: str,
    method: str,
    restore: BatchRestoreFn,
    row: Row,
    chunk: Sequence[RowImage],
    scores: _Scores,
    niqe_model: NiqeModel | None,
) -> list[str]:
    """Restore one batch of a row's images with one method and add their scores; returns the
    images it gave no usable output for (``"<row>/<id>: <why>"``)."""
    loaded = [image.load() for image in chunk]
    items = [_item(protocol, row, image) for image in chunk]
    outcomes = restore(items, [lq for lq, _ in loaded])
    if len(outcomes) != len(chunk):
        raise ValueError(f"method {method!r} gave {len(outcomes)} outputs for {len(chunk)} images")
    failed = []
    for image, (lq, gt), outcome in zip(chunk, loaded, outcomes, strict=True):
        out = usable_output(outcome, lq, method, image.path)
        if isinstance(out, Exception):
            failed.append(f"{row.name}/{image.id}: {type(out).__name__}: {out}")
            log.warning("method %r: no output for %s", method, failed[-1])
        else:
            scores.add(_score(row, out, gt, niqe_model))
    return failed


def run_protocol(
    name: str,
    spec: ProtocolSpec,
    rows: Sequence[Row],
    restorers: Mapping[str, BatchRestoreFn],
    outside: Sequence[str] = (),
    niqe: Callable[[], NiqeModel] | None = None,
) -> dict[str, Any]:
    """Restore and score every row's images with every restorer.

    Args:
        name: the protocol's name.
        spec: the protocol.
        rows: from :func:`girml.evaluation.protocol_inputs.build_rows`.
        restorers: method name -> batch restorer, in the order the results list them.
        outside: the names among ``restorers`` that are ``evaluate.methods``: an image one of
            them gives no usable output for is listed under ``errors`` and left out of its means
            (the others' failures raise).
        niqe: makes the NIQE pristine model, called once if a row has no ground truth.

    Returns:
        ``{"protocol", "convention", "sets": {row: {"set", "input", "convention", "n",
        "methods": {method: {"psnr", "ssim", "n"}}}}, "no_reference": {row: {"set", "input",
        "n", "methods": {method: {"niqe", "n"}}}}, "errors": {method: [...]}, ...}``; PSNR
        clipped to :data:`~girml.evaluation.scores.MAX_PSNR`, means rounded to 6 decimals.

    Raises:
        MethodError: an outside method fails on the first image, or on every image.
        RuntimeError, ValueError: the model or ``identity`` fails on an image.
    """
    for method in outside:
        _check_first(method, restorers[method], name, rows)
    needs_niqe = any(row.convention is None for row in rows)
    niqe_model = niqe() if needs_niqe and niqe is not None else None
    if needs_niqe and niqe_model is None:
        raise ValueError(f"protocol {name}: a row without ground truth needs a NIQE model")
    results: dict[str, dict[str, _Scores]] = {row.name: {} for row in rows}
    errors: dict[str, list[str]] = {method: [] for method in outside}
    total = sum(len(row.images) for row in rows)
    with torch.inference_mode():
        for method, restore in restorers.items():
            with tqdm(total=total, desc=f"{name} {method}", unit="img", leave=False) as bar:
                for row in rows:
                    scores = results[row.name].setdefault(method, _Scores())
                    for start in range(0, len(row.images), BATCH):
                        chunk = row.images[start : start + BATCH]
                        failed = _restore_chunk(
                            name, method, restore, row, chunk, scores, niqe_model
                        )
                        if failed and method not in errors:
                            raise RuntimeError(f"method {method!r} failed on {failed[0]}")
                        errors.get(method, []).extend(failed)
                        bar.update(len(chunk))
    for method, failed in errors.items():
        if failed and all(not results[r.name][method].values for r in rows):
            raise MethodError(f"method {method!r} failed on every image; the first: {failed[0]}")
    return _report(name, spec, rows, results, errors)


def _report(
    name: str,
    spec: ProtocolSpec,
    rows: Sequence[Row],
    results: Mapping[str, Mapping[str, _Scores]],
    errors: Mapping[str, list[str]],
) -> dict[str, Any]:
    full: dict[str, Any] = {}
    none: dict[str, Any] = {}
    for row in rows:
        entry = {
            "set": row.set,
            "input": row.input,
            "n": len(row.images),
            # a method with no usable output on this row has no entry (its errors say why)
            "methods": {m: s.means() for m, s in results[row.name].items() if s.values},
        }
        if row.convention is None:
            none[row.name] = entry
        else:
            full[row.name] = {**entry, "convention": row.convention.name}
    return {
        "protocol": name,
        "convention": spec.convention,
        "reference": get_convention(spec.convention).reference,
        "noise_seed": spec.noise_seed,
        "seed": spec.seed,
        "sets": full,
        "no_reference": none,
        "errors": {method: failed for method, failed in errors.items() if failed},
    }
