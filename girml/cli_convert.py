"""``girml convert-model``: the explicit, trusted-only conversion of a pickled model.

The verb lives here rather than in :mod:`girml.cli` (it shares :mod:`girml.cli_common`);
``python -m girml`` (:mod:`girml.__main__`) and the installed ``girml`` (:mod:`pipelines.cli`)
register it with :func:`register`. The work is :func:`girml.artifacts.convert.convert_model`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from girml.cli_common import fail, stage

# paragraphs, each one line for the help's own wrapping
HELP = "\n\n".join(
    [
        "Convert a pickled model that you trust into a model folder girml loads safely.",
        "WARNING: THIS RUNS CODE FROM THE FILE. Unpickling a model (an old MLflow "
        "pytorch-flavour registry version, a .pt/.pth file, a weights.pt holding Python "
        "objects) runs whatever code its author put in it. girml never does that when it loads "
        "a model: it refuses such files. This command unpickles SRC once, because you ask it "
        "to, and writes OUT: weights.pt (tensors only) and config.yaml, which girml then loads "
        "without unpickling (girml restore --model OUT).",
        "Use it only on files that you or your team produced, or that come from a source you "
        "trust. Never use it on a model downloaded or shared from a source you cannot vouch "
        "for.",
        "SRC: a folder holding an MLmodel file, models:/NAME/VERSION, models:/NAME@ALIAS, "
        "runs:/RUN_ID/PATH, a model folder, or a .pt/.pth file. The architecture comes from "
        "--config, else from SRC's own config.yaml, else from its MLflow run's model.* params.",
    ]
)


def convert_model_command(
    source: Annotated[str, typer.Argument(metavar="SRC", help="the pickled model (see above)")],
    out: Annotated[Path, typer.Option("--out", "-o", help="model folder to write")],
    i_trust_this_file: Annotated[
        bool,
        typer.Option(
            "--i-trust-this-file",
            help="confirm that you trust SRC: converting it runs any code it holds",
        ),
    ] = False,
    config: Annotated[
        Path | None,
        typer.Option(
            help="YAML file with the model: section SRC was trained with (its params.yaml, or "
            "a model folder's config.yaml)"
        ),
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="replace a non-empty OUT")] = False,
) -> None:
    if not i_trust_this_file:
        fail(
            f"convert-model unpickles {source}, which runs any code in it: pass "
            "--i-trust-this-file only if you trust where it came from",
            2,
        )
    from girml.artifacts.convert import convert_model

    done = convert_model(source, out, trusted=True, config=config, force=force)
    typer.echo(
        f"converted {source} ({done.pickled}, sha256 {done.sha256[:12]}) into {done.out}: "
        f"{done.tensors} tensors, architecture from {done.config_from}; use it with "
        f"--model {done.out}"
    )


def register(app: typer.Typer) -> None:
    """Add ``convert-model`` to ``app``."""
    app.command("convert-model", help=HELP)(stage(convert_model_command))
