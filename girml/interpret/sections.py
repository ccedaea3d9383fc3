"""The five sections of the interpretation report, as plain data.

Each builder returns a :class:`Section`: its numbers (``data``, written to
``interpretation.json`` under the section's key) and its content blocks in page order
(:class:`Paragraph`, :class:`Unavailable`, :class:`Figure`, :class:`Table`), which
:mod:`girml.interpret.render` turns into HTML. Nothing here writes HTML.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
from torch import nn

from girml.baselines import BASELINES
from girml.config import CLEAN_FAMILY, DegradationsConfig, InterpretConfig
from girml.evaluation.harness import GIR_SUITES, MAX_PSNR, MODEL_METHOD, Bench
from girml.evaluation.report import HARM_MARGIN_DB
from girml.imageio import read_image, to_tensor
from girml.interpret import figures, sensitivity
from girml.interpret.attribution import LAM_SIGMA, diffusion_index, lam, textured_window
from girml.interpret.features import calinski_harabasz, nearest_seen, standardize, tsne_map
from girml.interpret.inputs import Sample

SEEN_SUITES = ("single-id", "single-ood", "mixed")
UNSEEN_SUITE = "unseen"
LAM_SUITES = ("single-id", UNSEEN_SUITE)
SPECIALIST = "specialist:"
COMPARISON_CROP = 64  # px: whole 128 px crops x 4 panels made the page tens of MB
_SUITE_ORDER = (*GIR_SUITES, "unseen-content")


# --------------------------------------------------------------------------- content blocks


@dataclass(frozen=True)
class Paragraph:
    """A paragraph of plain text."""

    kind: ClassVar[str] = "paragraph"
    text: str


@dataclass(frozen=True)
class Unavailable:
    """Why a section (or part of it) could not be computed."""

    kind: ClassVar[str] = "unavailable"
    reason: str


@dataclass(frozen=True)
class Figure:
    """A PNG figure (written to ``figures/<name>`` and embedded in the page) and its caption."""

    kind: ClassVar[str] = "figure"
    name: str
    png: bytes
    caption: str


@dataclass(frozen=True)
class Table:
    """A table of raw values (formatted for display by :func:`format_value`)."""

    kind: ClassVar[str] = "table"
    header: Sequence[str]
    rows: Sequence[Sequence[Any]]


Block = Paragraph | Unavailable | Figure | Table


@dataclass
class Section:
    """One report section: its anchor, title, content blocks in page order and its numbers."""

    key: str
    title: str
    blocks: list[Block] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)

    @property
    def figures(self) -> dict[str, bytes]:
        """The section's figures: file name -> PNG bytes."""
        return {b.name: b.png for b in self.blocks if isinstance(b, Figure)}

    def para(self, text: str) -> None:
        self.blocks.append(Paragraph(text))

    def unavailable(self, reason: str) -> None:
        self.data["available"] = False
        self.data["reason"] = reason
        self.blocks.append(Unavailable(reason))

    def figure(self, name: str, png: bytes, caption: str) -> None:
        self.blocks.append(Figure(name, png, caption))

    def table(self, header: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        self.blocks.append(Table(header, rows))


def format_value(value: Any) -> str:
    """Display text of a value: floats with 3 decimals, None and non-finite floats as ``-``,
    booleans in lower case, lists joined by ``; ``."""
    if isinstance(value, bool) or value is None:
        return "-" if value is None else str(value).lower()
    if isinstance(value, float):
        return "-" if not math.isfinite(value) else f"{value:.3f}"
    if isinstance(value, list | tuple):
        return "; ".join(format_value(v) for v in value)
    return str(value)


# --------------------------------------------------------------------------- 1. features


def features_section(samples: Sequence[Sample], feats: np.ndarray, cfg: InterpretConfig) -> Section:
    """Section 1: t-SNE maps, CH indices and the unseen families' nearest seen families."""
    sec = Section("features", "Deep degradation representations")
    sec.data.update({"layer": cfg.layer, "n": len(samples), "channels": int(feats.shape[1])})
    if len(samples) < 3:
        sec.unavailable(f"{len(samples)} benchmark images; t-SNE needs at least 3")
        return sec
    x = standardize(feats)
    families = [s.item.family for s in samples]
    categories = [s.category for s in samples]
    ch = _cluster_indices(x, families, categories)
    sec.data["calinski_harabasz"] = ch
    xy = tsne_map(x, cfg.tsne_perplexity, cfg.seed)
    sec.data["tsne_perplexity"] = min(cfg.tsne_perplexity, len(samples) - 1)
    sec.data["points"] = _tsne_points(samples, xy)
    sec.para(
        f"Globally average-pooled output of layer '{cfg.layer}' ({feats.shape[1]} channels) for "
        f"{len(samples)} benchmark images (up to {cfg.images_per_group} per suite/family), "
        "each channel standardized, embedded with t-SNE "
        f"(perplexity {sec.data['tsne_perplexity']:g}, seed {cfg.seed})."
    )
    sec.figure(
        "tsne.png",
        figures.tsne_figure(xy, families, categories, [s.item.suite for s in samples]),
        "t-SNE of the features. Left: by degradation family; right: by content category. "
        "Marker: suite (o single-id, ^ single-ood, square mixed, X unseen, diamond others).",
    )
    sec.table(
        ["labelling", "groups", "Calinski-Harabasz index"],
        [
            ["degradation family", len(set(families)), ch["degradation"]],
            ["content category", len(set(categories)), ch["content"]],
        ],
    )
    if ch["ratio"] is not None:
        sec.para(
            f"CH(degradation) / CH(content) = {ch['ratio']:.2f}: the features are organized "
            f"mainly by {ch['organized_by']} (a higher index means tighter, better separated "
            "clusters)."
        )
    _unseen_analysis(sec, x, samples, families)
    return sec


def _cluster_indices(
    x: np.ndarray, families: Sequence[str], categories: Sequence[str]
) -> dict[str, Any]:
    """CH index by family and by category (or why not), their ratio and the larger one."""
    ch = {"degradation": _ch_or_reason(x, families), "content": _ch_or_reason(x, categories)}
    numbers = {k: v for k, v in ch.items() if isinstance(v, float)}
    ratio = numbers["degradation"] / numbers["content"] if len(numbers) == 2 else None
    verdict = None if ratio is None else "degradation" if ratio > 1 else "content"
    return {**ch, "ratio": ratio, "organized_by": verdict}


def _ch_or_reason(features: np.ndarray, labels: Sequence[str]) -> float | str:
    distinct = len(set(labels))
    if not 2 <= distinct <= len(labels) - 1:
        return f"needs 2 to n-1 distinct labels, got {distinct} for n={len(labels)}"
    return calinski_harabasz(features, labels)


def _tsne_points(samples: Sequence[Sample], xy: np.ndarray) -> list[dict[str, Any]]:
    return [
        {
            "suite": s.item.suite,
            "family": s.item.family,
            "id": s.item.id,
            "level": s.item.level,
            "category": s.category,
            "x": float(p[0]),
            "y": float(p[1]),
        }
        for s, p in zip(samples, xy, strict=True)
    ]


def _unseen_analysis(
    sec: Section, x: np.ndarray, samples: Sequence[Sample], families: Sequence[str]
) -> None:
    seen = [
        s.item.family
        for s in samples
        if s.item.suite in SEEN_SUITES and s.item.family != CLEAN_FAMILY
    ]
    unseen = [s.item.family for s in samples if s.item.suite == UNSEEN_SUITE]
    unseen = [f for f in dict.fromkeys(unseen) if f not in set(seen)]
    if not unseen or len(set(seen)) < 2:
        sec.data["unseen"] = []
        sec.para("No unseen family (or fewer than two seen ones): no nearest-family analysis.")
        return
    rows = nearest_seen(x, families, list(dict.fromkeys(seen)), unseen)
    sec.data["unseen"] = rows
    sec.para(
        "Unseen degradations: the seen family whose feature centroid is nearest. distance ratio "
        "= distance / median distance between two seen centroids (below 1: closer to a seen "
        "family than seen families are to each other); radius = RMS spread of that family."
    )
    sec.table(
        ["unseen family", "nearest seen family", "distance", "radius", "distance ratio"],
        [
            [r["family"], r["nearest"], r["distance"], r["nearest_radius"], r["distance_ratio"]]
            for r in rows
        ],
    )


# --------------------------------------------------------------------------- 2. LAM


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


# --------------------------------------------------------------------------- 3. sensitivity


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


# --------------------------------------------------------------------------- 4. comparisons


def comparisons_section(samples: Sequence[Sample], cfg: InterpretConfig) -> Section:
    """Section 4: worst and best images of every (suite, family) by PSNR gain."""
    sec = Section("comparisons", "Visual comparisons")
    k = cfg.comparisons_per_family
    groups: dict[str, list[Sample]] = {}
    for s in samples:
        groups.setdefault(s.group, []).append(s)
    by_suite: dict[str, list[figures.ComparisonRow]] = {}
    for group, members in groups.items():
        ranked = sorted(members, key=lambda s: s.gain)
        worst, best = ranked[:k], ranked[max(k, len(ranked) - k) :][::-1]
        picks = [("worst", s) for s in worst] + [("best", s) for s in best]
        sec.data[group] = [{"case": c, "id": s.item.id, "gain": s.gain} for c, s in picks]
        by_suite.setdefault(members[0].item.suite, []).extend(
            _comparison_row(f"{group} {case} (#{s.item.id})", s) for case, s in picks
        )
    sec.para(
        f"Per suite/family, the {k} worst and {k} best images by PSNR-Y gain among the images "
        f"of the representation section, cropped to their most textured {COMPARISON_CROP} px "
        "square (PSNR of the whole image)."
    )
    for suite, rows in by_suite.items():
        sec.figure(f"comparisons_{suite}.png", figures.comparison_figure(rows), suite)
    return sec


def _comparison_row(label: str, s: Sample) -> figures.ComparisonRow:
    y, x, size = textured_window(s.gt, min(COMPARISON_CROP, *s.gt.shape[:2]))
    crop = (slice(y, y + size), slice(x, x + size))
    return figures.ComparisonRow(
        label, s.lq[crop], s.restored[crop], s.gt[crop], s.psnr_in, s.psnr_out
    )


# --------------------------------------------------------------------------- 5. generalization


def generalization_section(eval_metrics: Mapping[str, Any] | None) -> Section:
    """Section 5: the generalization table of ``eval.json`` (suites x metrics, harm, decision)."""
    sec = Section("generalization", "Generalization")
    if eval_metrics is None:
        sec.unavailable("metrics/eval.json is missing: run `dvc repro evaluate`")
        return sec
    metrics = ("psnr_y", "ssim_y", "psnr_gain", "niqe", "lpips")
    suites = sorted(
        {k.split(".", 1)[1] for k in eval_metrics if k.split(".", 1)[0] in metrics and "." in k},
        key=lambda s: (_SUITE_ORDER.index(s) if s in _SUITE_ORDER else len(_SUITE_ORDER), s),
    )
    table = {s: {m: eval_metrics.get(f"{m}.{s}") for m in metrics} for s in suites}
    summary = {k: eval_metrics.get(k) for k in ("gir_score", "generalization_gap")}
    champion = {
        k[len("champion.") :]: v for k, v in eval_metrics.items() if k.startswith("champion.")
    }
    others = {k: v for k, v in eval_metrics.items() if k.endswith(".gir_score")}
    harm = {
        s: {"harm_rate": eval_metrics.get(f"harm_rate.{s}"), "clean_psnr_y": clean}
        for s in suites
        if (clean := eval_metrics.get(f"harm.clean_psnr_y.{s}")) is not None
        or f"harm_rate.{s}" in eval_metrics
    }
    worst = eval_metrics.get("harm.worst_family_gain")
    sec.data.update({"suites": table, **summary, "champion": champion, "gir_scores": others})
    sec.data["harm"] = {"suites": harm, "worst_family_gain": worst}
    sec.table(["suite", *metrics], [[s, *(table[s][m] for m in metrics)] for s in suites])
    sec.table(["metric", "value"], [[k, v] for k, v in {**summary, **others}.items()])
    if harm:
        sec.para(
            f"Harm: harm rate = fraction of degraded images made more than {HARM_MARGIN_DB:g} "
            f"dB worse; clean PSNR-Y = output against the clean input ({MAX_PSNR:g} dB = "
            f"unchanged); worst family gain (single-id) = {format_value(worst)} dB."
        )
        sec.table(
            ["suite", "harm rate", "clean PSNR-Y (dB)"],
            [[s, h["harm_rate"], h["clean_psnr_y"]] for s, h in harm.items()],
        )
    if champion:
        sec.table(["champion decision", "value"], [[k, v] for k, v in champion.items()])
    return sec
