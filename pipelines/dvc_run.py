"""The one DVC runner of ``pipelines/``: ``dvc ARGS`` through this interpreter's DVC.

:func:`run_dvc` captures the output (``girml remote``, ``girml pull``, ``girml stack``);
:func:`stream_dvc` yields it line by line as it comes (the Prefect flow's stages). Both fail
with :class:`DvcError`, which tells :func:`girml.core.retry.is_transient` whether DVC's failure is
worth another attempt.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

# DVC's messages for failures worth retrying: the endpoint was unreachable or overloaded.
_TRANSIENT = re.compile(
    r"could not connect|failed to connect|connection (?:was )?(?:reset|refused|closed|aborted)"
    r"|timed? ?out|slow ?down|service ?unavailable|throttl|temporar",
    re.IGNORECASE,
)
_STREAM_TAIL_LINES = 20  # the last output lines a streamed run's DvcError carries


class DvcError(RuntimeError):
    """``dvc ARGS`` exited non-zero.

    Attributes:
        args_: the DVC arguments (no secrets: credentials never appear on a DVC command line).
        returncode: its exit status.
        output: its stderr (or stdout when stderr was empty), stripped; for a streamed run,
            its last output lines.
    """

    def __init__(self, args_: Sequence[str], returncode: int, output: str) -> None:
        self.args_ = list(args_)
        self.returncode = returncode
        self.output = output
        super().__init__(f"`dvc {' '.join(self.args_)}` failed (exit code {returncode}):\n{output}")

    @property
    def transient(self) -> bool:
        """True when DVC reported a connection problem or an overloaded endpoint."""
        return bool(_TRANSIENT.search(self.output))


def dvc_env() -> dict[str, str]:
    """The caller's environment (credentials included, for DVC to read) plus
    ``DVC_NO_ANALYTICS=1`` and ``GIT_TERMINAL_PROMPT=0`` (a private Git URL fails instead of
    waiting for a password)."""
    return {**os.environ, "DVC_NO_ANALYTICS": "1", "GIT_TERMINAL_PROMPT": "0"}


def _argv(args: Sequence[str]) -> list[str]:
    """The command line of ``dvc ARGS`` with this interpreter's DVC."""
    return [sys.executable, "-m", "dvc", *args]


def run_dvc(args: Sequence[str], cwd: Path) -> str:
    """Run ``dvc ARGS`` in ``cwd`` (environment: :func:`dvc_env`) and return its stdout.

    Raises:
        DvcError: DVC exited non-zero; the message holds its error output.
    """
    done = subprocess.run(
        _argv(args),
        cwd=cwd,
        env=dvc_env(),
        capture_output=True,
        text=True,
        errors="replace",
        check=False,
    )
    if done.returncode != 0:
        raise DvcError(args, done.returncode, (done.stderr.strip() or done.stdout.strip()))
    return done.stdout


def stream_dvc(
    args: Sequence[str], cwd: Path, env: Mapping[str, str] | None = None
) -> Iterator[str]:
    """Run ``dvc ARGS`` in ``cwd`` and yield its output lines as they come (right-stripped).

    stdout and stderr are one stream, which keeps the order of the messages; in text mode
    tqdm's carriage returns end lines too.

    Args:
        args: DVC arguments, e.g. ``["repro", "--single-item", "train"]``.
        cwd: the DVC project.
        env: the process environment; :func:`dvc_env` when None.

    Raises:
        DvcError: DVC exited non-zero (raised once every line has been yielded).
    """
    tail: deque[str] = deque(maxlen=_STREAM_TAIL_LINES)
    with subprocess.Popen(
        _argv(args),
        cwd=cwd,
        env=dict(env) if env is not None else dvc_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        errors="replace",
        bufsize=1,
    ) as proc:
        assert proc.stdout is not None
        for raw in proc.stdout:
            line = raw.rstrip()
            if line.strip():
                tail.append(line)
            yield line
        code = proc.wait()
    if code != 0:
        raise DvcError(args, code, "\n".join(tail))
