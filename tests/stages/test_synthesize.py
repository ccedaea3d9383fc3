"""``girml synthesize`` (girml/stages/synthesize.py) in a tiny project: it degrades data/clean/
into data/pairs/ and data/bench/ with ``params.yaml: degradations, synthesize`` and prints one
count per group; a degradation spec outside an op's domain stops it, naming the key, before
anything is written.

Real parts: the ``girml synthesize`` command in a project folder with a clean set.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from girml.config import ConfigError
from girml.stages import synthesize as stage
from pipelines.cli import app
from tests.factories import TINY_LAYOUT, make_clean_set, tiny_params, write_params


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A project folder (the working directory) with data/clean/ and the tiny params."""
    monkeypatch.chdir(tmp_path)
    make_clean_set(tmp_path / "data" / "clean", TINY_LAYOUT)
    write_params(tmp_path / "params.yaml", tiny_params())
    return tmp_path


def _counts(output: str) -> dict[str, int]:
    """``{group: n}`` from the stage's ``<group> <n>`` lines."""
    lines = [line.split() for line in output.splitlines()]
    return {words[0]: int(words[1]) for words in lines if len(words) == 2 and words[1].isdigit()}


def test_synthesize_writes_pairs_and_bench_and_counts_each_group(project: Path) -> None:
    result = CliRunner().invoke(app, ["synthesize"])
    assert result.exit_code == 0, result.output
    counts = _counts(result.output)
    assert list(counts) == sorted(counts)
    # synthesize.train_pairs / val_pairs, and synthesize.bench_per_family crops per family
    assert (counts["train"], counts["val"]) == (24, 6)
    assert counts["single-id/noise"] == counts["unseen/haze"] == 4
    assert "single-id/haze" not in counts  # degradations.held_out.families
    pairs = project / "data" / "pairs"
    for split in ("train", "val"):
        lines = (pairs / split / "pairs.jsonl").read_text(encoding="utf-8").splitlines()
        assert len(lines) == counts[split]
    for group, n in counts.items():
        if group not in {"train", "val", "select"}:
            assert len(list((project / "data" / "bench" / group / "lq").glob("*.png"))) == n


def test_a_spec_outside_an_ops_domain_names_the_key_and_writes_nothing(project: Path) -> None:
    params = tiny_params()
    noise = params["degradations"]["families"]["noise"]["ops"]["gaussian_noise"]
    noise["params"]["sigma"]["ood"] = [50, 300]
    write_params(project / "params.yaml", params)
    key = r"degradations\.families\.noise\.ops\.gaussian_noise\.params\.sigma: ood range"
    with pytest.raises(ConfigError, match=rf"(?s)^params\.yaml: invalid config\n.*{key}"):
        stage.run(Path("params.yaml"), print)
    assert not (project / "data" / "pairs").exists()
    assert not (project / "data" / "bench").exists()
