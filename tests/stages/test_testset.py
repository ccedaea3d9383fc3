"""``girml testset <name>`` (girml/stages/testset.py) in a project folder: it fetches one set of
``protocols.sets`` into data/protocols/<name>/, and a set that is not listed or not there stops
it in one line that says how to get it.

Real parts: the ``girml testset`` command, a folder source in LOL's published layout.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pipelines.cli import app
from tests.factories import tiny_params, write_params
from tests.protocol_sets import write_folder


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    lol = write_folder("lol-v1", tmp_path / "external")
    sets = {
        "lol-v1": {"source": {"type": "folder", "path": str(lol)}},
        "rain100l": {"source": {"type": "folder", "path": str(tmp_path / "not-here")}},
    }
    write_params(tmp_path / "params.yaml", {**tiny_params(), "protocols": {"sets": sets}})
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_testset_writes_the_set_in_its_prepared_form(project: Path) -> None:
    result = CliRunner().invoke(app, ["testset", "lol-v1"])
    assert result.exit_code == 0, result.output
    assert "test set lol-v1: 2 images (pairs); wrote data/protocols/lol-v1/" in result.output
    record = json.loads((project / "data/protocols/lol-v1/set.json").read_text())
    assert [image["id"] for image in record["images"]] == ["1", "22"]
    assert record["images"][0]["lq_file"] == "LOLdataset/eval15/low/1.png"


def test_a_set_not_listed_or_not_there_stops_in_one_line(project: Path) -> None:
    unlisted = CliRunner().invoke(app, ["testset", "gopro"])
    assert unlisted.exit_code == 1
    assert "protocols.sets has no set 'gopro'" in unlisted.output
    missing = CliRunner().invoke(app, ["testset", "rain100l"])
    assert missing.exit_code == 1 and "Traceback" not in missing.output
    errors = [line for line in missing.output.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and "not-here is not a directory" in errors[0]
    assert "Rain100L/rainy/rain-NNN.png" in errors[0] and not (project / "data").exists()
