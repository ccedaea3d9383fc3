"""``girml collect`` (girml/stages/collect.py) in a tiny project: it collects the sources of
``params.yaml: collect`` into data/clean/ and says how many it kept, and it fails in one line,
naming what went wrong, when no image was kept.

Real parts: the ``girml collect`` command in an empty project folder, the builtin photos
installed with scikit-image, a folder of broken files.
"""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pipelines.cli import app
from tests.factories import tiny_params, write_params


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty project folder as the working directory."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_collect_writes_data_clean_and_says_what_it_kept(project: Path) -> None:
    params = tiny_params()
    params["collect"]["sources"] = [{"type": "builtin", "include": ["chelsea", "coffee"]}]
    write_params(project / "params.yaml", params)
    result = CliRunner().invoke(app, ["collect"])
    assert result.exit_code == 0, result.output
    assert "collected 2 images (0 rejected, 0 duplicates) into data/clean\n" in result.output
    clean = project / "data" / "clean"
    assert sorted(p.name for p in clean.iterdir()) == ["images", "manifest.csv", "rejected.csv"]
    with (clean / "manifest.csv").open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert sorted(row["origin"] for row in rows) == ["chelsea", "coffee"]
    assert sorted(p.name for p in (clean / "images").iterdir()) == sorted(
        f"{row['id']}.png" for row in rows
    )


def test_collect_where_every_source_failed_fails(project: Path) -> None:
    photos = project / "photos"
    photos.mkdir()
    (photos / "empty.png").write_bytes(b"")
    (photos / "broken.jpg").write_bytes(b"not a jpeg")
    params = tiny_params()
    params["collect"]["sources"] = [{"type": "folder", "path": str(photos)}]
    write_params(project / "params.yaml", params)
    result = CliRunner().invoke(app, ["collect"])
    assert result.exit_code == 1, result.output
    error = [line for line in result.output.splitlines() if line.startswith("error: ")]
    assert len(error) == 1 and "Traceback" not in result.output
    assert "no image collected: every source failed (folder: 2 rejected)" in error[0]
    assert "empty.png: empty file" in error[0]
    assert (project / "data" / "clean" / "rejected.csv").is_file()  # where all are listed
