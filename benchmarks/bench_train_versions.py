"""Training throughput of two versions of the code, side by side: a git revision against this tree.

Usage: python benchmarks/bench_train_versions.py [--rev 788e7e3] [--steps 200] [--rounds 3]
       [--threads 2] [--new-threads N]
Needs `girml synthesize` to have run (reads data/pairs/). ``--rev`` is checked out into a
temporary git worktree; each round trains once with that revision's ``girml.training.train`` and
once with this tree's, in fresh subprocesses (alternating which goes first), on the same pairs,
the same model (this tree's params.yaml ``model``), batch, patch size, thread count and stream
settings. Each version runs with its own defaults for what it has (this tree: params.yaml's
``channels_last`` and ``fused_optim``; identity samples and black regions off in both, since
they change the data, not the loop). Samples/s is the median of the loop's own log windows
(every 25 steps) after the first 50 steps: training only, no start-up, validation or checkpoint.
``--new-threads`` gives this tree's run another torch thread count than ``--threads`` (the
revision's). Prints a markdown table with the median over rounds and the paired ratio (this
tree / rev).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DRIVER = """
import json, statistics, sys, tempfile, torch
from pathlib import Path
from girml.config import DegradationsConfig, ModelConfig, TrainConfig, parse_section, read_params
from girml.training.loop import train
try:  # this tree: the caller loads the weights of train.init_from
    from girml.artifacts.loading import source_weights
except ImportError:  # an older revision: train() loads them itself (or has no init_from)
    source_weights = None

settings = json.loads(sys.argv[1])
torch.set_num_threads(settings["threads"])
params = read_params(settings["params"])
model = parse_section(settings["model"], "model", ModelConfig)
fields = TrainConfig.model_fields
raw = {k: v for k, v in {**params["train"], **settings["train"]}.items() if k in fields}
cfg = parse_section(raw, "train", TrainConfig)
spec = parse_section(params["degradations"], "degradations", DegradationsConfig)
speeds = []
def on_log(step, logged):
    if step > 50:
        speeds.append(logged["samples_per_second"])
source = getattr(cfg, "init_from", None)
init = {"init": source_weights(source)} if source is not None and source_weights else {}
with tempfile.TemporaryDirectory() as ckpt:
    train(model, cfg, Path("data/pairs"), Path(ckpt), spec=spec, on_log=on_log, **init)
print(json.dumps({"samples_per_second": statistics.median(speeds), "windows": len(speeds)}))
"""


def run_version(code_root: Path, params: Path, settings: dict) -> float:
    """Median samples/s of one training run with the ``girml`` package under ``code_root``."""
    env = {**os.environ, "PYTHONPATH": str(code_root), "OMP_NUM_THREADS": str(settings["threads"])}
    done = subprocess.run(
        [sys.executable, "-c", DRIVER, json.dumps({**settings, "params": str(params)})],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"{code_root}: training failed:\n{done.stderr[-3000:]}")
    return float(json.loads(done.stdout.strip().splitlines()[-1])["samples_per_second"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rev", default="788e7e3", help="the older code (a git revision)")
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--new-threads", type=int, default=None, help="this tree's threads")
    args = parser.parse_args()

    from girml.config import read_params

    current = read_params(ROOT / "params.yaml")
    settings = {
        "threads": args.threads,
        "model": current["model"],
        "train": {
            "steps": args.steps,
            "val_every": 10**9,
            "ckpt_every": 10**9,
            "log_every": 25,
            "clean_prob": 0.0,
            "black_region_prob": 0.0,
        },
    }
    speeds: dict[str, list[float]] = {args.rev: [], "this tree": []}
    with tempfile.TemporaryDirectory() as tmp:
        old = Path(tmp) / "old"
        subprocess.run(["git", "worktree", "add", "--detach", str(old), args.rev], cwd=ROOT,
                       check=True, capture_output=True)  # fmt: skip
        try:
            versions = {
                args.rev: (old, old / "params.yaml", args.threads),
                "this tree": (ROOT, ROOT / "params.yaml", args.new_threads or args.threads),
            }
            for round_ in range(args.rounds):
                order = list(versions) if round_ % 2 == 0 else list(reversed(versions))
                for label in order:
                    code_root, params, threads = versions[label]
                    run = {**settings, "threads": threads}
                    speeds[label].append(run_version(code_root, params, run))
                    print(
                        f"round {round_ + 1}: {label} {speeds[label][-1]:.1f} samples/s", flush=True
                    )
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(old)], cwd=ROOT,
                           check=False, capture_output=True)  # fmt: skip
    ratios = [new / old for new, old in zip(speeds["this tree"], speeds[args.rev], strict=True)]
    print(f"\n| code | samples/s (median of {args.rounds}) | min-max |")
    print("|---|---|---|")
    for label, values in speeds.items():
        print(
            f"| {label} | {statistics.median(values):.1f} | {min(values):.1f}-{max(values):.1f} |"
        )
    print(f"\nthis tree / {args.rev}: {statistics.median(ratios):.2f}x (paired, per round: "
          + ", ".join(f"{r:.2f}" for r in ratios) + ")")  # fmt: skip


if __name__ == "__main__":
    main()
