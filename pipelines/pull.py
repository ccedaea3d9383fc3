"""``girml pull``: fetch a registered model, a run's reports or a data version, verified.

- ``girml pull model [models:/gir-restorer@champion] -o DIR``: the model version's artifacts,
  straight from the artifact store (S3, a tracking server's proxy or a folder).
- ``girml pull reports RUN_ID -o DIR [--path reports]``: a run's artifacts (reports, curves).
- ``girml pull data TARGET``: ``dvc pull TARGET`` inside the project, or ``dvc get REPO TARGET
  [--rev REV]`` with ``--repo`` (from any folder).

Verification. MLflow downloads are checked file by file against the artifact store's listing
(every file present, sizes equal); when the artifacts carry a ``SHA256SUMS`` file, every entry
is checked too. The result is written into ``DIR/SHA256SUMS`` (``sha256sum -c`` format) and the
folder replaces ``DIR`` only once complete, so ``DIR`` is never half-written. A pulled model is
loaded once before it is moved into place. DVC does not re-hash what it downloads (unless the
remote has ``verify = true``), so after ``dvc pull`` / ``dvc get`` every file's md5 is compared
with the hash that the repository records (``dvc ls --show-hash``).

Works from a clean folder with only ``MLFLOW_TRACKING_URI`` and the S3 settings
(``AWS_ENDPOINT_URL`` or ``MLFLOW_S3_ENDPOINT_URL``, credentials in the environment or the AWS
files). Transient failures are retried twice over: botocore's ``standard`` retry mode
(``AWS_RETRY_MODE`` / ``AWS_MAX_ATTEMPTS`` are set when unset) and an outer loop with
exponential backoff around each whole download (:func:`girml.retry.with_retries`).
"""

from __future__ import annotations

import json
import logging
import os
import posixpath
import re
import shutil
from collections.abc import Callable, Iterator, MutableMapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Annotated, Any, NamedTuple

import typer

from girml.cli import fail, fail_known
from girml.errors import probe_mlflow, probe_s3
from girml.hashing import file_digest
from girml.retry import DEFAULT_ATTEMPTS, with_retries
from girml.urls import mask_text
from pipelines.dvc_run import DvcError, run_dvc
from pipelines.pull_checks import PullError, check_out, project_target, repo_target

if TYPE_CHECKING:
    from mlflow.store.artifact.artifact_repo import ArtifactRepository

log = logging.getLogger(__name__)

SUMS_FILE = "SHA256SUMS"
S3_MAX_ATTEMPTS = "5"  # botocore's per-request attempts, set when AWS_MAX_ATTEMPTS is unset
_MODEL_URI = re.compile(r"^models:/(?P<name>[^/@]+)(?:@(?P<alias>[^/@]+)|/(?P<version>\d+))$")


class IncompleteDownload(PullError):
    """Files are missing or have the wrong size after a download (retried: likely transient)."""

    transient = True  # read by girml.retry.is_transient


@dataclass(frozen=True)
class Pulled:
    """What a pull produced.

    Attributes:
        source: where it came from (``models:/name/3``, ``runs:/<id>/reports``, a DVC target).
        path: the local file or folder.
        files: number of files verified.
        attempts: download attempts used (1 when the first one succeeded).
    """

    source: str
    path: Path
    files: int
    attempts: int


# --------------------------------------------------------------------------- checksums


def _files(folder: Path) -> list[str]:
    return sorted(
        p.relative_to(folder).as_posix()
        for p in folder.rglob("*")
        if p.is_file() and p.relative_to(folder).as_posix() != SUMS_FILE
    )


def write_sums(folder: Path) -> dict[str, str]:
    """Write ``folder/SHA256SUMS`` (``sha256sum -c`` format) for every other file, recursively.

    Returns:
        ``{relative posix path: sha256 hex}``, sorted by path.
    """
    sums = {rel: file_digest(folder / rel) for rel in _files(folder)}
    text = "".join(f"{digest}  {rel}\n" for rel, digest in sums.items())
    (folder / SUMS_FILE).write_text(text, encoding="utf-8")
    return sums


def check_sums(folder: Path) -> int:
    """Check every entry of ``folder/SHA256SUMS``; returns how many files were checked.

    Raises:
        FileNotFoundError: there is no ``SHA256SUMS``.
        PullError: a listed file is missing or its sha256 differs, or a line is malformed; the
            message names every bad file.
    """
    lines = (folder / SUMS_FILE).read_text(encoding="utf-8").splitlines()
    bad: list[str] = []
    for number, line in enumerate(lines, 1):
        digest, sep, rel = line.partition("  ")
        path = PurePosixPath(rel.removeprefix("*"))
        if not sep or len(digest) != 64 or path.is_absolute() or ".." in path.parts:
            raise PullError(f"{folder / SUMS_FILE}:{number}: not a sha256sum line: {line!r}")
        local = folder / path
        if not local.is_file():
            bad.append(f"{rel}: missing")
        elif file_digest(local) != digest.lower():
            bad.append(f"{rel}: sha256 differs from {SUMS_FILE}")
    if bad:
        raise PullError(f"checksum mismatch in {folder}:\n  " + "\n  ".join(bad))
    return len(lines)


# --------------------------------------------------------------------------- retries


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


# --------------------------------------------------------------------------- MLflow artifacts


def _listing(repo: ArtifactRepository, path: str | None) -> dict[str, int | None]:
    """``{path: size}`` of every file under ``path`` (a folder or one file), recursively."""
    files: dict[str, int | None] = {}
    for info in repo.list_artifacts(path):
        if info.is_dir:
            files.update(_listing(repo, info.path))
        else:
            files[info.path] = info.file_size
    if not files and path:  # a file: listing it gives nothing, its parent lists it
        parent = posixpath.dirname(path) or None
        files = {i.path: i.file_size for i in repo.list_artifacts(parent) if i.path == path}
    return files


def _download_once(repo: ArtifactRepository, path: str | None, dst: Path) -> int:
    """List, download into the empty folder ``dst`` and check presence and sizes."""
    for child in dst.iterdir():  # leftovers of a failed attempt
        if child.is_dir():
            shutil.rmtree(child)
        else:
            child.unlink()
    expected = _listing(repo, path)
    if not expected:
        raise PullError(f"no artifacts at {repo.artifact_uri}{'/' + path if path else ''}")
    repo.download_artifacts(path or "", dst_path=str(dst))
    problems = []
    for rel, size in sorted(expected.items()):
        local = dst / rel
        if not local.is_file():
            problems.append(f"{rel}: missing")
        elif size is not None and local.stat().st_size != size:
            problems.append(f"{rel}: {local.stat().st_size} bytes, the store lists {size}")
    if problems:
        raise IncompleteDownload("incomplete download:\n  " + "\n  ".join(problems))
    return len(expected)


def fetch_artifacts(
    artifact_uri: str,
    path: str | None,
    out: Path,
    source: str,
    attempts: int = DEFAULT_ATTEMPTS,
    force: bool = False,
    check: Callable[[Path], Any] | None = None,
) -> Pulled:
    """Download ``path`` under ``artifact_uri`` into ``out`` (keeping relative paths), verified.

    Steps: list the files (sizes), download into a staging folder beside ``out``, compare
    (retrying transient failures, :func:`with_retries`), check an artifact-provided
    ``SHA256SUMS``, run ``check`` on the staging folder, write ``SHA256SUMS``, then swap the
    folder into place.

    Args:
        artifact_uri: where the artifacts are stored (``s3://...``, ``mlflow-artifacts:/...``,
            ``file://...``): a run's or a model version's artifact root.
        path: a folder or file under it; None for everything.
        out: the local folder to fill (replaced as a whole).
        source: what to call it in messages.
        attempts: download attempts, >= 1.
        force: replace a non-empty ``out``.
        check: called with the staging folder once the files verify (e.g. load the model);
            raising aborts the pull.

    Returns:
        :class:`Pulled` with ``path`` = ``out``.

    Raises:
        PullError: nothing there, ``out`` not replaceable, a size or checksum mismatch.
    """
    from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

    from girml.imageio import staged_dir

    if path is not None and (
        not path or PurePosixPath(path).is_absolute() or ".." in PurePosixPath(path).parts
    ):
        raise PullError(f"artifact path must be relative, got {path!r}")
    check_out(out, force)
    if artifact_uri.startswith("s3://"):
        probe_s3()  # an endpoint that is down fails now, not after every retry
    repo = get_artifact_repository(artifact_uri)
    with staged_dir(out) as tmp:
        n_files, used = with_retries(
            lambda: _download_once(repo, path, tmp), f"download {source}", attempts
        )
        if (tmp / SUMS_FILE).is_file():
            check_sums(tmp)
        if check is not None:
            check(tmp)
        write_sums(tmp)
    return Pulled(source=source, path=out, files=n_files, attempts=used)


def _require_tracking_store() -> str:
    """Configure MLflow from ``MLFLOW_TRACKING_URI`` (or the project's ``mlflow.db`` here);
    a tracking server that does not answer raises :class:`girml.errors.ServiceUnreachable`."""
    from girml.tracking.mlflow import DB_FILE, configure

    if not os.environ.get("MLFLOW_TRACKING_URI") and not (Path.cwd() / DB_FILE).is_file():
        raise PullError(
            f"no MLflow tracking store: set MLFLOW_TRACKING_URI (a tracking server "
            f"http(s)://host:port or sqlite:///path/{DB_FILE}) or run in the project folder"
        )
    uri = configure(Path.cwd())
    probe_mlflow(uri)
    return uri


def resolve_model(uri: str) -> tuple[str, str]:
    """Resolve ``models:/<name>@<alias>`` or ``models:/<name>/<version>`` to (name, version).

    Resolving once pins the version, so an alias moved during the pull cannot mix two versions.

    Raises:
        PullError: another URI form, or no such model, version or alias.
    """
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    match = _MODEL_URI.match(uri)
    if match is None:
        raise PullError(f"expected models:/<name>@<alias> or models:/<name>/<version>, got {uri!r}")
    name, alias, version = match["name"], match["alias"], match["version"]
    client = MlflowClient()
    try:
        if alias is not None:
            found = client.get_model_version_by_alias(name, alias)
        else:
            found = client.get_model_version(name, version)
    except MlflowException as exc:
        raise PullError(f"{uri}: not in the registry ({mask_text(exc.message)})") from None
    return name, str(found.version)


def pull_model(
    uri: str, out: Path, attempts: int = DEFAULT_ATTEMPTS, force: bool = False
) -> Pulled:
    """Pull a registered model version into ``out`` and prove it loads.

    ``out`` then holds the MLflow model (``MLmodel``, ``data/``...) plus ``SHA256SUMS``;
    ``girml restore --model out`` and :func:`girml.models.store.load_model` accept it.

    Args:
        uri: ``models:/<name>@<alias>`` or ``models:/<name>/<version>``.
        out: the folder to fill (replaced as a whole).
        attempts: download attempts, >= 1.
        force: replace a non-empty ``out``.

    Returns:
        :class:`Pulled` whose ``source`` is ``models:/<name>/<version>``.
    """
    from mlflow import MlflowClient

    from girml.models.store import load_model

    check_out(out, force)  # before the registry is asked anything
    set_s3_env_defaults()
    _require_tracking_store()
    name, version = resolve_model(uri)
    location = MlflowClient().get_model_version_download_uri(name, version)
    return fetch_artifacts(
        location,
        None,
        out,
        f"models:/{name}/{version}",
        attempts,
        force,
        check=lambda folder: load_model(str(folder), f"models:/{name}/{version}"),
    )


def pull_reports(
    run_id: str,
    out: Path,
    path: str | None = None,
    attempts: int = DEFAULT_ATTEMPTS,
    force: bool = False,
) -> Pulled:
    """Pull a run's artifacts (all of them, or the folder or file ``path``) into ``out``.

    Files keep their path relative to the run's artifact root (``out/reports/...``), with
    ``out/SHA256SUMS`` beside them. Models logged by the run are not included: pull them with
    :func:`pull_model`.

    Raises:
        PullError: no such run, or nothing under ``path``.
    """
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    check_out(out, force)  # before the registry is asked anything
    set_s3_env_defaults()
    _require_tracking_store()
    try:
        artifact_uri = MlflowClient().get_run(run_id).info.artifact_uri
    except MlflowException as exc:
        raise PullError(f"run {run_id!r}: {mask_text(exc.message)}") from None
    source = f"runs:/{run_id}/{path}" if path else f"runs:/{run_id}"
    return fetch_artifacts(artifact_uri, path, out, source, attempts, force)


# --------------------------------------------------------------------------- DVC data


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


def verify_md5(local: Path, expected: dict[str, str]) -> int:
    """Compare files under ``local`` (a folder, or one file) with ``{relative path: md5}``.

    Returns:
        The number of files checked.

    Raises:
        PullError: a file is missing or differs; the message names each one.
    """
    bad = []
    for rel, md5 in sorted(expected.items()):
        path = local if local.is_file() else local / rel
        if not path.is_file():
            bad.append(f"{rel}: missing")
        elif file_digest(path, "md5") != md5:
            bad.append(f"{rel}: md5 {file_digest(path, 'md5')}, the repository records {md5}")
    if bad:
        raise PullError(
            f"{local}: {len(bad)} file(s) do not match the repository (a corrupt remote or "
            "cache object):\n  " + "\n  ".join(bad)
        )
    return len(expected)


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


# --------------------------------------------------------------------------- CLI


def _report(pulled: Pulled, what: str) -> None:
    retried = f" after {pulled.attempts} attempts" if pulled.attempts > 1 else ""
    source = mask_text(pulled.source)  # a --repo Git URL may carry a token
    typer.echo(f"pulled {source} into {pulled.path}: {pulled.files} files {what}{retried}")


@contextmanager
def _one_line_errors() -> Iterator[None]:
    """A pull's failure as one line and a non-zero exit: pull and DVC errors as they are, a
    service down, wrong credentials or an unwritable folder through ``fail_known``."""
    try:
        yield
    except (PullError, DvcError) as exc:
        fail(str(exc), getattr(exc, "code", 1))
    except Exception as exc:
        fail_known(exc)


OutOpt = Annotated[Path, typer.Option("--out", "-o", help="local folder to fill")]
AttemptsOpt = Annotated[
    int, typer.Option(min=1, help="download attempts; transient failures are retried")
]
ForceOpt = Annotated[bool, typer.Option("--force", help="replace a non-empty output")]


def _model_command(
    out: OutOpt,
    uri: Annotated[
        str | None,
        typer.Argument(help="models:/<name>@<alias> or models:/<name>/<version>"),
    ] = None,
    attempts: AttemptsOpt = DEFAULT_ATTEMPTS,
    force: ForceOpt = False,
) -> None:
    """A registered model (default models:/gir-restorer@champion) for girml restore --model."""
    from girml.tracking.mlflow import CHAMPION, REGISTERED_MODEL

    with _one_line_errors():
        pulled = pull_model(uri or f"models:/{REGISTERED_MODEL}@{CHAMPION}", out, attempts, force)
    _report(pulled, f"verified, {SUMS_FILE} written, model loads")


def _reports_command(
    run_id: Annotated[str, typer.Argument(help="MLflow run id")],
    out: OutOpt,
    path: Annotated[
        str | None, typer.Option(help="artifact folder or file, e.g. reports; default all")
    ] = None,
    attempts: AttemptsOpt = DEFAULT_ATTEMPTS,
    force: ForceOpt = False,
) -> None:
    """A run's artifacts (reports, curves), keeping their paths."""
    with _one_line_errors():
        pulled = pull_reports(run_id, out, path, attempts, force)
    _report(pulled, f"verified, {SUMS_FILE} written")


def _data_command(
    target: Annotated[str, typer.Argument(help="tracked path, e.g. data/bench/single-id")],
    repo: Annotated[
        str | None, typer.Option(help="Git URL or path to `dvc get` from (any folder)")
    ] = None,
    rev: Annotated[str | None, typer.Option(help="Git revision (needs --repo)")] = None,
    remote: Annotated[str | None, typer.Option(help="DVC remote name")] = None,
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="with --repo: where to write")
    ] = None,
    attempts: AttemptsOpt = DEFAULT_ATTEMPTS,
    force: ForceOpt = False,
) -> None:
    """A benchmark suite or data version through DVC, every file's md5 checked."""
    with _one_line_errors():
        pulled = pull_data(target, Path.cwd(), repo, rev, remote, out, attempts, force)
    _report(pulled, "md5-verified")


def register(app: typer.Typer) -> None:
    """Add the ``girml pull`` group (``model``, ``reports``, ``data``) to ``app``."""
    pull_app = typer.Typer(
        name="pull",
        help="Fetch models, reports and data from the registry, S3 or a DVC remote (verified).",
        no_args_is_help=True,
    )
    pull_app.command("model")(_model_command)
    pull_app.command("reports")(_reports_command)
    pull_app.command("data")(_data_command)
    app.add_typer(pull_app)
