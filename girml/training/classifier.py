"""Training the routed approach's degradation classifier, and running and storing it.

The classifier (:class:`~girml.models.classifier.DegradationClassifier`) names one class per
image: ``clean`` or a training family (:func:`classifier_classes`). It is trained on fresh
single-family degradations of the training crops, plus clean crops, so it needs no label at
test time; its weights are stored as safetensors (never pickled).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch import nn

from girml.config import CLEAN_FAMILY, DegradationsConfig, TrainConfig
from girml.core.imageio import to_tensor
from girml.models.classifier import DegradationClassifier
from girml.models.shapes import check_shapes, safetensors_shapes
from girml.training.data import TrainPatches, load_pairs
from girml.training.specialists import default_specialist_families, specialist_spec


def classifier_classes(spec: DegradationsConfig) -> list[str]:
    """The routed classifier's classes: ``clean``, then every training family."""
    return [CLEAN_FAMILY, *default_specialist_families(spec)]


def train_classifier(
    train_cfg: TrainConfig,
    spec: DegradationsConfig,
    pairs_dir: Path,
    steps: int,
) -> tuple[DegradationClassifier, list[str], float]:
    """Train the degradation classifier on the training crops.

    Sample ``k`` has class ``k mod C``: a clean crop, or a fresh single-family degradation of
    a crop (the family's in-distribution levels), from the seeded stream of
    :class:`~girml.training.data.TrainPatches` (seed ``train.seed``, patch ``train.patch_size``).
    AdamW at ``train.lr``, batch ``train.batch_size``, cross-entropy, ``steps`` steps.

    Args:
        train_cfg: the ``train`` section (seed, patch size, learning rate, batch size).
        spec: the degradation spec (its training families are the classes).
        pairs_dir: the synthesize stage's pairs (``train/``, ``val/``).
        steps: optimizer steps.

    Returns:
        ``(classifier in eval mode, classes, accuracy on the single-family and clean validation
        images)`` (accuracy NaN when there are none).
    """
    classes = classifier_classes(spec)
    pairs = load_pairs(Path(pairs_dir) / "train" / "pairs.jsonl")
    size, seed = train_cfg.patch_size, train_cfg.seed
    streams = [TrainPatches(pairs, size, seed, clean_prob=1.0)] + [
        TrainPatches(pairs, size, seed, online_prob=1.0, spec=specialist_spec(spec, family))
        for family in classes[1:]
    ]
    torch.manual_seed(seed)
    model = DegradationClassifier(len(classes))
    optimizer = torch.optim.AdamW(model.parameters(), lr=train_cfg.lr, weight_decay=1e-4)
    n, batch = len(classes), train_cfg.batch_size
    model.train()
    for step in range(steps):
        ks = range(step * batch, (step + 1) * batch)
        x = torch.stack([streams[k % n][k // n][0] for k in ks])
        y = torch.tensor([k % n for k in ks])
        loss = nn.functional.cross_entropy(model(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    model.eval()
    return model, classes, _val_accuracy(model, classes, Path(pairs_dir))


def _val_accuracy(model: DegradationClassifier, classes: Sequence[str], pairs_dir: Path) -> float:
    """The share of validation images classified right: each single-family LQ crop as its
    family, each GT crop as ``clean``; NaN without any."""
    val = load_pairs(pairs_dir / "val" / "pairs.jsonl")
    images, labels = [], []
    for family, lq, gt in zip(val.families, val.lq, val.gt, strict=True):
        if family in classes:
            images.append(lq)
            labels.append(classes.index(family))
        images.append(gt)  # every GT crop is a clean example
        labels.append(0)
    if not images:
        return math.nan
    with torch.inference_mode():
        hits = [
            classify(model, image) == label for image, label in zip(images, labels, strict=True)
        ]
    return sum(hits) / len(hits)


def classify(model: DegradationClassifier, image: np.ndarray) -> int:
    """The class index the classifier gives an (H,W,3) uint8 image."""
    with torch.inference_mode():
        return int(model(to_tensor(image)).argmax(dim=1)[0])


def save_classifier(model: DegradationClassifier, path: Path) -> None:
    """Write the classifier's weights to ``path`` as safetensors."""
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, path)


def load_classifier(
    path: Path, num_classes: int, classes_from: Path | None = None
) -> DegradationClassifier:
    """A classifier of ``num_classes`` classes with the weights of ``path`` (never unpickles),
    in eval mode.

    The shapes the file's header declares are checked against the network's before any tensor
    is read (:func:`girml.models.shapes.safetensors_shapes`), as for restoration models.

    Args:
        path: the ``.safetensors`` file.
        num_classes: classes the classifier must have.
        classes_from: the file ``num_classes`` was read from, named in the error.

    Raises:
        ValueError: an unreadable header, or tensors that are not those of a classifier of
            ``num_classes`` classes (one line naming the file and the first tensor that differs).
    """
    model = DegradationClassifier(num_classes)
    planned = {name: tuple(t.shape) for name, t in model.state_dict().items()}
    where = classes_from if classes_from is not None else Path(f"{num_classes} classes")
    check_shapes(safetensors_shapes(Path(path)), planned, Path(path), where)
    model.load_state_dict(load_file(path))
    return model.eval()
