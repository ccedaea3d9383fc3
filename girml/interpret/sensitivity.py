"""Degradation sensitivity: PSNR gain against the strength of one family's main parameter.

For a trained family the *main parameter* is the first numeric range (``ParamRange``) of its
first op that declares an ``ood`` range (else the first numeric range at all): noise ``sigma``,
blur ``sigma``, jpeg ``quality``, haze ``beta``, lowlight ``gamma``, resize ``scale``. It is swept
from the in-distribution end farthest from the ood range, through the ood range and past it by
``extend`` x the ood span (clipped to the op's domain); the op's other params sit at their id
midpoints (the geometric midpoint for ``log`` ranges, the first choice for choices), and random
ops reuse one seed per image at every level, so only the strength changes along a curve.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from girml.config import DegradationsConfig, ParamChoice, ParamRange, ParamSpec
from girml.core.imageio import to_tensor, to_uint8
from girml.core.inference import restore_image
from girml.degradations import OPS
from girml.degradations.ops import ParamValue
from girml.evaluation.scores import clipped_psnr
from girml.training.data import match_size

BatchRestorer = Callable[[Sequence[np.ndarray]], list[np.ndarray]]


@dataclass(frozen=True)
class SweepParam:
    """The parameter a sensitivity curve sweeps.

    Attributes:
        family, op, param: where it is declared (``degradations.families.<family>.ops.<op>``).
        id_range: the training range ``(low, high)``.
        ood_range: the ood range, or None when the spec declares none.
        log, integer: as declared.
        domain: the op's valid ``(low, high)`` for the param.
    """

    family: str
    op: str
    param: str
    id_range: tuple[float, float]
    ood_range: tuple[float, float] | None
    log: bool
    integer: bool
    domain: tuple[float, float]

    @property
    def ood_above(self) -> bool:
        """Whether harder (ood) values are larger than the id ones (False for jpeg quality)."""
        if self.ood_range is None:
            return True
        return sum(self.ood_range) >= sum(self.id_range)


def main_param(spec: DegradationsConfig, family: str) -> SweepParam:
    """The main parameter of ``family`` (see the module docstring).

    Raises:
        ValueError: unknown family, or its first op has no numeric range to sweep.
    """
    if family not in spec.families:
        raise ValueError(f"unknown family {family!r}; declared: {sorted(spec.families)}")
    op, op_spec = next(iter(spec.families[family].ops.items()))
    meta = OPS.meta(op)
    ranges = [
        (name, p)
        for name, p in op_spec.params.items()
        if isinstance(p, ParamRange) and meta["kinds"][name] in (int, float)
    ]
    if not ranges:
        raise ValueError(f"family {family!r}: op {op!r} declares no numeric range to sweep")
    name, declared = next(((n, p) for n, p in ranges if p.ood is not None), ranges[0])
    low, high = meta["domain"][name]
    ood = declared.ood
    return SweepParam(
        family=family,
        op=op,
        param=name,
        id_range=(float(declared.id[0]), float(declared.id[1])),
        ood_range=None if ood is None else (float(ood[0]), float(ood[1])),
        log=declared.log,
        integer=declared.integer,
        domain=(float(low), float(high)),
    )


def _inside(value: float, bounds: tuple[float, float]) -> bool:
    return bounds[0] <= value <= bounds[1]


def sweep_values(param: SweepParam, levels: int, extend: float) -> list[float]:
    """The strengths a curve is measured at, from the easy id end to past the ood range.

    ``levels`` evenly spaced values (rounded and de-duplicated for integer params) from the id
    end farthest from the ood range to ``ood_near + extend * (ood_far - ood_near)`` clipped to
    the op's domain; without an ood range, to ``id_high + (extend - 1) * id span``. ``log``
    params are spaced, and extended, in log space. If no value falls inside the id (or ood)
    range, its midpoint is added, so a curve always has points of both.

    Args:
        param: from :func:`main_param`.
        levels: number of values, >= 3.
        extend: how far past the ood range, in ood spans, >= 1.

    Returns:
        Values in sweep order (easy to hard).
    """
    if levels < 3:
        raise ValueError(f"levels must be >= 3, got {levels}")
    if extend < 1:
        raise ValueError(f"extend must be >= 1, got {extend}")
    # Work in log space for log params (their ranges are positive: the config checks it).
    fwd, inv = (math.log, math.exp) if param.log else (float, float)
    id_low, id_high = param.id_range
    if param.ood_range is None:  # reach = id_high + (extend - 1) * id span
        start, near, far = id_low, id_low, id_high
    elif param.ood_above:
        start, near, far = id_low, param.ood_range[0], param.ood_range[1]
    else:
        start, near, far = id_high, param.ood_range[1], param.ood_range[0]
    reach = inv(fwd(near) + extend * (fwd(far) - fwd(near)))
    end = min(max(reach, param.domain[0]), param.domain[1])
    values = [inv(v) for v in np.linspace(fwd(start), fwd(end), levels)]
    values[0], values[-1] = start, end  # exact ends (exp(log(x)) may be off by an ulp)
    snap = (lambda v: float(round(v))) if param.integer else float
    values = [snap(v) for v in values]
    for bounds in (param.id_range, param.ood_range):
        if bounds is not None and not any(_inside(v, bounds) for v in values):
            values.append(snap(inv((fwd(bounds[0]) + fwd(bounds[1])) / 2)))
    values.sort(reverse=start > end)
    return list(dict.fromkeys(values))


def _midpoint(declared: ParamSpec) -> ParamValue:
    if isinstance(declared, ParamRange):
        low, high = declared.id
        mid = math.sqrt(low * high) if declared.log else (low + high) / 2
        return round(mid) if declared.integer else float(mid)
    if isinstance(declared, ParamChoice):
        return declared.choices[0]
    return declared


def op_params(
    spec: DegradationsConfig, param: SweepParam, value: float, seed: int
) -> dict[str, ParamValue]:
    """Keyword arguments of ``param.op`` with the swept param at ``value``, the rest at midpoints.

    Args:
        spec: the degradation spec the op is declared in.
        param: from :func:`main_param`.
        value: strength of the swept param (rounded when it is an integer param).
        seed: passed as ``seed`` when the op is random.
    """
    declared = spec.families[param.family].ops[param.op].params
    kwargs = {name: _midpoint(p) for name, p in declared.items()}
    kwargs[param.param] = round(value) if param.integer else float(value)
    if OPS.meta(param.op)["random"]:
        kwargs["seed"] = seed
    return kwargs


def degrade(
    image: np.ndarray, spec: DegradationsConfig, param: SweepParam, value: float, seed: int
) -> np.ndarray:
    """Apply ``param.op`` at strength ``value`` to an (H,W,3) uint8 image; same size, uint8.

    An op that shrinks the image is followed by a bicubic resize back, as the benchmark does.
    """
    clean = to_tensor(image)
    degraded = OPS.get(param.op)(clean, **op_params(spec, param, value, seed))
    return to_uint8(match_size(degraded, tuple(clean.shape[-2:])))


def image_seeds(seed: int, count: int) -> list[int]:
    """One op seed per clean image, drawn from ``seed`` (reused at every strength)."""
    return [int(s) for s in np.random.default_rng(seed).integers(2**31, size=count)]


def per_image(restore: Callable[[np.ndarray], np.ndarray]) -> BatchRestorer:
    """Lift a one-image restorer (e.g. a baseline) to a :data:`BatchRestorer`."""
    return lambda images: [restore(image) for image in images]


def model_batch_restorer(model: nn.Module) -> BatchRestorer:
    """A restoration network as a :data:`BatchRestorer`: images of one size run as one batch.

    Fewer, larger forward passes matter on a busy CPU, where every parallel region costs a
    thread synchronisation.
    """

    def restore(images: Sequence[np.ndarray]) -> list[np.ndarray]:
        if len({image.shape for image in images}) > 1:
            return [restore([image])[0] for image in images]
        out = restore_image(model, torch.cat([to_tensor(image) for image in images]), None, 0)
        return [to_uint8(out[i : i + 1]) for i in range(out.shape[0])]

    return restore


def sensitivity_curve(
    restorers: dict[str, BatchRestorer],
    clean: Sequence[np.ndarray],
    spec: DegradationsConfig,
    param: SweepParam,
    values: Sequence[float],
    seed: int,
) -> dict[str, list[float]]:
    """Mean PSNR-Y gain of each restorer at each strength.

    Each gain is ``mean psnr_y(output, gt) - mean psnr_y(input, gt)`` over the clean images
    (the evaluation's definition, PSNR clipped at 100 dB).

    Args:
        restorers: name -> function from a list of (H,W,3) uint8 images to their
            restorations (see :func:`per_image`, :func:`model_batch_restorer`).
        clean: ground-truth images, (H,W,3) uint8.
        spec, param: what to degrade with (see :func:`degrade`).
        values: strengths, e.g. from :func:`sweep_values`.
        seed: seeds the per-image op seeds (:func:`image_seeds`).

    Returns:
        ``{"psnr_y_input": [...], "<name>": [...gain per value], ...}``.
    """
    if not clean:
        raise ValueError("sensitivity needs at least one clean image")
    seeds = image_seeds(seed, len(clean))
    out: dict[str, list[float]] = {"psnr_y_input": [], **{name: [] for name in restorers}}
    for value in values:
        lqs = [degrade(gt, spec, param, value, s) for gt, s in zip(clean, seeds, strict=True)]
        inputs = [clipped_psnr(lq, gt, 0, True) for lq, gt in zip(lqs, clean, strict=True)]
        mean_in = float(np.mean(inputs))
        out["psnr_y_input"].append(mean_in)
        for name, restore in restorers.items():
            outputs = restore(lqs)
            scores = [clipped_psnr(o, gt, 0, True) for o, gt in zip(outputs, clean, strict=True)]
            out[name].append(float(np.mean(scores)) - mean_in)
    return out
