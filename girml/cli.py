"""The ``girml`` command line: one verb per DVC stage plus user tools.

This module makes the app (its logging and its masked tracebacks) and registers the verbs in
the order ``girml --help`` lists them: the stage verbs of :mod:`girml.cli_stages` and the tools
of :mod:`girml.cli_tools`, which share :mod:`girml.cli_common`. ``python -m girml``
(:mod:`girml.__main__`) and the installed ``girml`` (:mod:`pipelines.cli`) add the verbs kept
out of it.
"""

from __future__ import annotations

import logging
import sys
import traceback
from types import TracebackType
from typing import Annotated

import typer

from girml.cli_migrate import migrate_registry_command
from girml.cli_stages import (
    approach,
    approach_eval,
    collect,
    evaluate,
    interpret,
    protocols,
    specialists,
    study,
    synthesize,
    testset,
    train,
    tune,
    validate,
)
from girml.cli_tools import profile, release, restore
from girml.core.urls import MaskingFilter, mask_text

app = typer.Typer(
    name="girml",
    help="General Image Restoration pipeline: collect, synthesize, validate, train, evaluate.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def main(
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="debug logging")] = False,
) -> None:
    """girml: General Image Restoration (Kong et al., arXiv 2408.15143)."""
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    for noisy in ("great_expectations", "botocore", "urllib3", "filelock"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    # No URL credential in any log line or traceback, whichever library wrote it.
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, MaskingFilter) for f in handler.filters):
            handler.addFilter(MaskingFilter())
    sys.excepthook = _masked_excepthook


def _masked_excepthook(
    exc_type: type[BaseException], exc: BaseException, tb: TracebackType | None
) -> None:
    """Print an uncaught exception's traceback with URL credentials masked."""
    sys.stderr.write(mask_text("".join(traceback.format_exception(exc_type, exc, tb))))


# the verbs, in the order `girml --help` lists them
for _name, _verb in (
    ("collect", collect),
    ("synthesize", synthesize),
    ("validate", validate),
    ("train", train),
    ("tune", tune),
    ("specialists", specialists),
    ("evaluate", evaluate),
    ("interpret", interpret),
    ("restore", restore),
    ("study", study),
    ("approach", approach),
    ("approach-eval", approach_eval),
    ("testset", testset),
    ("protocols", protocols),
    ("release", release),
    ("profile", profile),
    ("migrate-registry", migrate_registry_command),
):
    app.command(_name)(_verb)
