"""Stage ``synthesize``: degrade clean photos into data/pairs/{train,val} and data/bench/."""

from __future__ import annotations

from pathlib import Path

from girml.config import ConfigError
from girml.core.paths import BENCH_DIR, CLEAN_DIR, PAIRS_DIR
from girml.data.synthesize import read_manifest, synthesize
from girml.degradations import check_spec
from girml.stages.contract import Echo, StageParams


def run(params: Path, echo: Echo) -> None:
    """Check the degradation spec, then synthesize every pair and benchmark suite."""
    reads = StageParams(params, "synthesize")
    spec = reads.section("degradations")
    try:
        check_spec(spec)
    except ValueError as exc:
        raise ConfigError(f"{params}: invalid config\n  {exc}") from None
    cfg = reads.section("synthesize")
    images = read_manifest(CLEAN_DIR / "manifest.csv", CLEAN_DIR / "images")
    result = synthesize(images, spec, cfg, PAIRS_DIR, BENCH_DIR)
    for group, n in sorted(result.counts.items()):
        echo(f"{group:40s} {n:6d}")
