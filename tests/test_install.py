"""The install files work on any machine: no machine paths, torch without a local build label."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


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
