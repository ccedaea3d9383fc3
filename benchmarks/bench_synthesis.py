"""Synthesis throughput (pairs/s) per composer, rendering real 128x128 train pairs.

Usage: python benchmarks/bench_synthesis.py [--pairs 400] [--workers 0]
Needs `girml collect` to have run (reads data/clean/). Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from girml.config import load_section
from girml.data.synthesize import _run, plan_pairs, read_manifest


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--pairs", type=int, default=400)
    parser.add_argument("--workers", type=int, default=0, help="0 = every core")
    args = parser.parse_args()

    spec = load_section(args.params, "degradations")
    cfg = load_section(args.params, "synthesize").model_copy(update={"workers": args.workers})
    images = [
        im
        for im in read_manifest(Path("data/clean/manifest.csv"), Path("data/clean/images"))
        if im.split == "train" and im.category not in cfg.held_categories
    ]
    workers = args.workers or os.cpu_count()
    print("| composer | pairs | workers | seconds | pairs/s |\n|---|---|---|---|---|")
    for composer in ("single", "mixed", "second_order"):
        one = spec.model_copy(update={"train_composers": {composer: 1.0}})
        jobs = plan_pairs(images, "train", args.pairs, one, cfg)
        with tempfile.TemporaryDirectory() as tmp:
            start = time.perf_counter()
            _run(jobs, Path(tmp), args.workers, desc=composer)
            secs = time.perf_counter() - start
        print(f"| {composer} | {args.pairs} | {workers} | {secs:.1f} | {args.pairs / secs:.1f} |")


if __name__ == "__main__":
    main()
