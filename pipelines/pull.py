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
exponential backoff around each whole download (:func:`girml.core.retry.with_retries`).

This module holds the verbs; the work is in :mod:`pipelines.pull_mlflow` and
:mod:`pipelines.pull_dvc`, the checks in :mod:`pipelines.pull_verify` and
:mod:`pipelines.pull_checks`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer

from girml.cli_common import fail, fail_known
from girml.core.retry import DEFAULT_ATTEMPTS
from girml.core.urls import mask_text
from pipelines.dvc_run import DvcError
from pipelines.pull_checks import PullError
from pipelines.pull_dvc import pull_data
from pipelines.pull_mlflow import pull_model, pull_reports
from pipelines.pull_verify import SUMS_FILE, Pulled


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
    from girml.tracking.versions import CHAMPION, REGISTERED_MODEL

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
