"""The interpretation report (DVC stage ``interpret``): what the unified model has learned.

:func:`run_interpretation` writes ``<out>/index.html`` (self-contained: every figure is an
embedded PNG data URI, no external CSS, script or link), the same figures as PNG files in
``<out>/figures/`` and every number in ``<out>/interpretation.json``. Sections:

1. Deep degradation representations: pooled features of one layer for up to
   ``images_per_group`` images of every benchmark (suite, family), t-SNE maps coloured by
   family and by content category, the Calinski-Harabasz index of both labellings and, for
   each unseen family, the nearest seen family in feature space (:mod:`.features`).
2. Local attribution maps and the diffusion index per degraded family of ``single-id`` and
   ``unseen`` (:mod:`.attribution`).
3. Degradation sensitivity: PSNR gain against each trained family's main parameter for the
   model and the family's best classical baseline, with the benchmark means of the model and
   of specialists (from ``per_family.csv``) as flat segments over the id/ood ranges
   (:mod:`.sensitivity`).
4. Visual comparisons: the worst and best ``comparisons_per_family`` images of every
   (suite, family), by PSNR gain, among the images of section 1.
5. The generalization and harm tables of ``metrics/eval.json``.

The benchmark's ``clean`` family (input = ground truth) appears in the representation map and
the comparisons (its worst image is the model's worst harm), but not where a degradation is
needed: LAM, the nearest-seen-family analysis (it compares degradations) and the sensitivity
sweep (which degrades the clean crops itself).

Sections 3 and 5 use the evaluate stage's outputs when given and say "not available" instead
of failing when they are missing. :func:`log_report` attaches the folder to an MLflow run.
"""

from __future__ import annotations

import base64
import csv
import html
import json
import logging
import math
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from girml.baselines import BASELINES
from girml.config import CLEAN_FAMILY, DegradationsConfig, InterpretConfig
from girml.data.synthesize import read_manifest
from girml.evaluation.harness import (
    GIR_SUITES,
    MAX_PSNR,
    MODEL_METHOD,
    Bench,
    BenchItem,
    clipped_psnr,
)
from girml.evaluation.report import HARM_MARGIN_DB
from girml.imageio import atomic_path, read_image, to_tensor, to_uint8, write_text
from girml.interpret import figures
from girml.interpret.attribution import LAM_SIGMA, diffusion_index, lam, textured_window
from girml.interpret.features import (
    calinski_harabasz,
    nearest_seen,
    pooled_features,
    standardize,
    tsne_map,
)
from girml.interpret.sensitivity import (
    main_param,
    model_batch_restorer,
    per_image,
    sensitivity_curve,
    sweep_values,
)
from girml.records import BenchContent, read_jsonl

log = logging.getLogger(__name__)

REPORT_HTML = "index.html"
REPORT_JSON = "interpretation.json"
FIGURES_DIR = "figures"
ARTIFACT_PATH = "interpretation"
SEEN_SUITES = ("single-id", "single-ood", "mixed")
UNSEEN_SUITE = "unseen"
LAM_SUITES = ("single-id", UNSEEN_SUITE)
SPECIALIST = "specialist:"
FEATURE_BATCH = 16
COMPARISON_CROP = 64  # px: whole 128 px crops x 4 panels made the page tens of MB
UNKNOWN_CATEGORY = "unknown"
_SUITE_ORDER = (*GIR_SUITES, "unseen-content")
# MLflow metric names allow letters, digits and "_-. :/" only: "blur+noise" -> "blur_noise"
_METRIC_UNSAFE = re.compile(r"[^\w\-. :/]")


# --------------------------------------------------------------------------- inputs


@dataclass(frozen=True)
class Sample:
    """A benchmark image with the model's output: (H,W,3) uint8 arrays and PSNR-Y scores."""

    item: BenchItem
    category: str
    lq: np.ndarray
    gt: np.ndarray
    restored: np.ndarray
    psnr_in: float
    psnr_out: float

    @property
    def group(self) -> str:
        return f"{self.item.suite}/{self.item.family}"

    @property
    def gain(self) -> float:
        return self.psnr_out - self.psnr_in


def bench_categories(bench_dir: Path, clean_dir: Path | None = None) -> dict[tuple[str, ...], str]:
    """Content category of every benchmark pair, keyed by ``(suite, family, id)``.

    Read from the ``category`` field of each ``recipes.jsonl`` record; for records without one
    (older benchmarks), from ``clean_dir/manifest.csv`` by ``source_id`` when given, else
    ``unknown``.
    """
    by_source: dict[str, str] = {}
    manifest = Path(clean_dir) / "manifest.csv" if clean_dir is not None else None
    if manifest is not None and manifest.is_file():
        by_source = {im.id: im.category for im in read_manifest(manifest, manifest.parent)}
    out: dict[tuple[str, ...], str] = {}
    for jsonl in sorted(Path(bench_dir).glob("*/*/recipes.jsonl")):
        suite, family = jsonl.parent.parent.name, jsonl.parent.name
        for rec in read_jsonl(jsonl, BenchContent):
            category = rec.category or by_source.get(str(rec.source_id))
            out[(suite, family, rec.id)] = category or UNKNOWN_CATEGORY
    return out


def select_items(items: Sequence[BenchItem], per_group: int) -> list[BenchItem]:
    """The first ``per_group`` items of every (suite, family), in bench order.

    The benchmark's crops are interleaved across photos, so the first ones span many photos.
    """
    if per_group < 1:
        raise ValueError(f"per_group must be >= 1, got {per_group}")
    taken: dict[tuple[str, str], int] = {}
    out = []
    for item in items:
        key = (item.suite, item.family)
        if item.gt is not None and taken.get(key, 0) < per_group:
            taken[key] = taken.get(key, 0) + 1
            out.append(item)
    return out


def run_samples(
    model: nn.Module,
    bench: Bench,
    items: Sequence[BenchItem],
    categories: Mapping[tuple[str, ...], str],
    layer: str,
) -> tuple[np.ndarray, list[Sample]]:
    """Restore ``items`` once, reading ``layer``'s pooled features on the way.

    Consecutive images of one size are batched (up to 16).

    Returns:
        (N,C) float32 features and one :class:`Sample` per item, in order.
    """
    if not items:
        raise ValueError("no benchmark image with ground truth to interpret")
    pairs = [bench.load(item) for item in items]
    feats: list[np.ndarray] = []
    restored: list[np.ndarray] = []
    start = 0
    while start < len(pairs):
        stop = start + 1
        shape = pairs[start][0].shape
        while stop < len(pairs) and stop - start < FEATURE_BATCH and pairs[stop][0].shape == shape:
            stop += 1
        batch = torch.cat([to_tensor(lq) for lq, _ in pairs[start:stop]])
        pooled, out = pooled_features(model, batch, layer)
        feats.append(pooled.numpy())
        restored += [to_uint8(out[i : i + 1]) for i in range(out.shape[0])]
        start = stop
    samples = [
        Sample(
            item=item,
            category=categories.get((item.suite, item.family, item.id), UNKNOWN_CATEGORY),
            lq=lq,
            gt=gt,
            restored=out,
            psnr_in=clipped_psnr(lq, gt, 0, test_y=True),
            psnr_out=clipped_psnr(out, gt, 0, test_y=True),
        )
        for item, (lq, gt), out in zip(items, pairs, restored, strict=True)
    ]
    return np.concatenate(feats), samples


def read_per_family(path: Path) -> list[dict[str, Any]]:
    """Rows of ``metrics/per_family.csv``; numeric cells as floats (empty cells NaN)."""
    with Path(path).open(newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    text = {"method", "suite", "family"}
    return [
        {k: (v if k in text else float(v) if v else math.nan) for k, v in row.items()}
        for row in rows
    ]


# --------------------------------------------------------------------------- sections


@dataclass
class Section:
    """One report section: its anchor, title, HTML body, figures (name -> PNG) and numbers."""

    key: str
    title: str
    body: list[str] = field(default_factory=list)
    figures: dict[str, bytes] = field(default_factory=dict)
    data: dict[str, Any] = field(default_factory=dict)

    def para(self, text: str) -> None:
        self.body.append(f"<p>{html.escape(text)}</p>")

    def unavailable(self, reason: str) -> None:
        self.data["available"] = False
        self.data["reason"] = reason
        self.body.append(f'<p class="na">not available: {html.escape(reason)}</p>')

    def figure(self, name: str, png: bytes, caption: str) -> None:
        self.figures[name] = png
        uri = "data:image/png;base64," + base64.b64encode(png).decode("ascii")
        self.body.append(
            f'<figure><img src="{uri}" alt="{html.escape(name)}">'
            f"<figcaption>{html.escape(caption)}</figcaption></figure>"
        )

    def table(self, header: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
        body = "".join(
            "<tr>" + "".join(f"<td>{html.escape(_fmt(c))}</td>" for c in row) + "</tr>"
            for row in rows
        )
        self.body.append(f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")


def _fmt(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return "-" if value is None else str(value).lower()
    if isinstance(value, float):
        return "-" if not math.isfinite(value) else f"{value:.3f}"
    if isinstance(value, list | tuple):
        return "; ".join(_fmt(v) for v in value)
    return str(value)


def _ch_or_reason(features: np.ndarray, labels: Sequence[str]) -> float | str:
    distinct = len(set(labels))
    if not 2 <= distinct <= len(labels) - 1:
        return f"needs 2 to n-1 distinct labels, got {distinct} for n={len(labels)}"
    return calinski_harabasz(features, labels)


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
    suites = [s.item.suite for s in samples]
    ch = {"degradation": _ch_or_reason(x, families), "content": _ch_or_reason(x, categories)}
    numbers = {k: v for k, v in ch.items() if isinstance(v, float)}
    ratio = numbers["degradation"] / numbers["content"] if len(numbers) == 2 else None
    verdict = None if ratio is None else "degradation" if ratio > 1 else "content"
    sec.data["calinski_harabasz"] = {**ch, "ratio": ratio, "organized_by": verdict}
    xy = tsne_map(x, cfg.tsne_perplexity, cfg.seed)
    sec.data["tsne_perplexity"] = min(cfg.tsne_perplexity, len(samples) - 1)
    sec.data["points"] = [
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
    sec.para(
        f"Globally average-pooled output of layer '{cfg.layer}' ({feats.shape[1]} channels) for "
        f"{len(samples)} benchmark images (up to {cfg.images_per_group} per suite/family), "
        "each channel standardized, embedded with t-SNE "
        f"(perplexity {sec.data['tsne_perplexity']:g}, seed {cfg.seed})."
    )
    sec.figure(
        "tsne.png",
        figures.tsne_figure(xy, families, categories, suites),
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
    if ratio is not None:
        sec.para(
            f"CH(degradation) / CH(content) = {ratio:.2f}: the features are organized mainly by "
            f"{verdict} (a higher index means tighter, better separated clusters)."
        )
    _unseen_analysis(sec, x, samples, families)
    return sec


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


def lam_section(model: nn.Module, samples: Sequence[Sample], cfg: InterpretConfig) -> Section:
    """Section 2: LAM maps and the diffusion index per degraded family of single-id and unseen."""
    sec = Section("lam", "Local attribution maps")
    chosen: dict[str, list[Sample]] = {}
    for s in samples:
        wanted = s.item.suite in LAM_SUITES and s.item.family != CLEAN_FAMILY
        if wanted and len(chosen.get(s.group, [])) < cfg.lam_images_per_family:
            chosen.setdefault(s.group, []).append(s)
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
                size = min(cfg.lam_window, *s.gt.shape[:2])
                attr = lam(model, to_tensor(s.lq), textured_window(s.gt, size), cfg.lam_steps)
                di = diffusion_index(attr.map)
                records.append(
                    {
                        "id": s.item.id,
                        "window": list(attr.window),
                        "di": di,
                        "objective": attr.objective,
                        "objective_baseline": attr.objective_baseline,
                        "completeness_error": attr.completeness_error,
                    }
                )
                panels.append(
                    figures.LamPanel(f"{group} #{s.item.id}", s.lq, attr.map, attr.window, di)
                )
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
    first = sid[0].family
    clean = [read_image(i.gt) for i in sid if i.family == first][: cfg.sensitivity_images]
    sec.data.update({"images": len(clean), "families": {}})
    trained = [f for f in spec.families if f not in spec.held_out.families]
    restore_model = model_batch_restorer(model)
    panels = []
    for family in trained:
        try:
            param = main_param(spec, family)
        except ValueError as exc:
            sec.data["families"][family] = {"available": False, "reason": str(exc)}
            continue
        values = sweep_values(param, cfg.sensitivity_levels, cfg.sensitivity_extend)
        named = (eval_metrics or {}).get(f"best_baseline.{family}.name")
        if named in BASELINES:
            candidates, why = [named], "best baseline of the evaluation (single-id)"
        else:
            candidates = [n for n in BASELINES.names() if BASELINES.meta(n)["family"] == family]
            why = "best of the family's baselines on this sweep"
        restorers = {"model": restore_model, **{n: per_image(BASELINES.get(n)) for n in candidates}}
        gains = sensitivity_curve(restorers, clean, spec, param, values, cfg.seed)
        best = _best_curve(gains, candidates)
        curves = {"model": gains["model"], **({best: gains[best]} if best else {})}
        ranges = {"single-id": param.id_range, "single-ood": param.ood_range}
        segments = _segments(per_family, family, ranges)
        sec.data["families"][family] = {
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
        panels.append(
            figures.SensitivityPanel(
                title=f"{family}: {param.op}",
                xlabel=param.param,
                values=values,
                curves=curves,
                id_range=param.id_range,
                ood_range=param.ood_range,
                log=param.log,
                segments=segments,
            )
        )
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


def _comparison_row(label: str, s: Sample) -> figures.ComparisonRow:
    y, x, size = textured_window(s.gt, min(COMPARISON_CROP, *s.gt.shape[:2]))
    crop = (slice(y, y + size), slice(x, x + size))
    return figures.ComparisonRow(
        label, s.lq[crop], s.restored[crop], s.gt[crop], s.psnr_in, s.psnr_out
    )


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
            f"unchanged); worst family gain (single-id) = {_fmt(worst)} dB."
        )
        sec.table(
            ["suite", "harm rate", "clean PSNR-Y (dB)"],
            [[s, h["harm_rate"], h["clean_psnr_y"]] for s, h in harm.items()],
        )
    if champion:
        sec.table(["champion decision", "value"], [[k, v] for k, v in champion.items()])
    return sec


# --------------------------------------------------------------------------- output

_CSS = """
body{font-family:sans-serif;max-width:1300px;margin:2em auto;padding:0 1em;color:#222}
h1{border-bottom:2px solid #444}h2{margin-top:2em;border-bottom:1px solid #aaa}
table{border-collapse:collapse;margin:1em 0;font-size:14px}
td,th{border:1px solid #bbb;padding:3px 8px;text-align:right}th{background:#eee}
td:first-child,th:first-child{text-align:left}
figure{margin:1em 0}img{max-width:100%}figcaption{font-size:13px;color:#555}
.na{color:#a40;font-style:italic}
"""


def render_html(sections: Sequence[Section], meta: Mapping[str, Any]) -> str:
    """The self-contained report page (inline CSS, figures as data URIs, no scripts)."""
    toc = "".join(f'<li><a href="#{s.key}">{html.escape(s.title)}</a></li>' for s in sections)
    info = "".join(
        f"<tr><td>{html.escape(str(k))}</td><td>{html.escape(_fmt(v))}</td></tr>"
        for k, v in meta.items()
    )
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        "<title>GIR interpretation report</title>",
        f"<style>{_CSS}</style></head><body>",
        "<h1>What the GIR model learned</h1>",
        f"<table>{info}</table>",
        f"<ul>{toc}</ul>",
    ]
    for s in sections:
        parts.append(f'<section id="{s.key}"><h2>{html.escape(s.title)}</h2>')
        parts.extend(s.body)
        parts.append("</section>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def _json_safe(value: Any) -> Any:
    """NaN and infinities as None, numpy scalars and tuples as plain JSON values."""
    if isinstance(value, Mapping):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _load_json(path: Path | None) -> dict[str, Any] | None:
    if path is None or not Path(path).is_file():
        return None
    return json.loads(Path(path).read_text(encoding="utf-8"))


def run_interpretation(
    model: nn.Module,
    bench_dir: Path,
    spec: DegradationsConfig,
    cfg: InterpretConfig,
    out_dir: Path,
    eval_json: Path | None = None,
    per_family_csv: Path | None = None,
    clean_dir: Path | None = None,
) -> dict[str, Any]:
    """Compute the interpretation report and write it to ``out_dir``.

    Args:
        model: the restoration network (CPU or GPU; it is put in eval mode).
        bench_dir: the benchmark (``<suite>/<family>/recipes.jsonl``).
        spec: the degradation spec the model was trained with (families, ranges, held out).
        cfg: what to compute (``interpret`` section of ``params.yaml``).
        out_dir: written: ``index.html``, ``interpretation.json``, ``figures/*.png`` (stale
            PNGs in ``figures/`` are removed first).
        eval_json, per_family_csv: the evaluate stage's outputs; missing files make the
            sections that need them say "not available".
        clean_dir: the collect stage's folder, only used for the content category of
            benchmark records that lack one.

    Returns:
        Everything written to ``interpretation.json``: one key per section (``features``,
        ``lam``, ``sensitivity``, ``comparisons``, ``generalization``), ``meta``, ``config``,
        ``timings_s`` (wall clock) and ``cpu_s`` (CPU time of all threads) per step.

    Raises:
        FileNotFoundError, ValueError: no or malformed benchmark (see
            :func:`girml.evaluation.scan_bench`); ValueError also for an unknown ``cfg.layer``.
    """
    started, started_cpu = time.perf_counter(), time.process_time()
    timings: dict[str, float] = {}
    cpu: dict[str, float] = {}  # CPU seconds of every thread: the cost on a busy machine
    bench = Bench(bench_dir)
    eval_metrics = _load_json(eval_json)
    per_family = (
        read_per_family(per_family_csv)
        if per_family_csv is not None and Path(per_family_csv).is_file()
        else None
    )
    model.eval()

    tick, tick_cpu = time.perf_counter(), time.process_time()
    items = select_items(bench.items, cfg.images_per_group)
    feats, samples = run_samples(
        model, bench, items, bench_categories(bench_dir, clean_dir), cfg.layer
    )
    timings["restore_and_features"] = time.perf_counter() - tick
    cpu["restore_and_features"] = time.process_time() - tick_cpu
    sections: list[Section] = []
    steps: list[tuple[str, Callable[[], Section]]] = [
        ("features", lambda: features_section(samples, feats, cfg)),
        ("lam", lambda: lam_section(model, samples, cfg)),
        (
            "sensitivity",
            lambda: sensitivity_section(model, bench, spec, cfg, eval_metrics, per_family),
        ),
        ("comparisons", lambda: comparisons_section(samples, cfg)),
        ("generalization", lambda: generalization_section(eval_metrics)),
    ]
    for name, build in steps:
        tick, tick_cpu = time.perf_counter(), time.process_time()
        sections.append(build())
        timings[name] = time.perf_counter() - tick
        cpu[name] = time.process_time() - tick_cpu
        log.info("interpret: %s done in %.1f s (%.1f CPU s)", name, timings[name], cpu[name])
    timings["total"] = time.perf_counter() - started
    cpu["total"] = time.process_time() - started_cpu

    meta = {
        "model": type(model).__name__,
        "layer": cfg.layer,
        "benchmark": str(bench_dir),
        "benchmark images used": len(samples),
        "eval.json": str(eval_json) if eval_metrics is not None else "not available",
        "per_family.csv": str(per_family_csv) if per_family is not None else "not available",
        "seconds": round(timings["total"], 1),
    }
    result = _json_safe(
        {
            "meta": meta,
            "config": cfg.model_dump(mode="json"),
            **{s.key: s.data for s in sections},
            "timings_s": timings,
            "cpu_s": cpu,
        }
    )
    _write(Path(out_dir), sections, meta, result)
    return result


def _write(
    out_dir: Path, sections: Sequence[Section], meta: Mapping[str, Any], result: Any
) -> None:
    fig_dir = out_dir / FIGURES_DIR
    fig_dir.mkdir(parents=True, exist_ok=True)
    for stale in fig_dir.glob("*.png"):
        stale.unlink()
    for section in sections:
        for name, png in section.figures.items():
            with atomic_path(fig_dir / name) as tmp:
                tmp.write_bytes(png)
    write_text(out_dir / REPORT_JSON, json.dumps(result, indent=2, allow_nan=False) + "\n")
    write_text(out_dir / REPORT_HTML, render_html(sections, meta))


# --------------------------------------------------------------------------- MLflow


def summary_metrics(result: Mapping[str, Any]) -> dict[str, float]:
    """Headline numbers of a report for MLflow: ``interpret.ch_*`` and ``interpret.di.<group>``
    (``+`` in a group name becomes ``_``)."""
    out: dict[str, float] = {}
    ch = result.get("features", {}).get("calinski_harabasz", {})
    for key, name in (("degradation", "ch_degradation"), ("content", "ch_content")):
        if isinstance(ch.get(key), int | float):
            out[f"interpret.{name}"] = float(ch[key])
    if isinstance(ch.get("ratio"), int | float):
        out["interpret.ch_ratio"] = float(ch["ratio"])
    for group, record in result.get("lam", {}).get("groups", {}).items():
        if isinstance(record.get("di"), int | float):
            out[f"interpret.di.{_METRIC_UNSAFE.sub('_', group)}"] = float(record["di"])
    return out


def log_report(out_dir: Path, run_id: str, project_root: Path = Path(".")) -> None:
    """Attach a written report to MLflow run ``run_id`` (the model's training run).

    The folder goes under the run's ``interpretation/`` artifacts and :func:`summary_metrics`
    of its ``interpretation.json`` are logged at step 0. MLflow is imported here only.

    Args:
        out_dir: a folder written by :func:`run_interpretation`.
        run_id: e.g. ``registered_model(models/latest).run_id``.
        project_root: where the default tracking store lives.
    """
    import mlflow

    from girml.tracking import mlflow as tracking

    out_dir = Path(out_dir)
    result = json.loads((out_dir / REPORT_JSON).read_text(encoding="utf-8"))
    tracking.configure(project_root)
    with mlflow.start_run(run_id=run_id, log_system_metrics=False):
        mlflow.log_artifacts(str(out_dir), artifact_path=ARTIFACT_PATH)
        metrics = summary_metrics(result)
        if metrics:
            tracking.log_metrics(0, metrics)
