"""Section 2 of the interpretation report: local attribution maps and the diffusion index.

One LAM per degraded family of the ``single-id`` and ``unseen`` suites, in the most textured
window of the ground truth (:mod:`.attribution`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from torch import nn

from girml.config import CLEAN_FAMILY, InterpretConfig
from girml.core.imageio import to_tensor
from girml.interpret import figures
from girml.interpret.attribution import LAM_SIGMA, diffusion_index, lam, textured_window
from girml.interpret.inputs import Sample
from girml.interpret.sections import Section
from girml.interpret.sections_features import UNSEEN_SUITE

LAM_SUITES = ("single-id", UNSEEN_SUITE)


def lam_section(model: nn.Module, samples: Sequence[Sample], cfg: InterpretConfig) -> Section:
    """Section 2: LAM maps and the diffusion index per degraded family of single-id and unseen."""
    sec = Section("lam", "Local attribution maps")
    chosen = _lam_samples(samples, cfg.lam_images_per_family)
    sec.data.update({"steps": cfg.lam_steps, "sigma_max": LAM_SIGMA, "groups": {}})
    if not chosen:
        sec.unavailable(f"no degraded benchmark image in suites {list(LAM_SUITES)}")
        return sec
    sec.para(
        "Integrated gradients of the summed output in a window (green box, placed on the most "
        f"textured patch of the ground truth) along a blur path from a Gaussian blur of "
        f"sigma {LAM_SIGMA:g} px to the input, {cfg.lam_steps} midpoint steps (Gu & Dong, "
        "CVPR 2021). Diffusion index DI = (1 - Gini of |attribution|) x 100: higher means the "
        "model draws on a wider input region."
    )
    di_means: dict[str, float] = {}
    for suite in LAM_SUITES:
        panels = []
        for group, members in chosen.items():
            if not group.startswith(f"{suite}/"):
                continue
            records = []
            for s in members:
                record, panel = _lam_image(model, s, cfg)
                records.append(record)
                panels.append(panel)
            di_means[group] = float(np.mean([r["di"] for r in records]))
            sec.data["groups"][group] = {"di": di_means[group], "images": records}
        if panels:
            sec.figure(f"lam_{suite}.png", figures.lam_figure(panels), f"LAM maps, {suite}")
    sec.figure(
        "lam_di.png",
        figures.bar_figure(di_means, "diffusion index (0-100)", "DI per family"),
        f"Mean DI over up to {cfg.lam_images_per_family} image(s) per family.",
    )
    sec.table(["suite/family", "mean DI"], [[g, v] for g, v in di_means.items()])
    return sec


def _lam_samples(samples: Sequence[Sample], per_family: int) -> dict[str, list[Sample]]:
    """The first ``per_family`` degraded samples of every group of the LAM suites."""
    chosen: dict[str, list[Sample]] = {}
    for s in samples:
        wanted = s.item.suite in LAM_SUITES and s.item.family != CLEAN_FAMILY
        if wanted and len(chosen.get(s.group, [])) < per_family:
            chosen.setdefault(s.group, []).append(s)
    return chosen


def _lam_image(
    model: nn.Module, s: Sample, cfg: InterpretConfig
) -> tuple[dict[str, Any], figures.LamPanel]:
    """LAM of one sample in its most textured window: its record and its figure panel."""
    size = min(cfg.lam_window, *s.gt.shape[:2])
    attr = lam(model, to_tensor(s.lq), textured_window(s.gt, size), cfg.lam_steps)
    di = diffusion_index(attr.map)
    record = {
        "id": s.item.id,
        "window": list(attr.window),
        "di": di,
        "objective": attr.objective,
        "objective_baseline": attr.objective_baseline,
        "completeness_error": attr.completeness_error,
    }
    panel = figures.LamPanel(f"{s.group} #{s.item.id}", s.lq, attr.map, attr.window, di)
    return record, panel
