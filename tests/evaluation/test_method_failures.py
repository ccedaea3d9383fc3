"""A broken outside method stops ``girml evaluate`` in one line, before anything is scored.

Real parts: the ``girml evaluate`` command in a project folder (the tiny synthesized bench, a
model registered in a SQLite MLflow store), programs that crash, hang or write nothing, and a
``python:`` method whose module does not exist.
"""

from __future__ import annotations

import logging
import re
import shlex
import shutil
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from girml.errors import EX_BAD_INPUT
from pipelines.cli import app
from tests.evaluation.test_evaluation import register, tiny_model
from tests.factories import tiny_params, write_params

PYTHON = shlex.quote(sys.executable)
CRASH = "import sys; print('loading weights ...', file=sys.stderr); sys.exit('weights: not found')"

# (method, exit code, the error line after "error: ")
CASES = [
    (
        {"name": "crash", "command": f'{PYTHON} -c "{CRASH}" {{in}} {{out}}'},
        1,
        r"method 'crash': `.+ \{in\} \{out\}` exited with 1; its last stderr line: "
        r"weights: not found",
    ),
    (
        {
            "name": "hangs",
            "command": f'{PYTHON} -c "import time; time.sleep(60)" {{in}} {{out}}',
            "timeout_s": 1,
        },
        1,
        r"method 'hangs': `.+` ran past its timeout_s of 1(\.0)? s",
    ),
    (
        {"name": "nothing", "command": f"{PYTHON} -c pass {{in}} {{out}}"},
        1,
        r"method 'nothing' failed on single-id/\w+/[^,]+, tried before scoring: ImageReadError: "
        r"\{out\}/00000_\S+\.png: no output file: the program wrote none",
    ),
    (
        {"name": "gone", "python": "girml_no_such_module:restore"},
        EX_BAD_INPUT,
        r"method 'gone': cannot import 'girml_no_such_module': ModuleNotFoundError: "
        r"No module named 'girml_no_such_module'",
    ),
]


def test_each_broken_method_is_one_line_with_its_exit_code_before_any_scoring(
    data: Path, registry: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    for name in ("bench", "clean"):
        shutil.copytree(data / name, registry / "data" / name)
    register(tiny_model(0, 0.0), registry, registry / "models" / "latest")
    monkeypatch.chdir(registry)
    caplog.set_level(logging.INFO)
    for method, code, message in CASES:
        params = tiny_params()
        params["evaluate"] = {"niqe_patch_size": 16, "baselines": ["identity"], "methods": [method]}
        write_params(registry / "params.yaml", params)
        caplog.clear()
        result = CliRunner().invoke(app, ["evaluate"])
        errors = [line for line in result.output.splitlines() if line.startswith("error: ")]
        assert "Traceback" not in result.output, result.output
        assert len(errors) == 1, result.output
        assert result.exit_code == code, result.output
        assert re.fullmatch(f"error: {message}", errors[0]), errors[0]
        # found on the first image, before the model, the baselines or the method were scored
        assert "evaluated " not in caplog.text, method["name"]
        assert not (registry / "metrics" / "eval.json").exists()
