"""Pulling data through DVC: ``dvc pull TARGET`` inside the project, or ``dvc get REPO TARGET
[--rev REV]`` from any folder, then every file's md5 compared with the hash the repository
records (``dvc ls --show-hash``): DVC does not re-hash what it downloads unless the remote has
``verify = true``."""

from __future__ import annotations

import json
from pathlib import Path, PurePosixPath
from typing import NamedTuple

from girml.core.retry import DEFAULT_ATTEMPTS, with_retries
from pipelines.dvc_run import run_dvc
from pipelines.pull_checks import PullError, project_target, repo_target, set_s3_env_defaults
from pipelines.pull_verify import Pulled, verify_md5


def find_dvc_root(start: Path) -> Path:
    """The nearest folder at or above ``start`` holding a ``.dvc`` folder.

    Raises:
        PullError: none (the message suggests ``--repo``).
    """
    for folder in (start.resolve(), *start.resolve().parents):
        if (folder / ".dvc").is_dir():
            return folder
    raise PullError(f"{start} is not inside a DVC project: run there, or pass --repo URL")


def dvc_hashes(
    repo: str, target: str, cwd: Path, rev: str | None = None, remote: str | None = None
) -> dict[str, str]:
    """md5 of every DVC-tracked file under ``target`` as the repository records it.

    Uses ``dvc ls REPO TARGET --recursive --dvc-only --json --show-hash``.

    Returns:
        ``{path relative to target: md5}``; a single-file target maps its name. Empty when
        nothing under ``target`` is tracked by DVC.
    """
    args = ["ls", repo, target, "--recursive", "--dvc-only", "--json", "--show-hash"]
    args += [*(["--rev", rev] if rev else []), *(["--remote", remote] if remote else [])]
    entries = json.loads(run_dvc(args, cwd) or "[]")
    return {e["path"]: e["md5"] for e in entries if e.get("md5") and not e.get("isdir")}


class _Fetched(NamedTuple):
    """Where DVC put the data, in how many attempts, and how ``dvc ls`` names it."""

    local: Path
    attempts: int
    repo: str
    target: str
    cwd: Path


def _pull_here(target: str, cwd: Path, remote_args: list[str], attempts: int) -> _Fetched:
    """``dvc pull TARGET`` in the DVC project holding ``cwd`` (its current commit).

    Raises:
        PullError: not in a DVC project.
    """
    root = find_dvc_root(cwd)
    rel = project_target(target, cwd, root)
    pull_args = ["pull", rel, *remote_args]
    _, used = with_retries(lambda: run_dvc(pull_args, root), f"dvc pull {rel}", attempts)
    return _Fetched(root / rel, used, str(root), rel, root)


def _get_from(
    repo: str,
    target: str,
    cwd: Path,
    rev: str | None,
    out: Path | None,
    remote_args: list[str],
    attempts: int,
    force: bool,
) -> _Fetched:
    """``dvc get REPO TARGET [--rev REV] -o OUT``, from any folder.

    Raises:
        PullError: ``out`` exists and ``force`` is off; ``target`` is not inside the repository.
    """
    local = cwd / (out or PurePosixPath(repo_target(target)).name)
    if local.exists() and not force:
        raise PullError(f"{local} exists; pass --force to replace it")
    # --force from here on: whatever is at `local` now is a failed attempt's or may go.
    get_args = ["get", repo, target, "-o", str(local), "--force", *remote_args]
    get_args += ["--rev", rev] if rev else []
    _, used = with_retries(lambda: run_dvc(get_args, cwd), f"dvc get {target}", attempts)
    return _Fetched(local, used, repo, target, cwd)


def pull_data(
    target: str,
    cwd: Path,
    repo: str | None = None,
    rev: str | None = None,
    remote: str | None = None,
    out: Path | None = None,
    attempts: int = DEFAULT_ATTEMPTS,
    force: bool = False,
) -> Pulled:
    """Fetch a DVC-tracked folder or file and check every file's md5.

    Without ``repo``: ``dvc pull TARGET`` in the DVC project holding ``cwd`` (the workspace at
    its current commit). With ``repo`` (a Git URL or path, ``.`` included): ``dvc get REPO
    TARGET [--rev REV] -o OUT``, which works from any folder.

    Args:
        target: the path in the repository, e.g. ``data/bench/single-id`` (relative to ``cwd``
            inside a project, to the repository root with ``repo``).
        cwd: where to run.
        repo: the repository to ``dvc get`` from; None to ``dvc pull`` here.
        rev: a Git revision (branch, tag, commit); needs ``repo``.
        remote: the DVC remote to use instead of the default.
        out: with ``repo``, where to write (default: ``target``'s last part under ``cwd``).
        attempts: tries per DVC command (transient failures only), >= 1.
        force: with ``repo``, replace an existing ``out``.

    Raises:
        PullError: not in a DVC project, a ``target`` outside it, ``rev``/``out`` without
            ``repo``, or files that do not match their recorded md5.
        DvcError: DVC failed (unknown target, unreachable remote after retries).
    """
    set_s3_env_defaults()
    remote_args = ["--remote", remote] if remote else []
    if repo is None and (rev or out is not None):
        raise PullError(
            "--rev and --out need --repo (e.g. --repo . --rev v1 -o DIR); without it, "
            "dvc pull fills the workspace at the current commit"
        )
    if repo is None:
        got = _pull_here(target, cwd, remote_args, attempts)
    else:
        got = _get_from(repo, target, cwd, rev, out, remote_args, attempts, force)
    expected, _ = with_retries(
        lambda: dvc_hashes(got.repo, got.target, got.cwd, rev, remote), f"dvc ls {target}", attempts
    )
    n_files = verify_md5(got.local, expected)
    source = f"{got.repo}:{got.target}{f'@{rev}' if rev else ''}"
    return Pulled(source=source, path=got.local, files=n_files, attempts=got.attempts)
