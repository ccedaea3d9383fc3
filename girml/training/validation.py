"""Validation: mean PSNR-Y of the degraded inputs and of the model's outputs, overall and per
degradation family, on whole validation images (same-size images batched by :data:`VAL_BATCH`).
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np
import torch
from torch import nn

from girml.core.imageio import to_tensor, to_uint8
from girml.core.inference import restore_image
from girml.metrics import psnr
from girml.training.data import PairSet

VAL_BATCH = 8


def validate(
    model: nn.Module, pairs: PairSet, batch_size: int = VAL_BATCH
) -> tuple[dict[str, float], dict[str, dict[str, float]]]:
    """Mean PSNR-Y (crop 0) of the degraded inputs and of the model's outputs on whole images.

    Outputs are clamped and rounded to uint8 before scoring, as a saved PNG would be. The
    model's train/eval mode is restored afterwards.

    Args:
        model: restoration network, (B,3,H,W) -> (B,3,H,W).
        pairs: validation pairs (same-size GT and LQ).
        batch_size: images per forward pass (same-size images are batched).

    Returns:
        ``({"val.psnr_y_input", "val.psnr_y_model", "val.psnr_gain"}, per_family)`` where
        ``per_family[family] = {"psnr_y_input", "psnr_y_model", "n"}``.
    """
    if len(pairs) == 0:
        raise ValueError("no validation pairs")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    by_shape: dict[tuple[int, ...], list[int]] = defaultdict(list)
    for i, gt in enumerate(pairs.gt):
        by_shape[gt.shape].append(i)
    scores_in = np.zeros(len(pairs))
    scores_out = np.zeros(len(pairs))
    was_training = model.training
    model.eval()
    try:
        for indices in by_shape.values():
            for first in range(0, len(indices), batch_size):
                chunk = indices[first : first + batch_size]
                lq = torch.cat([to_tensor(pairs.lq[i]) for i in chunk])
                out = restore_image(model, lq, tile=None, overlap=0)
                for j, i in enumerate(chunk):
                    scores_in[i] = psnr(pairs.lq[i], pairs.gt[i], crop_border=0, test_y=True)
                    scores_out[i] = psnr(to_uint8(out[j]), pairs.gt[i], crop_border=0, test_y=True)
    finally:
        model.train(was_training)
    families = np.array(pairs.families)
    per_family = {
        family: {
            "psnr_y_input": float(scores_in[families == family].mean()),
            "psnr_y_model": float(scores_out[families == family].mean()),
            "n": int((families == family).sum()),
        }
        for family in sorted(set(pairs.families))
    }
    metrics = {
        "val.psnr_y_input": float(scores_in.mean()),
        "val.psnr_y_model": float(scores_out.mean()),
        "val.psnr_gain": float(scores_out.mean() - scores_in.mean()),
    }
    return metrics, per_family
