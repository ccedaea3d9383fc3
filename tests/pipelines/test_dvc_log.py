"""DVC's output in the Prefect run log (pipelines/dvc_log.py): error summaries, and progress
bars thinned to a few lines (against a real Prefect server)."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipelines.dvc_log import error_summary, is_progress
from tests.pipelines.project import logs_and_artifacts, make_project


def test_error_summary_starts_at_the_error() -> None:
    lines = ["Running stage 'x':", "> python x.py", "working", "error: boom 42", "ERROR: failed"]
    assert error_summary(lines) == "error: boom 42\nERROR: failed"
    assert error_summary(["a", "", "b"]) == "a\nb"


def test_progress_refreshes_are_told_from_output() -> None:
    assert is_progress("train:  40%|####      | 8/20 [00:02<00:03, 3.91step/s]")
    assert is_progress("collect: 12img [00:01, 9.50img/s]")
    assert is_progress("train:   0%|          | 0/20 [00:00<?, ?step/s]")
    assert not is_progress("error: boom 42") and not is_progress("[2026] step 5, 1.2 it/s")


PROGRESS_STAGE = """\
  progress:
    cmd: python progress.py
    deps: [progress.py]
"""
PROGRESS_PY = """\
import sys, time
from tqdm import tqdm
print("training starts")
for _ in tqdm(range(300), desc="train", unit="step", mininterval=0, file=sys.stderr):
    time.sleep(0.001)
print("training done")
"""


@pytest.mark.slow  # a real Prefect server (prefect_api): 10-20 s to start
def test_progress_bars_take_a_few_log_lines(prefect_api: str, tmp_path: Path) -> None:
    from prefect import flow

    from pipelines.flows import run_stage

    project = make_project(tmp_path / "project", PROGRESS_STAGE)
    (project / "progress.py").write_text(PROGRESS_PY)

    @flow(name="progress-only")
    def progress_only() -> str:
        return run_stage("progress", str(project))

    state = progress_only(return_state=True)
    assert state.is_completed(), state.message
    logs, _ = logs_and_artifacts(state.state_details.flow_run_id)
    mine = [m for m in logs if m.startswith("[progress] ")]
    bars = [m for m in mine if is_progress(m)]
    assert 1 <= len(bars) <= 3, bars  # 300 refreshes -> the first and the last
    assert "300/300" in bars[-1]
    assert any("training starts" in m for m in mine) and any("training done" in m for m in mine)
