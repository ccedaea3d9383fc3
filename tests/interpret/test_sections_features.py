"""girml.interpret.sections_features: section 1, the deep degradation representations."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from girml.interpret.sections_features import features_section
from tests.interpret.common import CFG, make_sample


def clustered(families: list[str], seed: int = 0) -> np.ndarray:
    """(N,6) features that cluster by family: one centre per family plus small noise."""
    rng = np.random.default_rng(seed)
    centres = {f: rng.normal(scale=5.0, size=6) for f in dict.fromkeys(families)}
    return np.stack([centres[f] + rng.normal(scale=0.2, size=6) for f in families])


def test_features_cluster_by_family_and_unseen_finds_its_neighbour() -> None:
    groups = [("single-id", "noise")] * 4 + [("single-id", "blur")] * 4 + [("unseen", "haze")] * 2
    samples = [
        make_sample(suite, family, i, category=f"cat{i % 2}")
        for i, (suite, family) in enumerate(groups)
    ]
    feats = clustered([s.item.family for s in samples])
    feats[-2:] = feats[0] + 0.1  # haze sits right next to noise
    sec = features_section(samples, feats, CFG)
    assert sec.data["n"] == 10 and sec.data["channels"] == 6 and sec.data["layer"] == CFG.layer
    ch = sec.data["calinski_harabasz"]
    assert ch["degradation"] > 10 * ch["content"] and ch["organized_by"] == "degradation"
    assert [p["family"] for p in sec.data["points"]] == [s.item.family for s in samples]
    assert sec.data["tsne_perplexity"] == CFG.tsne_perplexity
    (unseen,) = sec.data["unseen"]
    assert unseen["family"] == "haze" and unseen["nearest"] == "noise"
    assert list(sec.figures) == ["tsne.png"]
    again = features_section(samples, feats, CFG)
    assert again.data == sec.data  # seeded t-SNE


def test_too_few_images_or_labels_say_why() -> None:
    samples = [make_sample("single-id", "noise", i) for i in range(2)]
    sec = features_section(samples, np.ones((2, 4)), CFG)
    assert sec.data["available"] is False
    assert sec.data["reason"] == "2 benchmark images; t-SNE needs at least 3"
    one_family = [make_sample("single-id", "noise", i, category=f"c{i % 2}") for i in range(4)]
    sec = features_section(one_family, clustered(["noise"] * 4), CFG)
    ch = sec.data["calinski_harabasz"]
    assert ch["degradation"] == "needs 2 to n-1 distinct labels, got 1 for n=4"
    assert ch["ratio"] is None and ch["organized_by"] is None
    assert sec.data["unseen"] == []  # no unseen family, fewer than two seen ones


def test_features_in_the_report(report: tuple[Path, dict]) -> None:
    _, result = report
    feats = result["features"]
    # 14 tiny suite/family groups (2 clean) of 4 images, 3 taken from each; bottleneck 2 * width
    assert feats["n"] == 14 * 3 and feats["channels"] == 8 and len(feats["points"]) == 42
    assert {p["family"] for p in feats["points"] if p["suite"] == "unseen-content"} >= {"clean"}
    assert {p["category"] for p in feats["points"]} == {"cat0", "cat1", "scientific"}
    ch = feats["calinski_harabasz"]
    assert ch["degradation"] > 0 and ch["content"] > 0
    assert ch["ratio"] == pytest.approx(ch["degradation"] / ch["content"])
    assert {row["family"] for row in feats["unseen"]} == {"haze", "blur+jpeg"}
    assert all("clean" not in row["distances"] for row in feats["unseen"])  # not a degradation
