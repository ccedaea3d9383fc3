"""Section 3 of the interpretation report: PSNR gain against degradation strength.

Each trained family's main parameter is swept (:mod:`.sensitivity`) for the model and the
family's best classical baseline; the evaluate stage's benchmark means of the model and of the
family's specialist are drawn as flat segments over the id/ood ranges.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from torch import nn

from girml.baselines import BASELINES
from girml.config import DegradationsConfig, InterpretConfig
from girml.core.imageio import read_image
from girml.evaluation.bench import Bench
from girml.evaluation.harness import MODEL_METHOD
from girml.interpret import figures, sensitivity
from girml.interpret.sections import Section

SPECIALIST = "specialist:"


def sensitivity_section(
    model: nn.Module,
    bench: Bench,
    spec: DegradationsConfig,
    cfg: InterpretConfig,
    eval_metrics: Mapping[str, Any] | None,
    per_family: Sequence[Mapping[str, Any]] | None,
) -> Section:
    """Section 3: PSNR gain against each trained family's main parameter."""
    sec = Section("sensitivity", "Degradation sensitivity")
    sid = [i for i in bench.items if i.suite == "single-id" and i.gt is not None]
    if not sid:
        sec.unavailable("no single-id benchmark images to take clean crops from")
        return sec
    clean = [read_image(i.gt) for i in sid if i.family == sid[0].family][: cfg.sensitivity_images]
    sec.data.update({"images": len(clean), "families": {}})
    trained = [f for f in spec.families if f not in spec.held_out.families]
    sweep = _FamilySweep(
        sensitivity.model_batch_restorer(model), clean, spec, cfg, eval_metrics, per_family
    )
    panels = []
    for family in trained:
        try:
            param = sensitivity.main_param(spec, family)
        except ValueError as exc:
            sec.data["families"][family] = {"available": False, "reason": str(exc)}
            continue
        sec.data["families"][family], panel = sweep.run(family, param)
        panels.append(panel)
    if not panels:
        sec.unavailable("no trained family has a numeric parameter range to sweep")
        return sec
    sec.para(
        f"Mean PSNR-Y gain on {len(clean)} clean single-id crops degraded by each family's "
        "first op at increasing strength of its main parameter (other parameters at their id "
        "midpoints, one noise seed per image). Curves: the unified model and the family's best "
        "classical baseline. Flat segments: mean gains on the benchmark suites (all of the "
        "family's ops) for the unified model and, where the evaluation trained one, the "
        "specialist; specialists are not re-run on the sweep."
    )
    if per_family is None:
        sec.para("Benchmark segments not available: run `dvc repro evaluate`.")
    sec.figure(
        "sensitivity.png",
        figures.sensitivity_figure(panels),
        "Green: training (id) range; orange: ood range.",
    )
    return sec


@dataclass(frozen=True)
class _FamilySweep:
    """What every family's sweep shares: the model, the clean crops, the evaluate outputs."""

    restore_model: sensitivity.BatchRestorer
    clean: Sequence[np.ndarray]
    spec: DegradationsConfig
    cfg: InterpretConfig
    eval_metrics: Mapping[str, Any] | None
    per_family: Sequence[Mapping[str, Any]] | None

    def run(
        self, family: str, param: sensitivity.SweepParam
    ) -> tuple[dict[str, Any], figures.SensitivityPanel]:
        """Gain curves of the model and the family's best baseline along ``param``.

        Returns:
            The family's record in ``interpretation.json`` and its figure panel.
        """
        cfg = self.cfg
        values = sensitivity.sweep_values(param, cfg.sensitivity_levels, cfg.sensitivity_extend)
        candidates, why = _baseline_candidates(family, self.eval_metrics)
        restorers = {
            "model": self.restore_model,
            **{n: sensitivity.per_image(BASELINES.get(n)) for n in candidates},
        }
        gains = sensitivity.sensitivity_curve(
            restorers, self.clean, self.spec, param, values, cfg.seed
        )
        best = _best_curve(gains, candidates)
        curves = {"model": gains["model"], **({best: gains[best]} if best else {})}
        ranges = {"single-id": param.id_range, "single-ood": param.ood_range}
        segments = _segments(self.per_family, family, ranges)
        record = {
            "op": param.op,
            "param": param.param,
            "id_range": list(param.id_range),
            "ood_range": None if param.ood_range is None else list(param.ood_range),
            "values": values,
            "psnr_y_input": gains["psnr_y_input"],
            "gain": curves,
            "baseline": best,
            "baseline_choice": why,
            "bench_segments": [
                {"label": label, "range": list(bounds), "gain": gain}
                for label, bounds, gain in segments
            ],
        }
        panel = figures.SensitivityPanel(
            title=f"{family}: {param.op}",
            xlabel=param.param,
            values=values,
            curves=curves,
            id_range=param.id_range,
            ood_range=param.ood_range,
            log=param.log,
            segments=segments,
        )
        return record, panel


def _baseline_candidates(
    family: str, eval_metrics: Mapping[str, Any] | None
) -> tuple[list[str], str]:
    """The baselines to sweep for ``family`` and why: the evaluation's best, else all of the
    family's."""
    named = (eval_metrics or {}).get(f"best_baseline.{family}.name")
    if named in BASELINES:
        return [named], "best baseline of the evaluation (single-id)"
    candidates = [n for n in BASELINES.names() if BASELINES.meta(n)["family"] == family]
    return candidates, "best of the family's baselines on this sweep"


def _best_curve(gains: Mapping[str, Sequence[float]], names: Sequence[str]) -> str | None:
    scored = [(float(np.mean(gains[n])), -i, n) for i, n in enumerate(names)]
    return max(scored)[2] if scored else None


def _segments(
    per_family: Sequence[Mapping[str, Any]] | None,
    family: str,
    ranges: Mapping[str, tuple[float, float] | None],
) -> list[tuple[str, tuple[float, float], float]]:
    """Benchmark gains of the model and the family's specialist over the id/ood ranges."""
    out = []
    for row in per_family or []:
        bounds = ranges.get(str(row["suite"]))
        method = str(row["method"])
        wanted = method == MODEL_METHOD or method == f"{SPECIALIST}{family}"
        if row["family"] == family and wanted and bounds is not None:
            gain = float(row["psnr_gain"])
            if math.isfinite(gain):
                who = "unified" if method == MODEL_METHOD else "specialist"
                out.append((f"{who} (bench {row['suite']})", bounds, gain))
    return out
