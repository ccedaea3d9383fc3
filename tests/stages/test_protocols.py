"""``girml protocols <name>`` (girml/stages/protocols.py) in a project folder: it scores
models/latest, the degraded input and evaluate.methods on a protocol and writes
metrics/protocols/<name>.json; a set that was not fetched stops it in one line.

Real parts: the ``girml protocols`` command, a tiny NAFNet in models/latest, Rain100L prepared
from a folder in its published layout.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from girml.artifacts.store import save_model_dir
from girml.config import TestSetConfig
from girml.data.testsets import prepare_set
from pipelines.cli import app
from tests.factories import TINY_MODEL, tiny_model, tiny_params, write_params
from tests.protocol_sets import write_folder

MINE = {
    "tasks": [{"set": "rain100l"}, {"set": "real-photos", "optional": True}],
    "convention": "airnet",
}


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    rain = write_folder("rain100l", tmp_path / "external")
    source = {"type": "folder", "path": str(rain)}
    protocols = {"sets": {"rain100l": {"source": source}}, "custom": {"mine": MINE}}
    params = {**tiny_params(), "evaluate": {"self_ensemble": 1}, "protocols": protocols}
    write_params(tmp_path / "params.yaml", params)
    monkeypatch.chdir(tmp_path)
    save_model_dir(tiny_model(0), TINY_MODEL, Path("models/latest"))
    return tmp_path


def test_protocols_scores_the_model_and_the_input(project: Path) -> None:
    prepare_set(
        "rain100l",
        TestSetConfig.model_validate(
            {"source": {"type": "folder", "path": str(project / "external")}}
        ),
        Path("data/protocols/rain100l"),
    )
    result = CliRunner().invoke(app, ["protocols", "mine"])
    assert result.exit_code == 0, result.output
    assert "protocol mine: rain100l (2 images): model psnr" in result.output
    written = json.loads((project / "metrics/protocols/mine.json").read_text())
    assert written["protocol"] == "mine" and written["skipped"] == ["real-photos"]
    methods = written["sets"]["rain100l"]["methods"]
    assert set(methods) == {"model", "identity"} and methods["model"]["n"] == 2
    assert written["sets"]["rain100l"]["convention"] == "airnet"


def test_a_set_that_was_not_fetched_stops_in_one_line(project: Path) -> None:
    result = CliRunner().invoke(app, ["protocols", "mine"])
    assert result.exit_code == 1 and "Traceback" not in result.output
    errors = [line for line in result.output.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1
    assert "needs test set rain100l, but data/protocols/rain100l/set.json is missing" in errors[0]
    assert "dvc repro testset@rain100l" in errors[0]
    unknown = CliRunner().invoke(app, ["protocols", "allinone-9"])
    assert unknown.exit_code == 1 and "no protocol 'allinone-9'" in unknown.output
    assert not (project / "metrics").exists()
