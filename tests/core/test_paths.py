"""girml.core.paths: the one place for each pipeline path, and dvc.yaml's outputs live under
them."""

from __future__ import annotations

from pathlib import Path

import yaml

from girml.core import paths
from tests.factories import REPO

PATHS = {name: value for name, value in vars(paths).items() if isinstance(value, Path)}


def test_paths_are_relative_and_distinct() -> None:
    assert len(PATHS) >= 20
    for name, path in PATHS.items():
        assert not path.is_absolute() and ".." not in path.parts, name
    assert len(set(PATHS.values())) == len(PATHS)


def test_every_dvc_output_lives_under_a_declared_path() -> None:
    stages = yaml.safe_load((REPO / "dvc.yaml").read_text(encoding="utf-8"))["stages"]
    outs = {
        next(iter(out)) if isinstance(out, dict) else out
        for stage in stages.values()
        for key in ("outs", "metrics", "plots")
        for out in stage.get(key) or []
    }
    assert outs
    for out in outs:
        assert any(Path(out) == p or p in Path(out).parents for p in PATHS.values()), out
    declared = (paths.PAIRS_DIR, paths.BENCH_DIR, paths.MODEL_DIR, paths.SPECIALISTS_DIR)
    for path in (*declared, paths.INTERPRET_DIR):
        assert str(path) in outs  # a stage output named here is declared to DVC
