"""One DVC command run from a Prefect task, its output streamed line by line into the Prefect
run log (redacted): progress-bar refreshes (tqdm) are thinned to one line per
:data:`PROGRESS_EVERY_S` seconds, and a failure raises :class:`StageFailed` with the lines that
explain it."""

from __future__ import annotations

import os
import re
import sys
import time
from collections import deque
from collections.abc import Sequence
from pathlib import Path

from prefect import get_run_logger

from pipelines.dvc_run import DvcError, stream_dvc
from pipelines.redaction import redact

ERROR_TAIL_LINES = 15
_ERROR_LINE = re.compile(r"error|failed|exception", re.I)
# a tqdm refresh: "train:  40%|####      | 8/20 [00:02<00:03, 3.9step/s]" (or no total)
_PROGRESS_LINE = re.compile(r"\[(?:\d+:)?\d+:\d\d(?:<[^,\]]*)?, [^\]]*(?:/s|s/\w+)")
PROGRESS_EVERY_S = 60.0  # progress bars: at most one log line per this many seconds per stage


class StageFailed(RuntimeError):
    """A DVC stage (or ``dvc push``) exited non-zero; the message carries its error lines."""


def _subprocess_env() -> dict[str, str]:
    """The flow's environment for DVC: this interpreter's scripts first on PATH, no telemetry."""
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env.update(
        DVC_NO_ANALYTICS="1",
        GX_ANALYTICS_ENABLED="false",
        DO_NOT_TRACK="1",
        PYTHONUNBUFFERED="1",
    )
    # tqdm reads TQDM_<ARG> defaults: fewer refreshes to read (run_dvc thins them further)
    env.setdefault("TQDM_MININTERVAL", "5")
    return env


def is_progress(line: str) -> bool:
    """True when ``line`` is a progress-bar refresh (tqdm's ``[elapsed<left, rate]`` part)."""
    return _PROGRESS_LINE.search(line) is not None


def error_summary(lines: Sequence[str]) -> str:
    """The lines that explain a failure: the output's tail, from its first error-like line.

    Args:
        lines: the last output lines of the failed command (stdout and stderr interleaved).

    Returns:
        The last :data:`ERROR_TAIL_LINES` lines, starting at the first one that mentions an
        error, a failure or an exception when there is one (e.g. ``error: collect.min_size:
        ...`` or ``validation FAILED: ...`` followed by DVC's own ``ERROR:`` line).
    """
    tail = [line for line in lines if line.strip()][-ERROR_TAIL_LINES:]
    first = next((i for i, line in enumerate(tail) if _ERROR_LINE.search(line)), 0)
    return "\n".join(tail[first:])


def run_dvc(args: Sequence[str], project_dir: Path, label: str) -> list[str]:
    """Run ``dvc ARGS`` in ``project_dir``, streaming its output to the Prefect run logger.

    Args:
        args: DVC arguments, e.g. ``["repro", "--single-item", "train"]``.
        project_dir: the DVC project (where ``dvc.yaml`` lives).
        label: prefix of each log line (the stage name).

    Progress-bar refreshes (:func:`is_progress`) are logged at most once per
    :data:`PROGRESS_EVERY_S` seconds, plus the last one, so a stage's progress takes a few
    lines of the Prefect log instead of one per step; they stay out of the error summary.

    Returns:
        Every output line (redacted), progress refreshes included.

    Raises:
        StageFailed: DVC exited non-zero; the message holds :func:`error_summary`.
    """
    logger = get_run_logger()
    lines: list[str] = []
    tail: deque[str] = deque(maxlen=4 * ERROR_TAIL_LINES)
    last_progress = float("-inf")
    unlogged: str | None = None  # the latest progress refresh not logged yet
    code = 0
    try:
        for raw in stream_dvc(args, project_dir, _subprocess_env()):
            line = redact(raw)
            if not line.strip():
                continue
            lines.append(line)
            if is_progress(line):
                now = time.monotonic()
                if now - last_progress < PROGRESS_EVERY_S:
                    unlogged = line
                    continue
                last_progress, unlogged = now, None
            else:
                tail.append(line)
            logger.info("[%s] %s", label, line.strip())
    except DvcError as exc:
        code = exc.returncode
    if unlogged is not None:
        logger.info("[%s] %s", label, unlogged.strip())
    if code != 0:
        raise StageFailed(f"stage {label!r} failed (exit code {code}):\n{error_summary(tail)}")
    return lines
