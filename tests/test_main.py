"""``python -m girml`` (girml/__main__.py): the library CLI runs as a module, under the name
``girml``, with every library verb plus ``convert-model`` and ``export`` and none of
:mod:`pipelines`' verbs.

Real parts: a fresh interpreter (this virtual environment's Python) in the repository.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys

from tests.factories import REPO
from tests.test_cli import VERBS

PIPELINE_VERBS = ["flow", "stack", "pull", "deploy", "remote"]


def girml(*args: str) -> subprocess.CompletedProcess[str]:
    """``python -m girml ARGS`` in the repository, wide and without colour."""
    env = {**os.environ, "COLUMNS": "200", "NO_COLOR": "1", "TERM": "dumb"}
    return subprocess.run(
        [sys.executable, "-m", "girml", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def listed_verbs(help_text: str) -> list[str]:
    """The command names of a ``--help`` page, in the order it lists them."""
    commands = help_text.split("Commands", 1)[1]
    return re.findall(r"^\W*([a-z][a-z-]*)\s{2,}\S", commands, flags=re.MULTILINE)


def test_help_lists_the_library_verbs_in_order_then_convert_model_and_export() -> None:
    proc = girml("--help")
    assert proc.returncode == 0, proc.stderr
    assert "Usage: girml [OPTIONS] COMMAND [ARGS]..." in proc.stdout
    assert listed_verbs(proc.stdout) == [*VERBS, "convert-model", "export"]
    assert not set(PIPELINE_VERBS) & set(listed_verbs(proc.stdout))


def test_a_registered_verb_runs_and_an_unknown_one_exits_2() -> None:
    proc = girml("convert-model", "--help")
    assert proc.returncode == 0, proc.stderr
    assert "Usage: girml convert-model [OPTIONS] {SRC}" in proc.stdout
    assert "THIS RUNS CODE FROM THE FILE" in " ".join(proc.stdout.split())
    proc = girml("stack", "status")  # pipelines' verb: not in the library CLI
    assert proc.returncode == 2
    assert "No such command 'stack'" in proc.stderr
