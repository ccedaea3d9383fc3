"""Restore one large photo: the tiled inference before and after batching/channels_last.

Usage: python benchmarks/bench_restore.py [--size 4000x3000] [--threads 2] [--model DIR]
           [--variants before,after,after-nchw,after-batch4] [--repeats 1] [--before-rev REV]

Writes a photo-like JPEG of the given size (scikit-image's bundled colour photos resized into a
grid), then restores it with :func:`girml.restore.restore_files` (read, tiled restore, PNG
write: what ``girml restore`` does after loading the model) once per variant and repeat, each in
a fresh subprocess so that the peak RSS (``VmHWM``, see :func:`_peak_rss_mib`) is that
variant's own. Repeats are interleaved (before, after, before, after ...) so that a change in
machine load hits all variants alike. Variants:

  before        ``girml/core/inference.py`` as of ``--before-rev`` (default: the last commit before
                batched, channels_last tiling), loaded from git into a temporary module and
                put in place of ``restore_image`` inside ``girml.restore``
  after         the current ``girml/core/inference.py`` with its defaults
  after-nchw    the current code with ``channels_last=False``
  after-batchN  the current code with ``batch_tiles=N``
  after-tileN   the current code with tiles of side N (``--tile`` for the others)
  after-workersN  the current code with N tile workers of one torch thread each (``after``
                uses its default: as many workers as torch threads on the CPU)

The model is the ``model`` section of ``--params`` (seed 0, random init with the zero-initialised
block scales and output conv given random values, as a trained model has), or ``--model``, any
folder or URI that :func:`girml.artifacts.loading.load_model` reads. Prints one markdown table row
per run: wall and CPU (user + system, all threads) seconds of the restore, peak RSS, the peak RSS
before the restore began, and the largest 8-bit difference of the output PNG from the first
``before`` output. On a shared machine the CPU seconds move less with the load than the wall
time does.
"""

from __future__ import annotations

import argparse
import functools
import importlib.util
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

BEFORE_REV = "788e7e3"  # the last commit before batched, channels_last tiling
REPO = Path(__file__).resolve().parents[1]


def photo_like(width: int, height: int) -> np.ndarray:
    """(height, width, 3) uint8: scikit-image's colour photos resized into a 3 x 4 grid."""
    from PIL import Image
    from skimage import data

    photos = [data.astronaut(), data.chelsea(), data.coffee(), data.rocket()]
    rows, cols = 3, 4
    canvas = np.zeros((height, width, 3), np.uint8)
    for r in range(rows):
        for c in range(cols):
            y0, y1 = r * height // rows, (r + 1) * height // rows
            x0, x1 = c * width // cols, (c + 1) * width // cols
            photo = Image.fromarray(photos[(r * cols + c) % len(photos)])
            canvas[y0:y1, x0:x1] = np.asarray(photo.resize((x1 - x0, y1 - y0), Image.LANCZOS))
    return canvas


def _peak_rss_mib() -> float:
    """This process's peak RSS in MiB.

    Linux's ``VmHWM`` where there is one: ``ru_maxrss`` of a child started by fork and exec
    keeps the parent's RSS at the fork (exec folds the old address space's peak into it), so
    it would report the benchmark parent's size, not the variant's.
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def worker(args: argparse.Namespace) -> None:
    """Run one variant in this (fresh) process and print its numbers as JSON."""
    import torch

    import girml.core.inference
    import girml.restore
    from girml.config import ModelConfig, load_section, parse_section
    from girml.models import build_model

    if args.threads:
        torch.set_num_threads(args.threads)
    if args.model:
        from girml.artifacts.loading import load_model

        model = load_model(args.model)
    else:
        model = build_model(parse_section(load_section(args.params, "model"), "model", ModelConfig))
        model.load_state_dict(torch.load(Path(args.workdir) / "weights.pt", weights_only=True))
        model.eval()

    name = args.worker
    if name == "before":
        spec = importlib.util.spec_from_file_location(
            "before_inference", Path(args.workdir) / "before_inference.py"
        )
        before = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(before)
        girml.restore.restore_image = before.restore_image
    elif name.startswith("after-workers"):
        girml.restore.restore_image = functools.partial(
            girml.core.inference.restore_image, workers=int(name.removeprefix("after-workers"))
        )
    elif name == "after-nchw":
        girml.restore.restore_image = functools.partial(
            girml.restore.restore_image, channels_last=False
        )
    batch_tiles = int(name.removeprefix("after-batch")) if name.startswith("after-batch") else 1
    tile = int(name.removeprefix("after-tile")) if name.startswith("after-tile") else args.tile

    rss_before = _peak_rss_mib()
    cpu_start = _cpu_seconds()
    start = time.perf_counter()
    report = girml.restore.restore_files(
        [Path(args.workdir) / "photo.jpg"],
        Path(args.workdir) / f"out-{args.run}",
        model,
        tile=tile,
        overlap=args.overlap,
        batch_tiles=batch_tiles,
    )
    wall = time.perf_counter() - start
    cpu = _cpu_seconds() - cpu_start
    if not report.ok:
        raise SystemExit(f"restore failed: {report.failed}")
    result = {
        "wall_s": wall,
        "cpu_s": cpu,
        "peak_rss_mib": _peak_rss_mib(),
        "rss_before_mib": rss_before,
        "threads": torch.get_num_threads(),
        "batch_tiles": batch_tiles,
        "tile": tile,
    }
    print(json.dumps(result))


def prepare(args: argparse.Namespace, workdir: Path) -> None:
    """Write the photo, the model weights and the ``before`` module into ``workdir``."""
    import torch
    from PIL import Image

    from girml.config import ModelConfig, load_section, parse_section
    from girml.models import build_model

    width, height = (int(v) for v in args.size.lower().split("x"))
    Image.fromarray(photo_like(width, height)).save(workdir / "photo.jpg", quality=90)
    old = subprocess.run(
        ["git", "show", f"{args.before_rev}:girml/core/inference.py"],
        cwd=REPO,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    (workdir / "before_inference.py").write_text(old, encoding="utf-8")
    if not args.model:
        torch.manual_seed(0)
        model = build_model(parse_section(load_section(args.params, "model"), "model", ModelConfig))
        with torch.no_grad():
            for name, param in model.named_parameters():
                if name.endswith(("beta", "gamma")):
                    param.normal_(0.0, 0.5)
                elif name.startswith(("ending.", "tail.")):
                    param.normal_(0.0, 0.05)
        torch.save(model.state_dict(), workdir / "weights.pt")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size", default="4000x3000", help="WIDTHxHEIGHT of the photo")
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--model", default=None, help="model folder or URI instead of params")
    parser.add_argument("--tile", type=int, default=256)
    parser.add_argument("--overlap", type=int, default=32)
    parser.add_argument("--threads", type=int, default=0, help="torch threads; 0: torch default")
    parser.add_argument("--variants", default="before,after")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--before-rev", default=BEFORE_REV)
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--workdir", help=argparse.SUPPRESS)
    parser.add_argument("--run", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args)
        return

    from PIL import Image

    variants = args.variants.split(",")
    known = {"before", "after", "after-nchw"}
    bad = [
        v
        for v in variants
        if v not in known
        and not v.removeprefix("after-batch").isdigit()
        and not v.removeprefix("after-tile").isdigit()
        and not v.removeprefix("after-workers").isdigit()
    ]
    if bad:
        parser.error(
            f"unknown variants {bad}; known: {sorted(known)}, after-batchN, after-tileN, "
            "after-workersN"
        )
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        prepare(args, workdir)
        print(f"photo {args.size}, tile {args.tile}, overlap {args.overlap}")
        print(f"load average before: {os.getloadavg()}")
        print(
            "| variant | threads | tile | batch tiles | wall s | CPU s | peak RSS MiB "
            "| RSS before MiB | max diff |"
        )
        print("|---|---|---|---|---|---|---|---|---|")
        reference = None
        for repeat in range(args.repeats):
            for name in variants:
                run = f"{name}-{repeat}"
                cmd = [sys.executable, __file__, "--worker", name, "--workdir", tmp, "--run", run]
                for flag in ("size", "params", "model", "tile", "overlap", "threads"):
                    if getattr(args, flag) is not None:
                        cmd += [f"--{flag}", str(getattr(args, flag))]
                proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
                if proc.returncode:
                    raise SystemExit(f"{name} failed:\n{proc.stderr}")
                res = json.loads(proc.stdout.strip().splitlines()[-1])
                out = np.asarray(Image.open(workdir / f"out-{run}" / "photo.png"), np.int16)
                if reference is None and name == "before":
                    reference = out
                diff = "" if reference is None else str(int(np.abs(out - reference).max()))
                print(
                    f"| {name} | {res['threads']} | {res['tile']} | {res['batch_tiles']} "
                    f"| {res['wall_s']:.1f} "
                    f"| {res['cpu_s']:.1f} | {res['peak_rss_mib']:.0f} "
                    f"| {res['rss_before_mib']:.0f} | {diff} |",
                    flush=True,
                )
        print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
