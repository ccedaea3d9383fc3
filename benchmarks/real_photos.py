"""Score a model on real camera photos that are not in the project's data (issue #8).

Usage: python benchmarks/real_photos.py --model MODEL [--photos PATH ...]
           [--manifest data/clean/manifest.csv] [--whole]
           [--methods model,identity,nlm,wiener,deblock,bicubic_sharpen,dark_channel,clahe]
           [--max-crops-per-photo 4] [--crop 256] [--tile 256] [--seed 0] [--json OUT]

The project trains and benchmarks on scikit-image's and scikit-learn's bundled photos. This
script checks the model on other real photos instead: by default matplotlib's
``sample_data/grace_hopper.jpg`` (512x600) and the Rust embedded book's ``f3.jpg`` and
``verify.jpeg`` (720x477 camera photos of a circuit board), whichever exist here; ``--photos``
takes files or folders (image files directly inside a folder). ``--manifest`` adds the
package photos of a collect manifest's test split (``profiles/release.yaml`` collects them;
:func:`photo_sets.manifest_photos`): camera photos the training never saw. Each photo gives up to
``--max-crops-per-photo`` non-overlapping ``--crop`` x ``--crop`` crops, a grid centred on the
photo and taken row by row (defaults: 4 + 2 + 2 = 8 crops of 256 px).

Each crop is degraded by :data:`DEGRADATIONS` (12 fixed single-op recipes of the kinds that
docs/data.md lists, built from the registered ops with ``params.yaml``'s units, plus ``clean``: no
degradation), quantised to uint8 as a saved PNG would be, and brought back to the crop's size
with :func:`girml.training.data.match_size` where an op changes it (as the evaluation harness
does; ``resize`` is the same-size down-up op, so this is a no-op here). The random ops draw from
a seed fixed by ``--seed``, the photo's file name, the crop position and the degradation, so a
run is repeatable and does not depend on the order of ``--photos``.

Every method of ``--methods`` restores every degraded crop: ``model`` is ``--model`` (a model
folder, a ``models:/`` URI or a release folder, see :func:`girml.artifacts.loading.load_model`) run
through :func:`girml.core.inference.restore_image` with ``--tile`` (overlap tile / 8, as the
evaluation harness), the other names are classical baselines from
:data:`girml.baselines.BASELINES`. A baseline that raises is scored NaN on that crop (with a
warning), so the row's mean is NaN. Scores, as ``girml evaluate`` (BasicSR convention, 8-bit,
no border crop, Y of BT.601, clipped at 100 dB by :func:`girml.evaluation.scores.clipped_psnr`):

  psnr_y        PSNR-Y of the output against the clean crop
  gain          psnr_y minus the degraded input's PSNR-Y (dB); not defined for ``clean``
  shift         |mean(Y_out) - mean(Y_gt)| in grey levels, Y = 0.299 R + 0.587 G + 0.114 B
                on 0-255 (full-range luma, not the 16-235 Y of the PSNR)

With ``--whole`` every photo is also scored whole, restored as ``girml restore`` does by default
(:func:`girml.evaluation.whole.restore_restorer`: tiles of 256 with photo-level pooling), in a
second table (JSON key ``whole``).

Prints a markdown table (rows: the degradations and ``clean``; mean over the 12 degraded rows;
the model's harm count, i.e. degradations whose mean gain is below -0.1 dB) and one line per
method with its mean gain and harm count. ``--json OUT`` writes the same numbers (per
degradation and method: mean psnr_y, gain and shift; the recipes; the photos, their sizes and
crops), the command line, and the sha256 of the weights file that was scored (a release's
``model.safetensors`` or a model folder's ``weights.pt``; null for a registry URI):
``girml release --real-photos OUT`` puts them on the model card only when that hash is the
released file's.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import shlex
import sys
import time
import zlib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from photo_sets import (
    Crop,
    default_photos,
    expand_photos,
    load_crops,
    load_whole,
    manifest_photos,
)

from girml.artifacts.loading import load_model, weights_file
from girml.baselines import BASELINES
from girml.core.hashing import file_digest
from girml.core.imageio import to_tensor, to_uint8
from girml.degradations import OPS, Recipe, Step, apply_recipe
from girml.evaluation.restorers import model_restorer
from girml.evaluation.scores import clipped_psnr
from girml.evaluation.whole import restore_restorer
from girml.training.data import match_size

log = logging.getLogger("real_photos")

MODEL = "model"
IDENTITY = "identity"
CLEAN = "clean"
DEFAULT_METHODS = (
    MODEL,
    IDENTITY,
    "nlm",
    "wiener",
    "deblock",
    "bicubic_sharpen",
    "dark_channel",
    "clahe",
)
HARM_DB = -0.1  # a mean gain below this counts as harm
# Full-range BT.601 luma, for the brightness shift in 0-255 grey levels.
LUMA = np.array([0.299, 0.587, 0.114])

# name -> (op, family, params); units as in params.yaml `degradations` (noise sigma in 8-bit
# levels, blur sigma/length/radius in pixels, JPEG quality, resize factor, haze beta and A,
# low-light gamma and exposure). Random ops get their seed per crop.
DEGRADATIONS: dict[str, tuple[str, str, dict[str, Any]]] = {
    "gaussian_noise_25": ("gaussian_noise", "noise", {"sigma": 25.0}),
    "gaussian_noise_50": ("gaussian_noise", "noise", {"sigma": 50.0}),
    "poisson_noise_40": ("poisson_noise", "noise", {"scale": 40.0}),
    "gaussian_blur_1.5": ("gaussian_blur", "blur", {"sigma": 1.5}),
    "motion_blur_9": ("motion_blur", "blur", {"length": 9.0}),
    "defocus_blur_2": ("defocus_blur", "blur", {"radius": 2.0}),
    "jpeg_q20": ("jpeg", "jpeg", {"quality": 20}),
    "jpeg_q40": ("jpeg", "jpeg", {"quality": 40}),
    "resize_x2": ("resize", "resize", {"scale": 2.0}),
    "resize_x4": ("resize", "resize", {"scale": 4.0}),
    "haze_b1.0_A0.9": ("haze", "haze", {"beta": 1.0, "A": 0.9}),
    "low_light_g2_e0.5": ("low_light", "lowlight", {"gamma": 2.0, "exposure": 0.5}),
}
ROWS = (*DEGRADATIONS, CLEAN)

Restorer = Callable[[np.ndarray], np.ndarray]


def crop_seed(base: int, crop: Crop, degradation: str) -> int:
    """A seed fixed by ``base``, the photo's name, the crop position and the degradation."""
    return (base + zlib.crc32(f"{crop.photo.name}:{crop.y},{crop.x}:{degradation}".encode())) % (
        2**31
    )


def make_recipe(name: str, seed: int) -> Recipe:
    """The recipe of one :data:`DEGRADATIONS` entry (``clean``: no step) with ``seed``."""
    if name == CLEAN:
        return Recipe(composer="single", level="id", steps=())
    op, family, params = DEGRADATIONS[name]
    if OPS.meta(op)["random"]:
        params = {**params, "seed": seed}
    return Recipe(composer="single", level="id", steps=(Step(op, family, params),))


def degrade(gt: np.ndarray, recipe: Recipe) -> np.ndarray:
    """Apply ``recipe`` to an (H, W, 3) uint8 crop; uint8 of the same shape, as a saved PNG."""
    lq = to_uint8(apply_recipe(to_tensor(gt), recipe))
    if lq.shape != gt.shape:
        lq = to_uint8(match_size(to_tensor(lq), gt.shape[:2]))
    return lq


def mean_luma(image: np.ndarray) -> float:
    """Mean full-range BT.601 luma of an (H, W, 3) uint8 image, in 0-255 grey levels."""
    return float(np.mean(image.astype(np.float64) @ LUMA))


def build_restorers(
    methods: Sequence[str], model_uri: str, tile: int | None, *, whole: bool = False
) -> dict[str, Restorer]:
    """``model`` -> the loaded model (tiled as the harness does, or with ``whole`` as
    ``girml restore`` does by default); other names -> baselines."""
    restorers = {}
    for name in methods:
        if name == MODEL:
            model = load_model(model_uri)
            restorers[name] = restore_restorer(model) if whole else model_restorer(model, tile)
        else:
            restorers[name] = BASELINES.get(name)  # KeyError listing the baselines
    return restorers


def score_all(
    crops: Sequence[Crop], restorers: dict[str, Restorer], seed: int
) -> dict[str, dict[str, Any]]:
    """Per degradation row: the input's scores and each method's, one value per crop.

    Returns:
        ``{row: {"input": {"psnr_y": [...], "shift": [...]}, "methods": {method: {...}}}}``.
    """
    scores: dict[str, dict[str, Any]] = {
        row: {
            "input": {"psnr_y": [], "shift": []},
            "methods": {m: {"psnr_y": [], "gain": [], "shift": []} for m in restorers},
        }
        for row in ROWS
    }
    failed: set[tuple[str, str]] = set()
    with torch.inference_mode():
        for crop in crops:
            gt, gt_luma = crop.pixels, mean_luma(crop.pixels)
            for row in ROWS:
                lq = degrade(gt, make_recipe(row, crop_seed(seed, crop, row)))
                psnr_in = clipped_psnr(lq, gt, 0, test_y=True)
                scores[row]["input"]["psnr_y"].append(psnr_in)
                scores[row]["input"]["shift"].append(abs(mean_luma(lq) - gt_luma))
                for method, restore in restorers.items():
                    try:
                        out = restore(lq)
                        if out.shape != gt.shape or out.dtype != np.uint8:
                            raise ValueError(f"returned {out.dtype} {out.shape}")
                    except Exception as exc:  # a failing baseline is NaN, not a crash
                        if (method, row) not in failed:
                            log.warning("%s failed on %s (%s): NaN", method, row, exc)
                            failed.add((method, row))
                        psnr_out, shift = math.nan, math.nan
                    else:
                        psnr_out = clipped_psnr(out, gt, 0, test_y=True)
                        shift = abs(mean_luma(out) - gt_luma)
                    entry = scores[row]["methods"][method]
                    entry["psnr_y"].append(psnr_out)
                    entry["gain"].append(math.nan if row == CLEAN else psnr_out - psnr_in)
                    entry["shift"].append(shift)
    return scores


def _mean(values: Sequence[float]) -> float:
    return float(np.mean(values)) if values else math.nan


def summarise(scores: dict[str, dict[str, Any]], methods: Sequence[str]) -> dict[str, Any]:
    """Means per row and method, the per-row best classical method, the model's harm count."""
    classical = [m for m in methods if m not in (MODEL, IDENTITY)]
    rows: dict[str, Any] = {}
    for row in ROWS:
        means = {
            m: {key: _mean(vals) for key, vals in scores[row]["methods"][m].items()}
            for m in methods
        }
        best = None
        if row != CLEAN:
            finite = [m for m in classical if math.isfinite(means[m]["gain"])]
            best = max(finite, key=lambda m: means[m]["gain"]) if finite else None
        rows[row] = {
            "psnr_y_input": _mean(scores[row]["input"]["psnr_y"]),
            "shift_input": _mean(scores[row]["input"]["shift"]),
            "methods": means,
            "best_classical": best,
            "best_classical_gain": means[best]["gain"] if best else math.nan,
        }
    degraded = [rows[r] for r in DEGRADATIONS]
    per_method = {}
    for m in methods:
        gains = [r["methods"][m]["gain"] for r in degraded]
        per_method[m] = {
            "mean_gain": _mean(gains),
            "mean_shift": _mean([r["methods"][m]["shift"] for r in degraded]),
            "harm_count": sum(1 for g in gains if g < HARM_DB),
            "nan_rows": sum(1 for g in gains if not math.isfinite(g)),
        }
    mean_row = {
        "psnr_y_input": _mean([r["psnr_y_input"] for r in degraded]),
        "shift_input": _mean([r["shift_input"] for r in degraded]),
        "best_classical_gain": _mean([r["best_classical_gain"] for r in degraded]),
    }
    return {"rows": rows, "mean_degraded": mean_row, "per_method": per_method}


def _fmt(value: float, signed: bool = False) -> str:
    if not math.isfinite(value):
        return "NaN"
    value = round(value, 2) + 0.0  # no "-0.00"
    return f"{value:+.2f}" if signed else f"{value:.2f}"


def render_table(summary: dict[str, Any], has_model: bool, photos: int, crops: int) -> str:
    """The markdown report: the per-degradation table, then one line per method."""
    rows, mean_row, per_method = summary["rows"], summary["mean_degraded"], summary["per_method"]
    head = "| degradation | input PSNR-Y | model PSNR-Y | model gain | best classical gain "
    head += "| model shift | input shift |"
    lines = [head, "|---|---:|---:|---:|---|---:|---:|"]
    for name in ROWS:
        r = rows[name]
        model = r["methods"].get(MODEL) if has_model else None
        best = r["best_classical"]
        best_txt = f"{_fmt(r['best_classical_gain'], True)} ({best})" if best else "n/a"
        lines.append(
            f"| {name} | {_fmt(r['psnr_y_input'])} "
            f"| {_fmt(model['psnr_y']) if model else 'n/a'} "
            f"| {_fmt(model['gain'], True) if model and name != CLEAN else 'n/a'} "
            f"| {best_txt} | {_fmt(model['shift']) if model else 'n/a'} "
            f"| {_fmt(r['shift_input'])} |"
        )
    model_mean = per_method.get(MODEL)
    lines.append(
        f"| **mean of the {len(DEGRADATIONS)} degraded** | {_fmt(mean_row['psnr_y_input'])} "
        f"| {_fmt(mean_row['psnr_y_input'] + model_mean['mean_gain']) if model_mean else 'n/a'} "
        f"| {_fmt(model_mean['mean_gain'], True) if model_mean else 'n/a'} "
        f"| {_fmt(mean_row['best_classical_gain'], True)} (per-row best) "
        f"| {_fmt(model_mean['mean_shift']) if model_mean else 'n/a'} "
        f"| {_fmt(mean_row['shift_input'])} |"
    )
    lines.append("")
    if model_mean:
        lines.append(
            f"Model harm count: {model_mean['harm_count']} of {len(DEGRADATIONS)} degradations "
            f"with a mean gain below {HARM_DB} dB. Photos: {photos}, crops: {crops}."
        )
    else:
        lines.append(f"Photos: {photos}, crops: {crops}.")
    lines.append("")
    lines.append(
        f"| method | mean gain ({len(DEGRADATIONS)} degraded) | harm count | clean PSNR-Y "
        "| NaN rows |"
    )
    lines.append("|---|---:|---:|---:|---:|")
    for m, stats in per_method.items():
        lines.append(
            f"| {m} | {_fmt(stats['mean_gain'], True)} | {stats['harm_count']} "
            f"| {_fmt(rows[CLEAN]['methods'][m]['psnr_y'])} | {stats['nan_rows']} |"
        )
    return "\n".join(lines)


def _json_safe(value: Any) -> Any:
    """NaN -> None, recursively, so the JSON is valid."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    return value


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", required=True, help="model folder, models:/ URI or release")
    parser.add_argument("--photos", nargs="+", type=Path, help="files or folders of photos")
    parser.add_argument(
        "--manifest",
        type=Path,
        help="also the test-split package photos of this collect manifest (release profile)",
    )
    parser.add_argument(
        "--whole", action="store_true", help="also score the photos whole, as girml restore does"
    )
    parser.add_argument("--methods", default=",".join(DEFAULT_METHODS))
    parser.add_argument("--max-crops-per-photo", type=int, default=4)
    parser.add_argument("--crop", type=int, default=256, help="crop side in pixels")
    parser.add_argument("--tile", type=int, default=256, help="model tile side; 0 = whole")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=0, help="torch threads; 0: default")
    parser.add_argument("--json", type=Path, help="also write the numbers here")
    args = parser.parse_args(argv)
    command = shlex.join(
        ["python", "benchmarks/real_photos.py", *(sys.argv[1:] if argv is None else argv)]
    )
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    if args.max_crops_per_photo < 1 or args.crop < 1:
        parser.error("--max-crops-per-photo and --crop must be >= 1")
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    if not methods:
        parser.error("--methods is empty")

    if args.threads:
        torch.set_num_threads(args.threads)
    start = time.perf_counter()
    photos = expand_photos(args.photos) if args.photos else default_photos()
    if args.manifest:
        photos += manifest_photos(args.manifest)
    crops = load_crops(photos, args.crop, args.max_crops_per_photo)
    if not crops:
        log.error("no crop of %d px from %s", args.crop, [str(p) for p in photos])
        return 1
    weights = weights_file(args.model) if MODEL in methods else None
    weights_sha256 = file_digest(weights) if weights is not None else None  # before scoring
    restorers = build_restorers(methods, args.model, args.tile or None)
    scores = score_all(crops, restorers, args.seed)
    summary = summarise(scores, methods)
    used = sorted({c.photo for c in crops})
    print(render_table(summary, MODEL in methods, len(used), len(crops)))
    whole = None
    if args.whole:
        wholes = load_whole(photos)
        restorers = build_restorers(methods, args.model, None, whole=True)
        whole = summarise(score_all(wholes, restorers, args.seed), methods)
        print("\nWhole photos, restored as `girml restore` does (tiles of 256, overlap 32):\n")
        print(render_table(whole, MODEL in methods, len(wholes), len(wholes)))
    elapsed = time.perf_counter() - start
    print(f"\n{elapsed:.1f} s", file=sys.stderr)
    if args.json:
        photos_used: dict[str, dict[str, Any]] = {}
        for crop in crops:
            width, height = crop.photo_size
            entry = photos_used.setdefault(
                str(crop.photo),
                {"path": str(crop.photo), "crops": 0, "width": width, "height": height},
            )
            entry["crops"] += 1
        record = {
            "command": command,
            "model": args.model,
            "weights_file": None if weights is None else str(weights),
            "weights_sha256": weights_sha256,
            "methods": methods,
            "photos": list(photos_used.values()),
            "crops": len(crops),
            "crop": args.crop,
            "tile": args.tile or None,
            "seed": args.seed,
            "harm_db": HARM_DB,
            "degradations": {
                name: {
                    "op": op,
                    "family": family,
                    "params": params,
                    "seeded": OPS.meta(op)["random"],
                }
                for name, (op, family, params) in DEGRADATIONS.items()
            },
            "wall_s": round(elapsed, 1),
            **summary,
            "whole": whole,
        }
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(_json_safe(record), indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
