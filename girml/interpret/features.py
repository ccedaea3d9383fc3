"""Deep degradation representations: pooled layer features, cluster separation and t-SNE maps.

Following the GIR paper's closing analysis (Kong et al., arXiv 2408.15143, after Liu et al.'s
"deep degradation representations"), a restoration network's internal features are globally
average-pooled into one vector per image; whether these vectors cluster by degradation or by
image content is measured with the Calinski-Harabasz index of each labelling.

Layer names (:func:`feature_layers`): for ``nafnet`` and ``prompt_nafnet``, ``enc1`` ..
``encL`` are the outputs of the encoder levels (before downsampling; ``enc1`` is full
resolution with ``width`` channels, ``enck`` has ``width * 2**(k-1)``), ``bottleneck`` the output
of the middle blocks (``width * 2**L`` channels at 1/2**L resolution; with ``middle_blocks: 0``
it is the last downsampling's output) and ``dec1`` .. ``decL`` the decoder levels' outputs.
For ``plain_cnn``, ``bottleneck`` is the output of the residual body (``width`` channels).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from sklearn.manifold import TSNE
from threadpoolctl import threadpool_limits
from torch import nn

from girml.core.inference import model_device
from girml.models import NAFNet, PlainCNN

BOTTLENECK = "bottleneck"


def feature_layers(model: nn.Module) -> dict[str, nn.Module]:
    """The named layers of ``model`` whose output :func:`pooled_features` can read.

    Returns:
        ``{name: module}`` in network order (see the module docstring for the names).

    Raises:
        TypeError: an architecture without known feature layers.
    """
    if isinstance(model, NAFNet):
        layers: dict[str, nn.Module] = {
            f"enc{k + 1}": module for k, module in enumerate(model.encoders)
        }
        layers[BOTTLENECK] = model.middle
        layers.update({f"dec{k + 1}": module for k, module in enumerate(model.decoders)})
        return layers
    if isinstance(model, PlainCNN):
        return {BOTTLENECK: model.body}
    raise TypeError(f"no known feature layers in a {type(model).__name__}")


def pooled_features(
    model: nn.Module, images: torch.Tensor, layer: str
) -> tuple[torch.Tensor, torch.Tensor]:
    """Run ``model`` once and return the global-average-pooled output of ``layer`` and the output.

    The layer is read with a forward hook, so the model is not modified. Models pad their input
    to ``size_multiple`` internally: the pooled map includes that (reflected) padding.

    Args:
        model: a restoration network in eval mode.
        images: (B,3,H,W) float32 in [0,1] (moved to the model's device).
        layer: a name from :func:`feature_layers`.

    Returns:
        ``(features, restored)``: (B,C) float32 features (C = the layer's channels) and the
        (B,3,H,W) float32 output clamped to [0,1], both on the CPU.

    Raises:
        ValueError: an unknown layer name (the message lists the valid ones) or a bad shape.
    """
    if images.ndim != 4 or images.shape[1] != 3:
        raise ValueError(f"images must be (B,3,H,W), got shape {tuple(images.shape)}")
    layers = feature_layers(model)
    if layer not in layers:
        raise ValueError(f"layer must be one of {list(layers)}, got {layer!r}")
    captured: list[torch.Tensor] = []
    hook = layers[layer].register_forward_hook(
        lambda _module, _args, output: captured.append(output.mean(dim=(2, 3)))
    )
    try:
        with torch.inference_mode():
            restored = model(images.to(model_device(model)))
    finally:
        hook.remove()
    return captured[0].float().cpu(), restored.float().clamp(0.0, 1.0).cpu()


def standardize(features: np.ndarray) -> np.ndarray:
    """Z-score every column of an (N,D) array so each channel weighs the same (constant -> 0)."""
    if features.ndim != 2 or features.shape[0] < 1:
        raise ValueError(f"features must be (N,D) with N >= 1, got shape {features.shape}")
    x = features.astype(np.float64)
    std = x.std(axis=0)
    return (x - x.mean(axis=0)) / np.where(std > 0, std, 1.0)


def _groups(labels: Sequence[str], n: int) -> dict[str, np.ndarray]:
    if len(labels) != n:
        raise ValueError(f"need one label per row: {n} rows, {len(labels)} labels")
    arr = np.asarray(labels)
    return {str(name): np.flatnonzero(arr == name) for name in dict.fromkeys(labels)}


def calinski_harabasz(features: np.ndarray, labels: Sequence[str]) -> float:
    """Calinski-Harabasz index: between- over within-cluster dispersion, scaled by dof.

    ``CH = [tr(B) / (k - 1)] / [tr(W) / (n - k)]`` with ``tr(B) = sum_q n_q |c_q - c|^2`` and
    ``tr(W) = sum_q sum_{x in q} |x - c_q|^2`` (``c`` the global mean, ``c_q`` cluster ``q``'s
    mean). Higher means tighter, better separated clusters. Like scikit-learn, returns 1.0
    when the within dispersion is 0.

    Args:
        features: (N,D) float array.
        labels: N cluster labels, with 2 <= number of distinct labels <= N - 1.

    Raises:
        ValueError: wrong shapes or label count.
    """
    if features.ndim != 2:
        raise ValueError(f"features must be (N,D), got shape {features.shape}")
    n = features.shape[0]
    groups = _groups(labels, n)
    k = len(groups)
    if not 2 <= k <= n - 1:
        raise ValueError(f"need 2 <= distinct labels <= n - 1 = {n - 1}, got {k}")
    x = features.astype(np.float64)
    mean = x.mean(axis=0)
    between = within = 0.0
    for rows in groups.values():
        centroid = x[rows].mean(axis=0)
        between += len(rows) * float(np.sum((centroid - mean) ** 2))
        within += float(np.sum((x[rows] - centroid) ** 2))
    if within == 0.0:
        return 1.0
    return between * (n - k) / (within * (k - 1))


def tsne_map(features: np.ndarray, perplexity: float, seed: int) -> np.ndarray:
    """2-D t-SNE embedding (scikit-learn, PCA init, one thread), perplexity capped to ``N - 1``.

    Args:
        features: (N,D) float array, N >= 3 (standardize it first).
        perplexity: requested perplexity, > 0.
        seed: ``random_state`` of the embedding.

    Returns:
        (N,2) float64 coordinates.
    """
    n = features.shape[0] if features.ndim == 2 else 0
    if n < 3:
        raise ValueError(f"t-SNE needs (N,D) features with N >= 3, got shape {features.shape}")
    if not perplexity > 0:
        raise ValueError(f"perplexity must be > 0, got {perplexity}")
    tsne = TSNE(n_components=2, perplexity=min(perplexity, n - 1), init="pca", random_state=seed)
    # One thread: a few hundred points take seconds, while OpenMP threads busy-waiting on a
    # loaded machine made it 15x slower in wall time.
    with threadpool_limits(limits=1):
        return tsne.fit_transform(features.astype(np.float64)).astype(np.float64)


def centroids(features: np.ndarray, labels: Sequence[str]) -> dict[str, np.ndarray]:
    """Mean feature vector of every label, in first-appearance order."""
    return {
        name: features[rows].mean(axis=0)
        for name, rows in _groups(labels, features.shape[0]).items()
    }


def nearest_seen(
    features: np.ndarray, labels: Sequence[str], seen: Sequence[str], unseen: Sequence[str]
) -> list[dict[str, object]]:
    """For each unseen family, the seen family whose centroid is nearest to its centroid.

    Args:
        features: (N,D) float array (standardized).
        labels: N family labels.
        seen: labels of families the model was trained on (at least two present in ``labels``).
        unseen: labels of held-out families.

    Returns:
        One dict per unseen family present: ``family``, ``nearest`` (seen family),
        ``distance`` (Euclidean, centroid to centroid), ``nearest_radius`` (RMS distance of
        the nearest family's members to its centroid) and ``distance_ratio`` = ``distance`` /
        the median distance between two seen centroids (below 1: the unseen family sits closer
        to a seen one than seen families sit to each other).
    """
    centres = centroids(features, labels)
    seen_present = [s for s in dict.fromkeys(seen) if s in centres]
    if len(seen_present) < 2:
        raise ValueError(f"need at least two seen families in the labels, got {seen_present}")
    pairwise = [
        float(np.linalg.norm(centres[a] - centres[b]))
        for i, a in enumerate(seen_present)
        for b in seen_present[i + 1 :]
    ]
    scale = float(np.median(pairwise))
    arr = np.asarray(labels)
    out: list[dict[str, object]] = []
    for family in (u for u in dict.fromkeys(unseen) if u in centres):
        dists = {s: float(np.linalg.norm(centres[family] - centres[s])) for s in seen_present}
        nearest = min(dists, key=dists.__getitem__)
        members = features[arr == nearest]
        radius = float(np.sqrt(np.mean(np.sum((members - centres[nearest]) ** 2, axis=1))))
        out.append(
            {
                "family": family,
                "nearest": nearest,
                "distance": dists[nearest],
                "nearest_radius": radius,
                "distance_ratio": dists[nearest] / scale if scale > 0 else float("nan"),
                "distances": dists,
            }
        )
    return out
