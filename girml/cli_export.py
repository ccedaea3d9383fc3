"""``girml export --format onnx``: a girml model as an ONNX file for other runtimes.

The verb lives here rather than in :mod:`girml.cli` (it shares :mod:`girml.cli_common`);
``python -m girml`` (:mod:`girml.__main__`) and the installed ``girml`` (:mod:`pipelines.cli`)
register it with :func:`register`. The work is
:func:`girml.artifacts.onnx_export.export_onnx`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from girml.cli_common import fail, stage

FORMATS = ("onnx",)
# paragraphs, each one line for the help's own wrapping
HELP = "\n\n".join(
    [
        "Export a model as ONNX for any image size (onnxruntime, other runtimes).",
        "The graph restores an image from its `image` input alone; its other inputs and "
        "outputs let `girml restore --model OUT` tile large photos and still pool over the "
        "whole photo, as with the torch model.",
        "The file records the source, its config and its weights' sha256. It is written only "
        "after onnx.checker passes and onnxruntime agrees with torch within 1e-4 on a random "
        "image, whole and tiled.",
    ]
)


def export_command(
    out: Annotated[Path, typer.Option("--out", "-o", help="the file to write (model.onnx)")],
    export_format: Annotated[
        str, typer.Option("--format", help=f"what to write: {', '.join(FORMATS)}")
    ] = "onnx",
    model: Annotated[
        str | None,
        typer.Option(
            help="model folder, release folder, models:/name@alias or models:/name/version; "
            "default: the model `girml restore` would run"
        ),
    ] = None,
) -> None:
    """``girml export`` (its help: :data:`HELP`)."""
    if export_format not in FORMATS:
        fail(f"--format must be one of {', '.join(FORMATS)}, got {export_format!r}", 2)
    from girml.artifacts.onnx_export import export_onnx
    from girml.restore_model import resolve_restore_model

    try:
        chosen = resolve_restore_model(model)
        typer.echo(f"model: {chosen.description}", err=True)
        done = export_onnx(chosen.load, out, name=chosen.requested)
    except (FileNotFoundError, ValueError) as exc:
        fail(str(exc), 2)
    typer.echo(
        f"exported {chosen.requested} ({done.architecture}, {done.pooling_layers} pooling "
        f"layers) to {done.out}: {done.bytes / 2**20:.2f} MiB, onnxruntime within "
        f"{done.max_abs_diff:.1e} of torch; restore with girml restore --model {done.out}"
    )


def register(app: typer.Typer) -> None:
    """Add ``export`` to ``app``."""
    app.command("export", help=HELP)(stage(export_command))
