"""``girml pull``'s errors, and what runs before anything is fetched: the checks of its
arguments and the S3 settings a pull relies on.

Every failure is a :class:`PullError`: one line at the command line, with its :attr:`code`.
Arguments that cannot work (an output folder that would replace the folder the user stands in,
a data target outside the project) are :class:`PullArgumentError`, exit code 2.
"""

from __future__ import annotations

import os
from collections.abc import MutableMapping
from pathlib import Path, PurePosixPath

from girml.core.errors import EX_BAD_INPUT

S3_MAX_ATTEMPTS = "5"  # botocore's per-request attempts, set when AWS_MAX_ATTEMPTS is unset


class PullError(RuntimeError):
    """A pull failed for good: nothing found, bad arguments, or data that does not verify.

    Attributes:
        code: the command's exit code.
    """

    code = 1


class PullArgumentError(PullError):
    """An argument that cannot work as given; the message names it and says why."""

    code = EX_BAD_INPUT


def check_out(out: Path, force: bool) -> None:
    """Check ``--out``: a folder that the pull may replace as a whole.

    Raises:
        PullArgumentError: ``out`` is the current folder or one above it (``-o .``: replacing
            it would delete the folder the command runs in), or a file.
        PullError: ``out`` is a non-empty folder and ``force`` is off.
    """
    here = Path.cwd().resolve()
    if out.resolve() in (here, *here.parents):
        raise PullArgumentError(
            f"--out {out}: the output folder is replaced as a whole, so it cannot be the "
            "current folder or one above it; give a new folder, e.g. --out pulled"
        )
    if out.is_file():
        raise PullArgumentError(f"--out {out} is a file; give a folder")
    if out.is_dir() and any(out.iterdir()) and not force:
        raise PullError(f"{out} exists and is not empty; pass --force to replace it")


def project_target(target: str, cwd: Path, root: Path) -> str:
    """``target`` (relative to ``cwd``) as a path relative to the DVC project ``root``.

    Raises:
        PullArgumentError: ``target`` points outside the project (``../../etc/passwd``,
            ``/etc/passwd``): only what the project tracks can be pulled.
    """
    resolved = (cwd / target).resolve()
    if not resolved.is_relative_to(root):
        raise PullArgumentError(
            f"TARGET {target!r} is outside the DVC project {root}: give a path the project "
            "tracks, e.g. data/bench/single-id (or pass --repo to get from another one)"
        )
    return resolved.relative_to(root).as_posix()


def repo_target(target: str) -> str:
    """``target`` for ``dvc get --repo``: a path inside the repository.

    Raises:
        PullArgumentError: an absolute path or one with ``..``.
    """
    path = PurePosixPath(target)
    if not target or path.is_absolute() or ".." in path.parts:
        raise PullArgumentError(
            f"TARGET {target!r} must be a path inside the repository, relative to its root "
            "and without '..', e.g. data/bench/single-id"
        )
    return target


def set_s3_env_defaults(environ: MutableMapping[str, str] | None = None) -> dict[str, str]:
    """Set the S3 settings a pull relies on, where the user has not set them.

    ``AWS_RETRY_MODE=standard`` and ``AWS_MAX_ATTEMPTS`` (botocore's retries of throttling,
    5xx and dropped connections, for boto3, MLflow and DVC alike), and
    ``MLFLOW_S3_ENDPOINT_URL`` = ``AWS_ENDPOINT_URL`` (MLflow keys its cached S3 clients on the
    former, so naming the endpoint keeps a stale client from being reused).

    Args:
        environ: the environment to update; ``os.environ`` when None.

    Returns:
        The variables that were set.
    """
    env = os.environ if environ is None else environ
    wanted = {"AWS_RETRY_MODE": "standard", "AWS_MAX_ATTEMPTS": S3_MAX_ATTEMPTS}
    if env.get("AWS_ENDPOINT_URL"):
        wanted["MLFLOW_S3_ENDPOINT_URL"] = env["AWS_ENDPOINT_URL"]
    added = {key: value for key, value in wanted.items() if not env.get(key)}
    env.update(added)
    return added
