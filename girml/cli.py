"""The ``girml`` command line: one verb per DVC stage plus user tools.

Each stage verb reads its ``params.yaml`` section, calls one library function and writes the
outputs that ``dvc.yaml`` declares, relative to the working directory. This module is the only
place that knows those paths.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from girml.config import ConfigError, apply_profile, load_section

app = typer.Typer(
    name="girml",
    help="General Image Restoration pipeline: collect, synthesize, validate, train, evaluate.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

# Stage outputs, exactly as declared in dvc.yaml.
CLEAN_DIR = Path("data/clean")
PAIRS_DIR = Path("data/pairs")
BENCH_DIR = Path("data/bench")
VALIDATION_DIR = Path("reports/validation")

ParamsOpt = Annotated[
    Path, typer.Option("--params", "-p", help="params file; the stage reads its own section")
]
F = TypeVar("F", bound=Callable[..., Any])


def _fail(message: str, code: int) -> None:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code)


def stage(func: F) -> F:
    """Turn config and input errors into a readable message and a non-zero exit."""

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except ConfigError as exc:
            _fail(str(exc), 2)
        except (FileNotFoundError, ValueError, KeyError) as exc:
            _fail(str(exc).strip("'\""), 1)

    return wrapper  # type: ignore[return-value]


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


@app.command()
@stage
def collect(params: ParamsOpt = Path("params.yaml")) -> None:
    """Gather clean photos into data/clean/ (images, manifest.csv, rejected.csv)."""
    from girml.data.collect import collect as run_collect

    cfg = load_section(params, "collect")
    result = run_collect(cfg, CLEAN_DIR)
    typer.echo(
        f"collected {result.n_images} images ({result.n_rejected} rejected, "
        f"{result.n_duplicates} duplicates) into {CLEAN_DIR}"
    )


@app.command()
@stage
def synthesize(params: ParamsOpt = Path("params.yaml")) -> None:
    """Degrade clean photos into data/pairs/{train,val} and data/bench/<suite>/<family>."""
    from girml.data.synthesize import read_manifest
    from girml.data.synthesize import synthesize as run_synthesize
    from girml.degradations import check_spec

    spec = load_section(params, "degradations")
    try:
        check_spec(spec)
    except ValueError as exc:
        raise ConfigError(f"{params}: invalid config\n  {exc}") from None
    cfg = load_section(params, "synthesize")
    images = read_manifest(CLEAN_DIR / "manifest.csv", CLEAN_DIR / "images")
    result = run_synthesize(images, spec, cfg, PAIRS_DIR, BENCH_DIR)
    for group, n in sorted(result.counts.items()):
        typer.echo(f"{group:40s} {n:6d}")


@app.command()
@stage
def validate(params: ParamsOpt = Path("params.yaml")) -> None:
    """Great Expectations checks over manifests, pairs and recipes; non-zero exit on failure."""
    from girml.data.validate import validate_data

    spec = load_section(params, "degradations")
    cfg = load_section(params, "validate")
    min_size = load_section(params, "collect").min_size
    held_category = load_section(params, "synthesize").unseen_content_category
    report = validate_data(
        CLEAN_DIR, PAIRS_DIR, BENCH_DIR, spec, cfg, min_size, held_category, VALIDATION_DIR
    )
    typer.echo(report.summary())
    typer.echo(f"result: {VALIDATION_DIR / 'result.json'}  docs: {report.docs_index}")
    if not report.success:
        raise typer.Exit(1)


@app.command()
@stage
def profile(
    profile_path: Annotated[
        Path, typer.Argument(help="partial params file, e.g. profiles/smoke.yaml")
    ],
    base: Annotated[Path, typer.Option(help="params file to start from")] = Path("params.yaml"),
    out: Annotated[Path, typer.Option(help="where to write the merged params")] = Path(
        "params.yaml"
    ),
) -> None:
    """Switch profile: merge a partial params file over the base and write the result."""
    import yaml

    from girml.imageio import write_text

    merged = apply_profile(base, profile_path)
    header = f"# {base} with {profile_path} applied (girml profile)\n"
    write_text(out, header + yaml.safe_dump(merged, sort_keys=False, width=100))
    typer.echo(f"wrote {out} ({base} + {profile_path})")
