"""The install files work on any machine: no machine paths, torch without a local build label."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def test_the_lock_pins_torch_without_a_build_label_and_names_no_machine_path() -> None:
    lock = (ROOT / "requirements.lock").read_text()
    [torch] = re.findall(r"^torch==\S+$", lock, flags=re.MULTILINE)
    assert torch == "torch==2.13.0"  # +cpu exists only on PyTorch's CPU index
    for name in ("requirements.lock", "Makefile", "pyproject.toml"):
        text = (ROOT / name).read_text()
        assert not re.search(r"(?<![\w.])/(opt|home|root|work)/", text), name


def test_make_install_takes_the_torch_index_from_the_switch() -> None:
    def install_lines(*args: str) -> list[str]:
        dry = subprocess.run(
            ["make", "-n", "-B", "install", "VENV=/nonexistent/venv", *args],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        return [line for line in dry.splitlines() if "-r requirements.lock" in line]

    [plain] = install_lines()
    assert "--extra-index-url" not in plain
    [cpu] = install_lines("TORCH=cpu")
    assert "--extra-index-url https://download.pytorch.org/whl/cpu" in cpu
    [cuda] = install_lines("TORCH=cu126")
    assert "--extra-index-url https://download.pytorch.org/whl/cu126" in cuda


@pytest.mark.slow  # two more pytest processes: about 13 s of CPU
def test_plain_pytest_is_the_fast_subset_and_the_test_command_runs_everything() -> None:
    def selected(*args: str) -> int:
        done = subprocess.run(
            [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider",
             *args, "tests/training/test_distributed.py"],
            cwd=ROOT, capture_output=True, text=True, check=False,
        )  # fmt: skip
        found = re.search(r"(\d+)(?:/\d+)? tests? collected", done.stdout)  # not "no tests"
        return int(found[1]) if found else 0

    assert selected() == 0  # every test of the file is marked slow
    assert selected("-m", "") == 4  # what scripts/test.sh passes
    assert 'pytest -m "" "$@"' in (ROOT / "scripts" / "test.sh").read_text()
