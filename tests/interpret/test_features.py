"""girml.interpret.features: pooled layer features, Calinski-Harabasz, t-SNE, nearest family."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.metrics import calinski_harabasz_score

from girml.config import ModelConfig
from girml.interpret.features import (
    calinski_harabasz,
    centroids,
    feature_layers,
    nearest_seen,
    pooled_features,
    standardize,
    tsne_map,
)
from girml.models import build_model


def test_features_have_the_layer_shape() -> None:
    model = build_model(ModelConfig(width=4, enc_blocks=[1, 1], middle_blocks=1)).eval()
    assert list(feature_layers(model)) == ["enc1", "enc2", "bottleneck", "dec1", "dec2"]
    x = torch.rand(3, 3, 20, 28, generator=torch.Generator().manual_seed(0))
    expected = {"enc1": 4, "enc2": 8, "bottleneck": 16, "dec1": 4, "dec2": 8}
    for layer, channels in expected.items():
        feats, out = pooled_features(model, x, layer)
        assert feats.shape == (3, channels)
        assert torch.equal(out, model(x).detach().clamp(0, 1))  # the hook changes nothing
    plain = build_model(ModelConfig(type="plain_cnn", width=6, plain_blocks=1)).eval()
    assert pooled_features(plain, x, "bottleneck")[0].shape == (3, 6)
    with pytest.raises(ValueError, match=r"layer must be one of .*'enc1'.*got 'enc9'"):
        pooled_features(model, x, "enc9")
    with pytest.raises(ValueError, match="must be"):
        pooled_features(model, x[:, :1], "enc1")


def test_unknown_architecture_has_no_feature_layers() -> None:
    with pytest.raises(TypeError, match="no known feature layers in a Conv2d"):
        feature_layers(torch.nn.Conv2d(3, 3, 1))


def test_standardize_gives_unit_columns_and_zeroes_constant_ones() -> None:
    rng = np.random.default_rng(0)
    x = np.column_stack([rng.normal(5.0, 3.0, size=20), np.full(20, 7.0)])
    z = standardize(x)
    assert z.shape == (20, 2) and z.dtype == np.float64
    np.testing.assert_allclose(z[:, 0].mean(), 0.0, atol=1e-12)
    np.testing.assert_allclose(z[:, 0].std(), 1.0, rtol=1e-12)
    assert np.all(z[:, 1] == 0.0)  # a constant channel carries no information
    with pytest.raises(ValueError, match=r"got shape \(5,\)"):
        standardize(np.ones(5))


def test_calinski_harabasz_matches_sklearn_and_separates_clusters() -> None:
    rng = np.random.default_rng(0)
    labels = [f"c{i % 3}" for i in range(30)]
    centres = {"c0": 0.0, "c1": 3.0, "c2": -3.0}
    x = rng.normal(size=(30, 5)) + np.array([[centres[c]] * 5 for c in labels])
    ours = calinski_harabasz(x, labels)
    assert ours == pytest.approx(calinski_harabasz_score(x, labels), rel=1e-12)
    shuffled = list(rng.permutation(labels))
    assert ours > 10 * calinski_harabasz(x, shuffled)  # real clusters score far higher
    same = np.ones((4, 2))
    assert calinski_harabasz(same, ["a", "a", "b", "b"]) == calinski_harabasz_score(
        same, ["a", "a", "b", "b"]
    )
    with pytest.raises(ValueError, match="distinct labels"):
        calinski_harabasz(x, ["a"] * 30)
    with pytest.raises(ValueError, match="one label per row"):
        calinski_harabasz(x, labels[:-1])


def test_tsne_is_seeded_and_caps_perplexity() -> None:
    x = standardize(np.random.default_rng(1).normal(size=(6, 4)))
    first = tsne_map(x, perplexity=30.0, seed=3)  # capped to n - 1 = 5
    assert first.shape == (6, 2)
    np.testing.assert_array_equal(first, tsne_map(x, perplexity=30.0, seed=3))
    with pytest.raises(ValueError, match="N >= 3"):
        tsne_map(x[:2], perplexity=5.0, seed=0)
    with pytest.raises(ValueError, match=r"perplexity must be > 0, got 0\.0"):
        tsne_map(x, perplexity=0.0, seed=0)


def test_centroids_are_label_means_in_first_appearance_order() -> None:
    x = np.array([[0.0, 2.0], [4.0, 0.0], [2.0, 4.0], [6.0, 2.0]])
    means = centroids(x, ["b", "a", "b", "a"])
    assert list(means) == ["b", "a"]
    np.testing.assert_array_equal(means["b"], [1.0, 3.0])
    np.testing.assert_array_equal(means["a"], [5.0, 1.0])


def test_unseen_family_is_nearest_to_the_similar_seen_one() -> None:
    rng = np.random.default_rng(2)
    means = {"noise": 0.0, "blur": 10.0, "jpeg": 20.0, "rain": 1.0}
    labels = [name for name in means for _ in range(5)]
    x = rng.normal(scale=0.3, size=(20, 3)) + np.array([[means[n]] * 3 for n in labels])
    (row,) = nearest_seen(x, labels, ["noise", "blur", "jpeg"], ["rain"])
    assert row["family"] == "rain" and row["nearest"] == "noise"
    assert row["distance"] == pytest.approx(np.sqrt(3), rel=0.3)
    assert row["distance_ratio"] < 0.2  # far closer to noise than seen families are apart
    with pytest.raises(ValueError, match=r"at least two seen families .*\['noise'\]"):
        nearest_seen(x, labels, ["noise", "snow"], ["rain"])
