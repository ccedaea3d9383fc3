"""Training throughput: the speed switches and the loop's overhead, side by side, interleaved.

Usage: python benchmarks/bench_training.py [--steps 60] [--rounds 3] [--variants before,cl,...]
       [--fast channels_last,fused_optim] [--threads 2[,1]]
Needs `girml synthesize` to have run (reads data/pairs/). Every variant trains the default model
on the same patch stream (params.yaml: model, train; logging every 5 steps, 5x the default), in
one process, in interleaved rounds (round 1: A, B, C, ...; round 2: A, B, C, ...), so a change
of load on the machine hits every variant alike:
  before       girml.training.train with channels_last, fused_optim and compile off
  cl           train with channels_last
  cl+fused     train with channels_last and the fused AdamW
  cl+compile   train with channels_last and torch.compile (compile time is in "start s")
  bare         plain PyTorch with the --fast switches: same memory format, AdamW implementation,
               compilation, loss, TrainPatches/make_loader stream (num_workers) and threads; no
               accelerate, EMA, clipping, scheduler or progress bar
  loop         train with the --fast switches (accelerate, EMA, clipping, scheduler, progress bar)
  loop+mlflow  the same, every log event sent to a temporary SQLite MLflow run (system metrics on)
  loop-w0      loop with num_workers 0 (patches made in the training process)
  bare-w0      bare with num_workers 0
With --threads 2,1 each variant runs at each thread count (labels "before 2t", "before 1t"),
in the same rounds. Samples/s counts steps 11..N (the first 10 are warm-up); "start s" is the
time from the call to the end of step 10 (set-up, compilation, warm-up); "CPU ms/step" is this
process's CPU time per step (all threads, loader workers excluded), steadier than wall time on
a loaded machine; "in MLflow calls" is the share of the timed wall time spent inside MLflow's
logging calls.
Prints markdown tables (medians over the rounds, min-max, ratios to "before" at the first thread
count, or the first variant, and to "bare" at the same thread count); ratios are paired: the
median over rounds of the ratio within a round.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import torch

from girml.artifacts.loading import source_weights
from girml.config import DegradationsConfig, ModelConfig, TrainConfig, load_section
from girml.models import build_model
from girml.training.data import make_loader
from girml.training.init import compile_or_eager
from girml.training.loop import train, train_dataset
from girml.training.losses import restoration_loss
from girml.training.schedule import build_optimizer

WARMUP = 10
LOG_EVERY = 5
SWITCHES = ("channels_last", "fused_optim", "compile")


@dataclass(frozen=True)
class Timing:
    """One run of one variant, measured over the steps after the warm-up.

    Attributes:
        samples_per_second: wall-clock throughput.
        cpu_ms_per_step: CPU time of this process (all its threads; loader workers are other
            processes) per optimizer step: less sensitive than wall time to other jobs.
        start_seconds: from the call to the end of the warm-up (set-up, compilation).
        mlflow_share: fraction of the timed wall time spent inside MLflow logging calls.
    """

    samples_per_second: float
    cpu_ms_per_step: float
    start_seconds: float
    mlflow_share: float = 0.0


def timing(
    samples: int, steps: int, called: float, start: tuple[float, float], end: tuple[float, float]
) -> Timing:
    """A :class:`Timing` from ``(perf_counter, process_time)`` stamps around ``steps`` steps.

    ``called`` is the ``perf_counter`` when the variant was called.
    """
    wall, cpu = end[0] - start[0], end[1] - start[1]
    return Timing(samples / wall, 1e3 * cpu / steps, start[0] - called)


def bare(model_cfg: ModelConfig, cfg: TrainConfig, spec: DegradationsConfig, pairs: Path) -> Timing:
    """Plain PyTorch on the same stream, memory format, optimizer and loss as ``train``."""
    called = time.perf_counter()
    memory_format = torch.channels_last if cfg.channels_last else torch.contiguous_format
    torch.manual_seed(cfg.seed)
    model = build_model(model_cfg).to(memory_format=memory_format).train()
    opt = build_optimizer(model, cfg)
    if cfg.compile:
        example = torch.zeros(cfg.batch_size, 3, cfg.patch_size, cfg.patch_size)
        compile_or_eager(model, example.contiguous(memory_format=memory_format))
    dataset = train_dataset(cfg, pairs / "train" / "pairs.jsonl", spec)
    stop = cfg.steps * cfg.batch_size
    loader = make_loader(dataset, cfg.batch_size, 0, stop, cfg.num_workers)
    start, seen = (0.0, 0.0), 0
    for step, (lq, gt) in enumerate(loader, start=1):
        lq = lq.contiguous(memory_format=memory_format)
        loss = restoration_loss(model(lq), gt, cfg.loss, cfg.freq_weight)
        opt.zero_grad()
        loss.backward()
        opt.step()
        seen += lq.shape[0]
        if step == WARMUP:
            start, seen = (time.perf_counter(), time.process_time()), 0
    end = (time.perf_counter(), time.process_time())
    return timing(seen, cfg.steps - WARMUP, called, start, end)


def looped(
    model_cfg: ModelConfig,
    cfg: TrainConfig,
    spec: DegradationsConfig,
    pairs: Path,
    with_mlflow: bool,
    init: dict[str, torch.Tensor] | None = None,
) -> Timing:
    """``girml.training.train``, timed between its log events at the warm-up and the last step.

    The time stamp is taken as a log event arrives, before MLflow sees it, so the MLflow cost of
    every event but the last falls inside the timed window. ``init``: the weights of
    ``cfg.init_from`` (loaded once by :func:`main`), or None.
    """
    stamps: dict[int, tuple[float, float]] = {}
    in_mlflow = 0.0

    def stamp(step: int, _: dict[str, float]) -> None:
        stamps[step] = (time.perf_counter(), time.process_time())

    called = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        if not with_mlflow:
            train(
                model_cfg,
                cfg,
                pairs,
                Path(tmp) / "ckpt",
                spec=spec,
                on_log=stamp,
                init=init,
            )
        else:
            from girml.tracking.logs import log_metrics
            from girml.tracking.runs import start_run

            def on_log(step: int, metrics: dict[str, float]) -> None:
                nonlocal in_mlflow
                stamp(step, metrics)
                log_metrics(step, metrics)
                if WARMUP <= step < cfg.steps:  # inside the timed window
                    in_mlflow += time.perf_counter() - stamps[step][0]

            os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{tmp}/mlflow.db"
            try:
                with start_run("bench", Path(tmp), run_name="bench"):
                    train(
                        model_cfg,
                        cfg,
                        pairs,
                        Path(tmp) / "ckpt",
                        spec=spec,
                        on_log=on_log,
                        on_validate=log_metrics,
                        init=init,
                    )
            finally:
                del os.environ["MLFLOW_TRACKING_URI"]
    samples = (cfg.steps - WARMUP) * cfg.batch_size * cfg.grad_accum
    measured = timing(samples, cfg.steps - WARMUP, called, stamps[WARMUP], stamps[cfg.steps])
    share = in_mlflow / (stamps[cfg.steps][0] - stamps[WARMUP][0])
    return replace(measured, mlflow_share=share)


def variants(
    model_cfg: ModelConfig,
    base: TrainConfig,
    spec: DegradationsConfig,
    pairs: Path,
    fast: dict[str, bool],
    init: dict[str, torch.Tensor] | None = None,
) -> dict[str, Callable[[], Timing]]:
    """Every known variant by name, each a no-argument function running it once; the loop
    variants start from ``init`` (the weights of ``base.init_from``) when given."""
    off = dict.fromkeys(SWITCHES, False)

    def config(**update: object) -> TrainConfig:
        return base.model_copy(update={**off, **update})

    def loop(cfg: TrainConfig, with_mlflow: bool = False) -> Timing:
        return looped(model_cfg, cfg, spec, pairs, with_mlflow, init)

    return {
        "before": lambda: loop(config()),
        "cl": lambda: loop(config(channels_last=True)),
        "cl+fused": lambda: loop(config(channels_last=True, fused_optim=True)),
        "cl+compile": lambda: loop(config(channels_last=True, compile=True)),
        "bare": lambda: bare(model_cfg, config(**fast), spec, pairs),
        "loop": lambda: loop(config(**fast)),
        "loop+mlflow": lambda: loop(config(**fast), with_mlflow=True),
        "loop-w0": lambda: loop(config(**fast, num_workers=0)),
        "bare-w0": lambda: bare(model_cfg, config(**fast, num_workers=0), spec, pairs),
    }


def parse_fast(text: str) -> dict[str, bool]:
    """``"channels_last,fused_optim"`` -> ``{"channels_last": True, "fused_optim": True}``."""
    names = [name for name in text.split(",") if name]
    unknown = sorted(set(names) - set(SWITCHES))
    if unknown:
        raise SystemExit(f"--fast: unknown switches {unknown}; known: {list(SWITCHES)}")
    return dict.fromkeys(names, True)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--steps", type=int, default=60, help="optimizer steps per run")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--variants", default="before,cl,cl+fused,cl+compile,bare,loop,loop+mlflow,loop-w0"
    )
    parser.add_argument(
        "--fast", default="channels_last,fused_optim", help="switches of bare and loop*"
    )
    parser.add_argument(
        "--threads",
        default="2",
        help="torch.set_num_threads; a list (2,1) runs each variant at each",
    )
    args = parser.parse_args()
    if args.steps <= WARMUP or args.steps % LOG_EVERY:
        raise SystemExit(f"--steps must be a multiple of {LOG_EVERY} above {WARMUP}")
    threads = [int(n) for n in args.threads.split(",") if n]
    if not threads or min(threads) < 1:
        raise SystemExit(f"--threads must list counts >= 1, got {args.threads!r}")
    model_cfg = load_section(args.params, "model")
    spec = load_section(args.params, "degradations")
    base = load_section(args.params, "train").model_copy(
        update={
            "steps": args.steps,
            "log_every": LOG_EVERY,
            "val_every": 10**6,
            "ckpt_every": 10**6,
        }
    )
    init = source_weights(base.init_from) if base.init_from is not None else None
    known = variants(model_cfg, base, spec, Path("data/pairs"), parse_fast(args.fast), init)
    names = [name for name in args.variants.split(",") if name]
    unknown = sorted(set(names) - set(known))
    if unknown:
        raise SystemExit(f"--variants: unknown {unknown}; known: {list(known)}")

    def label(name: str, n: int) -> str:
        return name if len(threads) == 1 else f"{name} {n}t"

    runs: dict[str, list[Timing]] = {label(name, n): [] for name in names for n in threads}
    for round_ in range(1, args.rounds + 1):
        for name in names:
            for n in threads:
                torch.set_num_threads(n)
                measured = known[name]()
                runs[label(name, n)].append(measured)
                print(
                    f"round {round_} {label(name, n)}: {measured.samples_per_second:.2f} "
                    f"samples/s, {measured.cpu_ms_per_step:.0f} CPU ms/step, "
                    f"start {measured.start_seconds:.1f} s",
                    flush=True,
                )
    print(f"\nfast = {args.fast}; {args.steps} steps, {args.rounds} rounds, threads {args.threads}")
    first = label("before" if "before" in names else names[0], threads[0])
    print(report(runs, dict.fromkeys(runs, first), first))
    if "bare" in names and (len(threads) > 1 or first != "bare"):
        same = {label(name, n): label("bare", n) for name in names for n in threads}
        print(report(runs, same, "bare (same threads)"))


def report(runs: dict[str, list[Timing]], reference: dict[str, str], title: str) -> str:
    """A markdown table: medians over the rounds, spread, and ratios to each row's reference.

    The ratios are paired: the median over rounds of the ratio within each round, so a load
    change between rounds cancels out.

    Args:
        runs: variant label -> one :class:`Timing` per round.
        reference: variant label -> the label its ratios are taken against.
        title: names the reference in the header.
    """

    def paired(name: str, key: Callable[[Timing], float]) -> float:
        pairs = zip(runs[name], runs[reference[name]], strict=True)
        return statistics.median(key(t) / key(ref) for t, ref in pairs)

    def speed(t: Timing) -> float:
        return t.samples_per_second

    def cpu(t: Timing) -> float:
        return t.cpu_ms_per_step

    lines = [
        f"\n| variant | samples/s (median) | min-max | vs {title} "
        f"| CPU ms/step (median) | CPU vs {title} | in MLflow calls | start s |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, timings in runs.items():
        speeds = [speed(t) for t in timings]
        share = statistics.median(t.mlflow_share for t in timings)
        in_mlflow = f"{100 * share:.1f}%" if share > 0 else "-"
        lines.append(
            f"| {name} | {statistics.median(speeds):.1f} | {min(speeds):.1f}-{max(speeds):.1f} "
            f"| {paired(name, speed):.2f}x "
            f"| {statistics.median(cpu(t) for t in timings):.0f} | {paired(name, cpu):.2f}x "
            f"| {in_mlflow} | {statistics.median(t.start_seconds for t in timings):.1f} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
