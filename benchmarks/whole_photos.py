"""Restore whole photos as ``girml restore`` does, and check that tiling changes nothing (#17).

Usage: python benchmarks/whole_photos.py --model MODEL [--model MODEL2 ...] --photos PATH ...
           [--tiling] [--passes 1,2,3] [--crop 256] [--seed 0] [--json OUT]

Each photo (files, or image files directly inside folders) is degraded whole by
:data:`DEGRADATIONS` (the rows of the whole-photo issue: clean, Gaussian noise sigma 25, JPEG
q20, Gaussian blur sigma 2, darkened by gamma 2.5), quantised to uint8, and restored by each
``--model`` through :func:`girml.core.inference.restore_image` with ``girml restore``'s defaults
(tiles of :data:`~girml.config.RESTORE_TILE`, overlap :data:`~girml.config.RESTORE_OVERLAP`,
photo-level pooling, no self-ensemble). Scores per degradation (mean over the photos):

  psnr_y   PSNR-Y of the output against the clean photo (BasicSR convention, capped at 100 dB)
  gain     psnr_y minus the degraded input's PSNR-Y (dB); not defined for ``clean``
  shift    the largest mean brightness shift of any 256-pixel block (grey levels,
           girml.metrics.block_shift), the largest over the photos
  mean     the mean brightness change of the whole photo (grey levels, signed): a dim photo
           that is brightened shows here

``crop_noise_gain`` is the gain of the same noisy photos' ``--crop`` px centre crops restored
whole (as the crop suites are): the whole-photo noise gain should be within 1 dB of it.

``--tiling`` also restores each clean photo with tiles of 256 and 512 and whole (tile 0), and
for each of ``--passes`` pooling statistics passes with tiles of 256, and prints the mean
absolute difference between each pair (grey levels, on 0-255 RGB), the largest block shift and
the seconds taken. ``--json OUT`` writes every number and the command line.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from photo_sets import expand_photos

from girml.artifacts.loading import load_model
from girml.config import RESTORE_OVERLAP
from girml.core.imageio import read_image, to_tensor, to_uint8
from girml.core.inference import restore_image, restore_tiled
from girml.degradations import OPS, Recipe, Step, apply_recipe
from girml.evaluation.scores import clipped_psnr
from girml.evaluation.whole import restore_restorer
from girml.metrics import block_shift

CLEAN = "clean"
LUMA = np.array([0.299, 0.587, 0.114])
# name -> (op, family, params), units as in params.yaml `degradations`
DEGRADATIONS: dict[str, tuple[str, str, dict[str, Any]] | None] = {
    CLEAN: None,
    "gaussian_noise_25": ("gaussian_noise", "noise", {"sigma": 25.0}),
    "jpeg_q20": ("jpeg", "jpeg", {"quality": 20}),
    "gaussian_blur_2": ("gaussian_blur", "blur", {"sigma": 2.0}),
    "darkened_g2.5": ("low_light", "lowlight", {"gamma": 2.5, "exposure": 1.0}),
}


def degrade(image: np.ndarray, name: str, seed: int) -> np.ndarray:
    """``image`` (H,W,3) uint8 under degradation ``name`` (random ops seeded), as uint8."""
    spec = DEGRADATIONS[name]
    if spec is None:
        return image
    op, family, params = spec
    if OPS.meta(op)["random"]:
        params = {**params, "seed": seed}
    recipe = Recipe(composer="single", level="id", steps=(Step(op, family, params),))
    return to_uint8(apply_recipe(to_tensor(image), recipe))


def luma_mean_shift(out: np.ndarray, ref: np.ndarray) -> float:
    """Signed mean brightness change of the whole image, grey levels."""
    return float(((out.astype(np.float64) - ref.astype(np.float64)) @ LUMA).mean())


def restore(
    model: torch.nn.Module, lq: np.ndarray, tile: int | None, passes: int = 3
) -> np.ndarray:
    """``lq`` restored with tiles of ``tile`` (None: whole) and ``passes`` statistics passes."""
    x = to_tensor(lq)
    if tile is None or max(lq.shape[:2]) <= tile:
        return to_uint8(restore_image(model, x, tile, RESTORE_OVERLAP))
    return to_uint8(
        restore_tiled(model, x, tile, RESTORE_OVERLAP, pooling_passes=passes).clamp(0, 1)
    )


def centre_crop(image: np.ndarray, size: int) -> np.ndarray:
    height, width = image.shape[:2]
    y, x = max(0, (height - size) // 2), max(0, (width - size) // 2)
    return np.ascontiguousarray(image[y : y + size, x : x + size])


def score_model(
    model: torch.nn.Module, photos: list[Path], crop: int, seed: int
) -> dict[str, dict[str, float]]:
    """Per degradation: mean psnr_y, gain and mean brightness change, largest block shift."""
    scores: dict[str, dict[str, list[float]]] = {n: {} for n in DEGRADATIONS}
    as_restore_does = restore_restorer(model)  # the whole suite's restorer: girml restore's
    for index, photo in enumerate(photos):
        gt = read_image(photo)
        for name in DEGRADATIONS:
            lq = degrade(gt, name, seed + index)
            out = as_restore_does(lq)
            row = scores[name]
            psnr_in = clipped_psnr(lq, gt, 0, test_y=True)
            psnr_out = clipped_psnr(out, gt, 0, test_y=True)
            row.setdefault("psnr_y", []).append(psnr_out)
            row.setdefault("gain", []).append(psnr_out - psnr_in)
            row.setdefault("shift", []).append(block_shift(out, gt))
            row.setdefault("mean", []).append(luma_mean_shift(out, gt))
            if name == "gaussian_noise_25":
                lq_c, gt_c = centre_crop(lq, crop), centre_crop(gt, crop)
                out_c = to_uint8(restore_image(model, to_tensor(lq_c), None, 0))
                gain_c = clipped_psnr(out_c, gt_c, 0, test_y=True) - clipped_psnr(
                    lq_c, gt_c, 0, test_y=True
                )
                row.setdefault("crop_noise_gain", []).append(gain_c)
            print(
                f"  {photo.stem} {name}: {psnr_out:.2f} dB ({psnr_out - psnr_in:+.2f})", flush=True
            )
    summary: dict[str, dict[str, float]] = {}
    for name, row in scores.items():
        summary[name] = {
            key: float(max(values) if key == "shift" else np.mean(values))
            for key, values in row.items()
        }
        if name == CLEAN:
            summary[name].pop("gain")
            summary[name]["psnr_y_min"] = float(min(row["psnr_y"]))
    return summary


def tiling_check(
    model: torch.nn.Module, photos: list[Path], passes: list[int]
) -> list[dict[str, Any]]:
    """Per clean photo: outputs with tiles of 256, 512 and whole (and 256 at each pass count),
    their pairwise mean absolute differences (grey levels), block shifts and seconds."""
    rows = []
    for photo in photos:
        gt = read_image(photo)
        outs, seconds = {}, {}
        for label, tile, n in [
            ("whole", None, 3),
            ("tile512", 512, 3),
            *[(f"tile256_p{p}", 256, p) for p in passes],
        ]:
            start = time.perf_counter()
            outs[label] = restore(model, gt, tile, n)
            seconds[label] = time.perf_counter() - start
        row: dict[str, Any] = {"photo": photo.name, "seconds": seconds}
        row["shift"] = {k: block_shift(v, gt) for k, v in outs.items()}
        row["psnr_y"] = {k: clipped_psnr(v, gt, 0, test_y=True) for k, v in outs.items()}
        labels = list(outs)
        row["mad"] = {
            f"{a}~{b}": float(np.abs(outs[a].astype(float) - outs[b].astype(float)).mean())
            for i, a in enumerate(labels)
            for b in labels[i + 1 :]
        }
        print(f"  {photo.stem}: " + ", ".join(f"{k} {v:.3f}" for k, v in row["mad"].items()))
        rows.append(row)
    return rows


def markdown(name: str, summary: dict[str, dict[str, float]]) -> str:
    lines = [
        f"### {name}",
        "",
        "| input | PSNR-Y | gain | largest block shift | mean brightness change |",
        "|---|---|---|---|---|",
    ]
    for row, s in summary.items():
        gain = f"{s['gain']:+.2f}" if "gain" in s else "-"
        lines.append(
            f"| {row} | {s['psnr_y']:.2f} | {gain} | {s['shift']:.1f} | {s['mean']:+.2f} |"
        )
    noise = summary["gaussian_noise_25"]
    lines.append(
        f"\nnoise sigma 25 on the centre crops, restored whole: {noise['crop_noise_gain']:+.2f} dB"
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", action="append", required=True)
    parser.add_argument("--photos", type=Path, nargs="+", required=True)
    parser.add_argument("--tiling", action="store_true")
    parser.add_argument("--passes", default="1,2,3")
    parser.add_argument("--crop", type=int, default=256)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    torch.manual_seed(0)
    photos = expand_photos(args.photos)
    if not photos:
        parser.error(f"no image file in {' '.join(map(str, args.photos))}")
    record: dict[str, Any] = {
        "command": shlex.join(["python", "benchmarks/whole_photos.py", *(argv or sys.argv[1:])]),
        "photos": [p.name for p in photos],
        "models": {},
    }
    for uri in args.model:
        model = load_model(uri)
        print(f"{uri}:", flush=True)
        entry: dict[str, Any] = {"degradations": score_model(model, photos, args.crop, args.seed)}
        if args.tiling:
            passes = [int(p) for p in args.passes.split(",")]
            entry["tiling"] = tiling_check(model, photos, passes)
        record["models"][uri] = entry
        print(markdown(uri, entry["degradations"]))
    if args.json:
        args.json.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
