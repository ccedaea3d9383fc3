"""Provenance tags: what produced a run (git commit and state, DVC output hashes, params hash).

Tags only: never environment variables or credentials.
"""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

import yaml


def _git(root: Path, *args: str) -> str | None:
    """``git <args>`` output in ``root`` (stripped), or None outside git / without git."""
    try:
        done = subprocess.run(
            ["git", *args], cwd=root, capture_output=True, text=True, timeout=30, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def dvc_output_hashes(lock_path: Path) -> dict[str, str]:
    """``{"dvc.<out path>": md5}`` for every stage output recorded in ``dvc.lock``.

    Returns an empty dict when the file does not exist (no stage has run yet).

    Raises:
        ValueError: the file is not valid YAML or not shaped like a ``dvc.lock``.
    """
    if not lock_path.is_file():
        return {}
    try:
        lock = yaml.safe_load(lock_path.read_text(encoding="utf-8")) or {}
        stages = lock.get("stages", {})
        return {
            f"dvc.{out['path']}": str(out["md5"])
            for stage in stages.values()
            for out in (stage or {}).get("outs", [])
            if "md5" in out
        }
    except yaml.YAMLError as exc:
        raise ValueError(f"{lock_path}: not valid YAML ({exc})") from None
    except (AttributeError, KeyError, TypeError) as exc:
        raise ValueError(f"{lock_path}: unexpected dvc.lock structure ({exc!r})") from None


def provenance_tags(project_root: Path, params_path: Path) -> dict[str, str]:
    """Run tags that pin what produced a run (never environment variables or credentials).

    Args:
        project_root: the git work tree holding ``dvc.lock``.
        params_path: the params file; relative paths are taken from ``project_root``.

    Returns:
        ``git_commit`` (``"unknown"`` outside git or before the first commit), ``git_dirty``
        (``"true"``/``"false"``, counting untracked files; ``"unknown"`` outside git),
        ``dvc.<out path>`` = md5 of each output in ``dvc.lock``, and ``params_hash`` (first 16
        hex digits of the params file's sha256).
    """
    params_file = params_path if params_path.is_absolute() else project_root / params_path
    if not params_file.is_file():
        raise FileNotFoundError(f"params file {params_file} not found")
    status = _git(project_root, "status", "--porcelain")
    return {
        "git_commit": _git(project_root, "rev-parse", "HEAD") or "unknown",
        "git_dirty": "unknown" if status is None else str(bool(status)).lower(),
        **dvc_output_hashes(project_root / "dvc.lock"),
        "params_hash": hashlib.sha256(params_file.read_bytes()).hexdigest()[:16],
    }
