"""The ``girml`` app (girml/cli.py): its verbs in order, debug logging and masked output."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import typer

from girml.cli import app
from tests.factories import REPO

VERBS = [
    "collect",
    "synthesize",
    "validate",
    "train",
    "tune",
    "specialists",
    "evaluate",
    "interpret",
    "restore",
    "study",
    "approach",
    "approach-eval",
    "testset",
    "protocols",
    "release",
    "profile",
    "migrate-registry",
]


def test_the_library_verbs_are_registered_in_pipeline_order() -> None:
    group = typer.main.get_command(app)
    # first: pipelines.cli, once imported in this process, adds its verbs to the same app
    assert group.list_commands(None)[: len(VERBS)] == VERBS  # type: ignore[attr-defined]


def test_verbose_logs_debug_lines_and_nothing_prints_url_credentials() -> None:
    """``-v`` logs at DEBUG; a log line and an uncaught traceback have their URL userinfo
    masked, whichever library wrote them."""
    code = textwrap.dedent(
        """
        import logging
        from girml.cli import app

        @app.command("boom")
        def boom() -> None:
            logging.getLogger("lib").debug("fetching https://user:topsecret@host/a")
            raise RuntimeError("failed at https://user:topsecret@host/b")

        app(["-v", "boom"], prog_name="girml")
        """
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 1
    assert "DEBUG lib: fetching https://" in proc.stderr
    assert "RuntimeError: failed at https://" in proc.stderr
    assert "topsecret" not in proc.stderr and "user:" not in proc.stderr
