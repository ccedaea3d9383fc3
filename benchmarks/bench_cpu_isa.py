"""What the reproducible CPU kernels cost: training speed with ``train.cpu_isa`` pinned against the
machine's own kernels, side by side, interleaved.

Usage: python benchmarks/bench_cpu_isa.py [--levels machine,avx2] [--steps 60] [--rounds 3]
       [--variant bare] [--threads 1]
Needs `girml synthesize` to have run (reads data/pairs/). Each library reads its instruction-set
variable once, on first use, so every run is a fresh process: ``benchmarks/bench_training.py
--rounds 1`` with the level's environment (``girml.core.cpu_isa.LEVELS``; ``machine`` sets nothing).
The levels alternate within each round (round 1: machine, avx2; round 2: machine, avx2, ...), so
a change of load on the machine hits both alike. Prints the samples/s and CPU ms/step of every
run and a markdown table of medians with paired ratios to the first level (bench_training's
report). CPU ms/step (this process's CPU time per step) is the steadier number on a shared
machine.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_training import Timing, report

from girml.core.cpu_isa import LEVELS

LINE = re.compile(
    r"round 1 (?P<name>\S+): (?P<speed>[\d.]+) samples/s, (?P<cpu>[\d.]+) CPU ms/step, "
    r"start (?P<start>[\d.]+) s"
)


def level_env(level: str) -> dict[str, str]:
    """The environment of a child run at ``level`` (``machine``: the variables removed)."""
    env = {k: v for k, v in os.environ.items() if k not in LEVELS["avx2"]}
    if level != "machine":
        env.update(LEVELS[level])
    return env


def one_run(level: str, args: argparse.Namespace) -> Timing:
    """One bench_training run of ``args.variant`` in a fresh process at ``level``."""
    command = [
        sys.executable,
        str(Path(__file__).with_name("bench_training.py")),
        "--params",
        args.params,
        "--steps",
        str(args.steps),
        "--rounds",
        "1",
        "--variants",
        args.variant,
        "--threads",
        str(args.threads),
    ]
    done = subprocess.run(command, env=level_env(level), capture_output=True, text=True)
    match = LINE.search(done.stdout)
    if done.returncode != 0 or match is None:
        tail = done.stdout[-2000:] + done.stderr[-2000:]
        raise SystemExit(f"{level}: bench_training failed:\n{tail}")
    return Timing(float(match["speed"]), float(match["cpu"]), float(match["start"]))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument(
        "--levels", default="machine,avx2", help="machine and/or girml.core.cpu_isa levels"
    )
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--variant", default="bare", help="a bench_training.py variant")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    levels = [name for name in args.levels.split(",") if name]
    unknown = sorted(set(levels) - set(LEVELS) - {"machine"})
    if unknown or not levels:
        raise SystemExit(f"--levels: unknown {unknown}; known: machine, {', '.join(LEVELS)}")
    runs: dict[str, list[Timing]] = {level: [] for level in levels}
    for round_ in range(1, args.rounds + 1):
        for level in levels:
            measured = one_run(level, args)
            runs[level].append(measured)
            print(
                f"round {round_} {level}: {measured.samples_per_second:.2f} samples/s, "
                f"{measured.cpu_ms_per_step:.0f} CPU ms/step",
                flush=True,
            )
    print(
        f"\nvariant {args.variant}, {args.steps} steps, {args.rounds} rounds, "
        f"{args.threads} thread(s), one process per run"
    )
    print(report(runs, dict.fromkeys(runs, levels[0]), levels[0]))


if __name__ == "__main__":
    main()
