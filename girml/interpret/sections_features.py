"""Section 1 of the interpretation report: the model's deep degradation representations.

t-SNE maps of one layer's pooled features, the Calinski-Harabasz index by degradation family
and by content category, and each unseen family's nearest seen family (:mod:`.features`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from girml.config import CLEAN_FAMILY, InterpretConfig
from girml.interpret import figures
from girml.interpret.features import calinski_harabasz, nearest_seen, standardize, tsne_map
from girml.interpret.inputs import Sample
from girml.interpret.sections import Section

SEEN_SUITES = ("single-id", "single-ood", "mixed")
UNSEEN_SUITE = "unseen"


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
