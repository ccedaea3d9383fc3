"""Restorers as the harness runs them: a network wrapped for uint8 images, a per-image function
turned into a batch one, and the check that an output is usable.

A restorer is a function ``(H,W,3) uint8 -> (H,W,3) uint8``: the model (through
:func:`model_restorer`), a classical baseline from :data:`girml.baselines.BASELINES`, a specialist
or the registry's champion. A batch restorer (:data:`BatchRestoreFn`) takes the images of a
(suite, family) at once, as an outside program does, and returns one outcome per image: its
output, or the exception that says why there is none.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from torch import nn

from girml.core.ensemble import with_self_ensemble
from girml.core.imageio import to_tensor, to_uint8
from girml.core.inference import restore_image
from girml.evaluation.bench import BenchItem
from girml.metrics import check_rgb_uint8

RestoreFn = Callable[[np.ndarray], np.ndarray]
# (items, their inputs) -> one outcome per input: the output, or the exception saying why none
BatchRestoreFn = Callable[[Sequence[BenchItem], Sequence[np.ndarray]], list[Any]]
# a model folder, a release folder or an MLflow model URI -> its network, on the CPU in eval mode:
# the caller's loader (girml.artifacts.loading.load_model); evaluation loads no model itself
ModelLoader = Callable[[str], nn.Module]


def model_restorer(
    model: nn.Module, tile: int | None, self_ensemble: int = 1, overlap: int | None = None
) -> RestoreFn:
    """Wrap a restoration network as a uint8 restorer (whole image, or tiled when ``tile``).

    Args:
        model: (B,3,H,W) float in [0,1] -> same, in eval mode.
        tile: tile side, or None for whole-image inference.
        self_ensemble: views averaged per image (:class:`girml.core.ensemble.SelfEnsemble`;
            1: none).
        overlap: tile overlap in pixels; None: ``tile // 8``.

    Returns:
        ``fn(lq)``: (H,W,3) uint8 -> (H,W,3) uint8.
    """
    if overlap is None:
        overlap = tile // 8 if tile else 0
    model = with_self_ensemble(model, self_ensemble)

    def restore(lq: np.ndarray) -> np.ndarray:
        return to_uint8(restore_image(model, to_tensor(lq), tile, overlap))

    return restore


def per_image(restore_fn: RestoreFn) -> BatchRestoreFn:
    """A :data:`BatchRestoreFn` that calls ``restore_fn`` on each image, keeping its exceptions.

    Args:
        restore_fn: (H,W,3) uint8 -> (H,W,3) uint8.

    Returns:
        ``fn(items, lqs)``: per input, ``restore_fn``'s output or the exception it raised.
    """

    def restore(items: Sequence[BenchItem], lqs: Sequence[np.ndarray]) -> list[Any]:
        outcomes: list[Any] = []
        for lq in lqs:
            try:
                outcomes.append(restore_fn(lq))
            except Exception as exc:  # an outside restorer may raise anything; reported per image
                outcomes.append(exc)
        return outcomes

    return restore


def checked_output(out: Any, lq: np.ndarray, method: str, path: Path) -> np.ndarray:
    """``out`` if it is an (H,W,3) uint8 array of ``lq``'s shape, else TypeError/ValueError.

    Args:
        out: what the restorer returned for ``lq``.
        lq: its input.
        method: the method's name, for the message.
        path: the input's file, for the message.
    """
    check_rgb_uint8(f"output of {method!r} for {path}", out)
    if out.shape != lq.shape:
        raise ValueError(f"method {method!r} returned {out.shape} for {path}, expected {lq.shape}")
    return out


def usable_output(outcome: Any, lq: np.ndarray, method: str, path: Path) -> np.ndarray | Exception:
    """A restorer's outcome for ``lq`` checked (see :func:`checked_output`), or the exception
    that says why it is unusable (the restorer's own, or the check's)."""
    if isinstance(outcome, Exception):
        return outcome
    try:
        return checked_output(outcome, lq, method, path)
    except (TypeError, ValueError) as exc:
        return exc
