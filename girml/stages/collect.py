"""Stage ``collect``: gather clean photos into data/clean/ (images, manifest.csv, rejected.csv)."""

from __future__ import annotations

from pathlib import Path

from girml.core.paths import CLEAN_DIR
from girml.data.collect import collect, nothing_collected
from girml.stages.contract import Echo, StageFailed, StageParams


def run(params: Path, echo: Echo) -> None:
    """Collect the sources of ``params.yaml: collect``; fails when no image was kept."""
    cfg = StageParams(params, "collect").section("collect")
    result = collect(cfg, CLEAN_DIR)
    if result.n_images == 0:
        raise StageFailed(nothing_collected(CLEAN_DIR / "rejected.csv"))
    echo(
        f"collected {result.n_images} images ({result.n_rejected} rejected, "
        f"{result.n_duplicates} duplicates) into {CLEAN_DIR}"
    )
