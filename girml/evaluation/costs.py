"""What restoring costs: wall-clock seconds per megapixel of input, and parameter counts.

The evaluate stage wraps each method's restorer in a :class:`RestoreCost`
(:meth:`RestoreCost.timed`, :meth:`RestoreCost.timed_batch`), which adds up the seconds spent
inside the restorer and the megapixels of the inputs it was handed. Scoring is not timed. With
the self-ensemble on, an input counts once, whatever the number of views: the figure is
seconds per megapixel of input, as evaluated.

:func:`write_method_costs` writes them to ``metrics/method_costs.json``, apart from
``eval.json`` and the CSVs because timings differ from run to run. Per method::

    {"seconds": 1.23, "megapixels": 0.4096, "images": 100, "seconds_per_megapixel": 3.003,
     "params": 67212, "self_ensemble": 8, "tile": null, "threads": 8,
     "whole": {...}}

``params`` is the network's parameter count, 0 for a classical baseline (no learned
parameters) and null where nothing can be counted (an outside program or function);
``self_ensemble`` the views averaged per input (1: none), ``tile`` the tile side (null: whole
images), ``threads`` torch's CPU threads. The model and the champion also restore the
whole-photo suite the way ``girml restore`` does: ``whole`` holds that timing (with ``tile`` and
``overlap``). ``per_image_sha256`` ties the file to the ``per_image.csv`` of the same run.

:func:`read_method_costs` gives the study stage each method's
:class:`~girml.evaluation.leaderboard.Cost` and a sentence on how they were measured.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from girml.core.hashing import file_digest
from girml.core.imageio import write_text
from girml.evaluation.bench import BenchItem
from girml.evaluation.leaderboard import Cost
from girml.evaluation.restorers import BatchRestoreFn, RestoreFn

log = logging.getLogger(__name__)

METHOD_COSTS_FILE = "method_costs.json"
_DIGEST_KEY = "per_image_sha256"
_METHODS_KEY = "methods"


def _pixels(image: np.ndarray) -> int:
    return int(image.shape[0]) * int(image.shape[1])


@dataclass
class RestoreCost:
    """Seconds spent restoring and pixels restored, added up over the calls of a wrapped
    restorer.

    Attributes:
        seconds: wall-clock seconds inside the restorer.
        pixels: the inputs' height x width, summed (an input counts once).
        images: inputs handed to the restorer.
    """

    seconds: float = 0.0
    pixels: int = 0
    images: int = 0

    @property
    def megapixels(self) -> float:
        """``pixels / 1e6``."""
        return self.pixels / 1e6

    @property
    def seconds_per_megapixel(self) -> float | None:
        """``seconds / megapixels``; None before any pixel was restored."""
        return self.seconds / self.megapixels if self.pixels else None

    def _add(self, start: float, images: Sequence[np.ndarray]) -> None:
        self.seconds += time.perf_counter() - start
        self.pixels += sum(_pixels(image) for image in images)
        self.images += len(images)

    def timed(self, restore_fn: RestoreFn) -> RestoreFn:
        """``restore_fn``, timed: each call adds its seconds and its input's pixels here (a
        call that raises is counted too)."""

        def restore(lq: np.ndarray) -> np.ndarray:
            start = time.perf_counter()
            try:
                return restore_fn(lq)
            finally:
                self._add(start, [lq])

        return restore

    def timed_batch(self, restore_batch: BatchRestoreFn) -> BatchRestoreFn:
        """``restore_batch``, timed like :meth:`timed`: every input of a batch is counted,
        including those it gives no usable output for."""

        def restore(items: Sequence[BenchItem], lqs: Sequence[np.ndarray]) -> list[Any]:
            start = time.perf_counter()
            try:
                return restore_batch(items, lqs)
            finally:
                self._add(start, lqs)

        return restore

    def record(self) -> dict[str, Any]:
        """``seconds``, ``megapixels``, ``images`` and ``seconds_per_megapixel`` for JSON."""
        per_mp = self.seconds_per_megapixel
        return {
            "seconds": round(self.seconds, 4),
            "megapixels": round(self.megapixels, 6),
            "images": self.images,
            "seconds_per_megapixel": None if per_mp is None else round(per_mp, 4),
        }


@dataclass(frozen=True)
class MethodCost:
    """One evaluated method's cost, as :func:`write_method_costs` records it.

    Attributes:
        spent: its timing over the crop suites and the real photos.
        params: the network's parameter count; 0 for a classical baseline; None: not counted.
        self_ensemble: views averaged per input (1: none).
        tile: tile side in pixels; None: whole images.
        whole: its timing on the whole-photo suite (model and champion), or None.
        whole_tile: the tile side used there.
        whole_overlap: the tile overlap used there.
    """

    spent: RestoreCost
    params: int | None
    self_ensemble: int = 1
    tile: int | None = None
    whole: RestoreCost | None = None
    whole_tile: int | None = None
    whole_overlap: int | None = None


def method_costs_json(costs: Mapping[str, MethodCost], per_image_sha256: str) -> dict[str, Any]:
    """The content of ``metrics/method_costs.json`` (keys in the module docstring)."""
    threads = torch.get_num_threads()
    methods: dict[str, Any] = {}
    for method, cost in costs.items():
        entry = {
            **cost.spent.record(),
            "params": cost.params,
            "self_ensemble": cost.self_ensemble,
            "tile": cost.tile,
            "threads": threads,
        }
        if cost.whole is not None:
            entry["whole"] = {
                **cost.whole.record(),
                "tile": cost.whole_tile,
                "overlap": cost.whole_overlap,
                "self_ensemble": 1,
            }
        methods[method] = entry
    return {_DIGEST_KEY: per_image_sha256, _METHODS_KEY: methods}


def write_method_costs(path: Path, costs: Mapping[str, MethodCost], per_image: Path) -> Path:
    """Write ``path`` (``metrics/method_costs.json``) atomically, tied to ``per_image`` (the
    ``per_image.csv`` written by the same run, by its SHA-256); returns ``path``."""
    data = method_costs_json(costs, file_digest(per_image))
    write_text(path, json.dumps(data, indent=2, allow_nan=False) + "\n")
    return path


@dataclass(frozen=True)
class MeasuredCosts:
    """What :func:`read_method_costs` found.

    Attributes:
        costs: method -> its cost (``seconds_per_megapixel`` over the crop suites and the real
            photos, ``params``).
        note: how they were measured: threads, and which methods ran with the self-ensemble.
    """

    costs: dict[str, Cost]
    note: str


def read_method_costs(path: Path, per_image: Path) -> MeasuredCosts | None:
    """The evaluate stage's measured costs, for the study.

    Args:
        path: ``metrics/method_costs.json``.
        per_image: the ``per_image.csv`` the study ranks.

    Returns:
        The costs, or None (logged) when ``path`` does not exist (written before costs were
        measured) or was written with another ``per_image.csv`` (a different evaluate run).

    Raises:
        ValueError: ``path`` is no JSON object of per-method objects, or a value is negative
            or of the wrong type (the message names the file and the method).
    """
    if not path.is_file():
        log.info("%s not found: the evaluate stage's methods have no measured cost", path)
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path}: not JSON: {exc}") from None
    methods = data.get(_METHODS_KEY) if isinstance(data, dict) else None
    if not isinstance(methods, dict) or not all(isinstance(v, dict) for v in methods.values()):
        raise ValueError(f"{path}: expected {{{_METHODS_KEY!r}: {{method: {{...}}}}}}")
    if per_image.is_file() and data.get(_DIGEST_KEY) != file_digest(per_image):
        log.warning("%s was written with another %s: its costs are left out", path, per_image)
        return None
    costs = {method: _cost(path, method, entry) for method, entry in methods.items()}
    return MeasuredCosts(costs, _note(methods))


def _cost(path: Path, method: str, entry: Mapping[str, Any]) -> Cost:
    """A method's :class:`Cost` from its ``method_costs.json`` entry."""
    per_mp, params = entry.get("seconds_per_megapixel"), entry.get("params")
    if not (per_mp is None or (isinstance(per_mp, int | float) and not isinstance(per_mp, bool))):
        raise ValueError(f"{path}: {method}.seconds_per_megapixel = {per_mp!r} is not a number")
    if not (params is None or (isinstance(params, int) and not isinstance(params, bool))):
        raise ValueError(f"{path}: {method}.params = {params!r} is not an integer")
    try:
        return Cost(None if per_mp is None else float(per_mp), params)
    except ValueError as exc:
        raise ValueError(f"{path}: {method}: {exc}") from None


def _note(methods: Mapping[str, Mapping[str, Any]]) -> str:
    """A sentence on how the costs were measured: threads, and the self-ensemble."""
    threads = sorted({e["threads"] for e in methods.values() if isinstance(e.get("threads"), int)})
    ensembles: dict[int, list[str]] = {}
    for method, entry in methods.items():
        views = entry.get("self_ensemble")
        if isinstance(views, int) and views > 1:
            ensembles.setdefault(views, []).append(method)
    on = f"Timed on {'/'.join(map(str, threads))} torch CPU thread(s)" if threads else "Timed"
    if not ensembles:
        return f"{on}, without self-ensemble."
    with_views = "; ".join(
        f"the x{views} self-ensemble was on for {', '.join(names)}: all {views} views are "
        "timed, each input counted once"
        for views, names in sorted(ensembles.items())
    )
    return f"{on}; {with_views}."
