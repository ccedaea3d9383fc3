"""What every ``girml`` verb shares: one-line errors with their exit codes, the check of the
whole params file, the stage lock, the probe of the services a verb needs, and the common
options.

The verbs (:mod:`girml.cli_stages`, :mod:`girml.cli_tools`, :mod:`girml.cli_convert` and the
orchestration verbs of :mod:`pipelines`) wrap themselves in :func:`stage` and, where they hold a
folder or need MLflow, :func:`locked` and :func:`uses_mlflow`.
"""

from __future__ import annotations

import sys
import traceback
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Annotated, Any, NoReturn, TypeVar

import typer

from girml.config import ConfigError
from girml.core.process import StageBusy
from girml.core.urls import mask_text
from girml.stages.contract import StageFailed

# One lock file per long stage (train, tune, synthesize): one run of each per folder.
LOCK_DIR = Path(".girml/locks")

ParamsOpt = Annotated[
    Path, typer.Option("--params", "-p", help="params file; the stage reads its own section")
]
WaitOpt = Annotated[
    bool,
    typer.Option(
        "--wait", help="if this stage already runs in this folder, wait for it instead of failing"
    ),
]
F = TypeVar("F", bound=Callable[..., Any])
BUSY_EXIT = 75  # EX_TEMPFAIL: another run of the stage holds the folder; try again later
DEBUG_ENV = "GIRML_DEBUG"  # =1: tracebacks instead of one-line errors


def fail(message: str, code: int) -> NoReturn:
    """Print ``error: <message>`` (URL credentials masked) in red and exit with ``code``."""
    typer.secho(f"error: {mask_text(message)}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code)


def fail_known(exc: Exception) -> None:
    """:func:`fail` with :func:`girml.core.errors.describe_error`'s line and exit code.

    Re-raises ``exc`` (a traceback, URLs masked) when it is of no known family or a CLI exit
    (``typer.Exit``, click's exceptions). With ``GIRML_DEBUG=1`` a known failure prints its
    traceback (masked) before the line, and keeps its exit code.
    """
    import os

    import click

    from girml.core.errors import describe_error

    exits = (typer.Exit, typer.Abort, click.exceptions.Exit, click.ClickException, click.Abort)
    described = None if isinstance(exc, exits) else describe_error(exc)
    if described is None:
        raise exc
    if os.environ.get(DEBUG_ENV, "") not in ("", "0"):
        sys.stderr.write(mask_text("".join(traceback.format_exception(exc))))
    fail(*described)


def uses_mlflow(func: F) -> F:
    """Check, before the verb starts work, that its MLflow tracking server (an ``http(s)://``
    ``MLFLOW_TRACKING_URI``) and an ``s3://`` artifact root's S3 endpoint
    (``GIRML_ARTIFACT_ROOT``) answer; :class:`girml.core.errors.ServiceUnreachable` otherwise.

    Put it under :func:`stage`, which turns that error into one line and exit code 69.
    """

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        import os

        from girml.core.errors import probe_mlflow, probe_s3

        probe_mlflow(os.environ.get("MLFLOW_TRACKING_URI", ""))
        if os.environ.get("GIRML_ARTIFACT_ROOT", "").startswith("s3://"):
            probe_s3()
        return func(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


def stage(func: F) -> F:
    """Turn config, input and service errors into one readable line and a non-zero exit.

    A verb with a ``params`` argument first checks the whole params file (every section and
    the checks between sections, :func:`girml.params_check.check_params`), so a typo anywhere
    stops it before it touches an output, with the message naming the bad key.
    """

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            if kwargs.get("params") is not None:
                from girml.params_check import check_params

                check_params(kwargs["params"])
            return func(*args, **kwargs)
        except StageFailed as exc:
            if not exc.message:  # the stage has already said what failed
                raise typer.Exit(exc.code) from None
            fail(exc.message, exc.code)
        except ConfigError as exc:
            fail(str(exc), 2)
        except StageBusy as exc:
            fail(str(exc), BUSY_EXIT)
        except (FileNotFoundError, ValueError, KeyError) as exc:
            fail(_plain_message(exc), 1)
        except Exception as exc:  # services down, wrong credentials, unwritable outputs
            fail_known(exc)

    return wrapper  # type: ignore[return-value]


def _plain_message(exc: FileNotFoundError | ValueError | KeyError) -> str:
    """One line for a missing file, a bad value or a missing key, without Python's quoting."""
    if isinstance(exc, FileNotFoundError) and exc.filename is not None:
        return f"{exc.filename}: {exc.strerror or 'no such file or directory'}"
    if isinstance(exc, KeyError) and len(exc.args) == 1:
        return str(exc.args[0])
    return str(exc)


def locked(name: str) -> Callable[[F], F]:
    """Run the verb holding the folder's lock for stage ``name``, with SIGTERM unwinding it.

    A second run of the stage in the same folder fails at once naming the holder's PID (or
    waits, with ``--wait``); SIGTERM/SIGHUP raise :class:`girml.core.process.Terminated`, so open
    MLflow runs end KILLED and staging folders are removed. Under ``accelerate launch`` each
    rank takes its own lock.
    """

    def decorate(func: F) -> F:
        @wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            import os

            from girml.core.process import sigterm_raises, stage_lock

            rank = os.environ.get("RANK", "0")
            lock_file = LOCK_DIR / (f"{name}.lock" if rank == "0" else f"{name}.rank{rank}.lock")
            with sigterm_raises(), stage_lock(lock_file, name, wait=bool(kwargs.get("wait"))):
                return func(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorate
