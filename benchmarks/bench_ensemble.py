"""Time the x8 self-ensemble on benchmark-size crops: views batched against one at a time.

Usage: python benchmarks/bench_ensemble.py [--model models/release] [--size 128] [--repeats 10]

Both ways run in the same process, alternating, so the shared machine's drift hits both; the
batched way is :class:`girml.core.ensemble.SelfEnsemble` (views of one shape in one batch), the
other maps each view through the network alone. Prints seconds per crop and the largest
difference between the two outputs.
"""

from __future__ import annotations

import argparse
import sys
import time

import torch

from girml.artifacts.loading import load_model
from girml.core.ensemble import SelfEnsemble, view


def one_view_at_a_time(net: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    return sum(view(net(view(x, t, forward=True)), t, forward=False) for t in range(8)) / 8


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="models/release")
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=10)
    args = parser.parse_args(argv)
    net = load_model(args.model)
    batched = SelfEnsemble(net, 8)
    x = torch.rand(1, 3, args.size, args.size, generator=torch.Generator().manual_seed(0))
    x = x.contiguous(memory_format=torch.channels_last)
    seconds: dict[str, list[float]] = {"batched": [], "one view at a time": []}
    with torch.inference_mode():
        for _ in range(args.repeats):
            for name, run in (("batched", batched), ("one view at a time", None)):
                start = time.perf_counter()
                out = run(x) if run is not None else one_view_at_a_time(net, x)
                seconds[name].append(time.perf_counter() - start)
        diff = (batched(x) - one_view_at_a_time(net, x)).abs().max().item()
    for name, values in seconds.items():
        print(f"{name}: {sorted(values)[len(values) // 2]:.3f} s per {args.size}-px crop (median)")
    print(f"largest difference between the two: {diff:.2e}; output {tuple(out.shape)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
