"""The ``girml`` command line: one verb per DVC stage plus user tools.

Each stage verb runs its module in :mod:`girml.stages` (which reads the stage's params keys,
calls the library and writes the outputs ``dvc.yaml`` declares, at the paths in
:mod:`girml.stages.contract`); the verb adds the argument parsing, the stage's lock and the
one-line errors with their exit codes.
"""

from __future__ import annotations

import logging
import sys
import traceback
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from types import TracebackType
from typing import Annotated, Any, NoReturn, TypeVar

import typer

from girml.config import (
    RESTORE_MAX_FILE_BYTES,
    RESTORE_MAX_PIXELS,
    RESTORE_OVERLAP,
    RESTORE_TILE,
    ConfigError,
    load_section,
    profile_text,
)
from girml.imageio import write_text
from girml.paths import (
    BENCH_DIR,
    CLEAN_DIR,
    METRICS_DIR,
    MODEL_DIR,
    PAIRS_DIR,
    RELEASE_DIR,
    TRAIN_METRICS,
)
from girml.process import StageBusy
from girml.stages.contract import StageFailed
from girml.urls import MaskingFilter, mask_text

app = typer.Typer(
    name="girml",
    help="General Image Restoration pipeline: collect, synthesize, validate, train, evaluate.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

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
    """:func:`fail` with :func:`girml.errors.describe_error`'s line and exit code.

    Re-raises ``exc`` (a traceback, URLs masked) when it is of no known family or a CLI exit
    (``typer.Exit``, click's exceptions). With ``GIRML_DEBUG=1`` a known failure prints its
    traceback (masked) before the line, and keeps its exit code.
    """
    import os

    import click

    from girml.errors import describe_error

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
    (``GIRML_ARTIFACT_ROOT``) answer; :class:`girml.errors.ServiceUnreachable` otherwise.

    Put it under :func:`stage`, which turns that error into one line and exit code 69.
    """

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        import os

        from girml.errors import probe_mlflow, probe_s3

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
            fail(str(exc).strip("'\""), 1)
        except Exception as exc:  # services down, wrong credentials, unwritable outputs
            fail_known(exc)

    return wrapper  # type: ignore[return-value]


def locked(name: str) -> Callable[[F], F]:
    """Run the verb holding the folder's lock for stage ``name``, with SIGTERM unwinding it.

    A second run of the stage in the same folder fails at once naming the holder's PID (or
    waits, with ``--wait``); SIGTERM/SIGHUP raise :class:`girml.process.Terminated`, so open
    MLflow runs end KILLED and staging folders are removed. Under ``accelerate launch`` each
    rank takes its own lock.
    """

    def decorate(func: F) -> F:
        @wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            import os

            from girml.process import sigterm_raises, stage_lock

            rank = os.environ.get("RANK", "0")
            lock_file = LOCK_DIR / (f"{name}.lock" if rank == "0" else f"{name}.rank{rank}.lock")
            with sigterm_raises(), stage_lock(lock_file, name, wait=bool(kwargs.get("wait"))):
                return func(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorate


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


@app.command()
@stage
def collect(params: ParamsOpt = Path("params.yaml")) -> None:
    """Gather clean photos into data/clean/ (images, manifest.csv, rejected.csv)."""
    from girml.stages import collect as this

    this.run(params, typer.echo)


@app.command()
@stage
@locked("synthesize")
def synthesize(params: ParamsOpt = Path("params.yaml"), wait: WaitOpt = False) -> None:
    """Degrade clean photos into data/pairs/{train,val} and data/bench/<suite>/<family>."""
    from girml.stages import synthesize as this

    this.run(params, typer.echo)


@app.command()
@stage
def validate(params: ParamsOpt = Path("params.yaml")) -> None:
    """Great Expectations checks over manifests, pairs and recipes; non-zero exit on failure."""
    from girml.stages import validate as this

    this.run(params, typer.echo)


@app.command()
@stage
@uses_mlflow
@locked("train")
def train(params: ParamsOpt = Path("params.yaml"), wait: WaitOpt = False) -> None:
    """Train the unified model (accelerate); track in MLflow; register a gir-restorer version.

    Writes models/latest/ and metrics/train.json. Checkpoints go to checkpoints/train/: a run
    that was killed resumes from the last one when started again with the same config and
    number of processes. Under ``torchrun`` or ``accelerate launch`` the ranks train as one
    process group; rank 0 alone tracks, registers and writes.
    """
    from girml.stages import train as this

    this.run(params, typer.echo)


@app.command()
@stage
@uses_mlflow
@locked("tune")
def tune(params: ParamsOpt = Path("params.yaml"), wait: WaitOpt = False) -> None:
    """Ray Tune search over params.yaml: tune.space; writes tune/best.yaml and trials.csv.

    An interrupted search resumes (Tuner.restore) when started again with the same settings.
    `RAY_ADDRESS` (or tune.address) joins an existing Ray cluster.
    """
    from girml.stages import tune as this

    this.run(params, typer.echo)


@app.command()
@stage
@uses_mlflow
def evaluate(params: ParamsOpt = Path("params.yaml")) -> None:
    """Benchmark models/latest, the baselines and @champion on every suite; decide the champion.

    Writes metrics/eval.json, metrics/per_family.csv, metrics/per_image.csv and plots/.
    """
    from girml.stages import evaluate as this

    this.run(params, typer.echo)


@app.command()
@stage
@uses_mlflow
def interpret(
    params: ParamsOpt = Path("params.yaml"),
    model: Annotated[
        str | None,
        typer.Option(
            help="interpret this model instead (a folder, release or models:/ URI: any "
            "approach of the study); its report goes to --out"
        ),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(help="with --model: report folder (default reports/interpretation-<name>)"),
    ] = None,
) -> None:
    """What the model learned: features (t-SNE, CH index), LAM, sensitivity, visual crops.

    Writes reports/interpretation/ (self-contained index.html, figures/, interpretation.json)
    and logs it to the model's MLflow run.
    """
    from girml.stages import interpret as this

    if out is not None and model is None:
        fail("--out goes with --model (the stage's own report is reports/interpretation/)", 2)
    this.run(params, typer.echo, model=model, out=out)


@app.command()
@stage
def restore(
    inputs: Annotated[list[Path], typer.Argument(help="image files or folders (recursive)")],
    out: Annotated[Path, typer.Option("--out", "-o", help="output folder for the PNGs")],
    model: Annotated[
        str | None,
        typer.Option(
            help="model folder, release folder, models:/name@alias or models:/name/version; "
            "default: models:/gir-restorer@champion if registered, else models/latest, else "
            "the shipped models/release"
        ),
    ] = None,
    tile: Annotated[
        int, typer.Option(help="tile side for bounded memory; 0 = whole image")
    ] = RESTORE_TILE,
    overlap: Annotated[int, typer.Option(help="tile overlap, pixels")] = RESTORE_OVERLAP,
    device: Annotated[str | None, typer.Option(help="cpu, cuda, cuda:1 ...; default: auto")] = None,
    batch_tiles: Annotated[
        int,
        typer.Option(min=1, help="tiles per forward pass (more help on GPUs; 1 is fastest on CPU)"),
    ] = 1,
    self_ensemble: Annotated[
        int,
        typer.Option(
            help="average 1, 2, 4 or 8 flips/transposes per image (8: the quality evaluate "
            "reports with evaluate.self_ensemble 8, at 8x the time)"
        ),
    ] = 1,
    max_pixels: Annotated[
        int, typer.Option(min=1, help="larger images fail (from their header, before decoding)")
    ] = RESTORE_MAX_PIXELS,
    max_file_bytes: Annotated[
        int, typer.Option(min=1, help="larger files fail (from their size, before reading)")
    ] = RESTORE_MAX_FILE_BYTES,
) -> None:
    """Restore photos of any size (tiled) into OUT as same-size PNGs named after the inputs.

    A file that fails (unreadable, over a cap, a link loop, a name too long) is named with its
    reason at the end and the others are restored; the exit code is then 1.
    """
    from girml.ensemble import SELF_ENSEMBLE_SIZES, with_self_ensemble
    from girml.models.store import choose_default_model, load_model
    from girml.restore import pick_device, restore_files

    if self_ensemble not in SELF_ENSEMBLE_SIZES:
        fail(f"--self-ensemble must be one of {SELF_ENSEMBLE_SIZES}, got {self_ensemble}", 2)
    try:
        dev = pick_device(device)
    except ValueError as exc:
        fail(f"--device {exc}", 2)

    try:
        if model is None:
            choice = choose_default_model()
            uri, which = choice.uri, choice.describe()
        else:
            uri = which = model
        net = load_model(uri)
    except (FileNotFoundError, ValueError) as exc:
        fail(str(exc), 2)
    net = with_self_ensemble(net, self_ensemble)
    views = f", self-ensemble x{self_ensemble}" if self_ensemble > 1 else ""
    typer.echo(f"model: {which} on {dev}{views}", err=True)
    caps = {"max_pixels": max_pixels, "max_bytes": max_file_bytes}
    report = restore_files(list(inputs), out, net, tile or None, overlap, dev, batch_tiles, **caps)
    errors, count = report.summary(list(inputs), out)
    for line in errors:
        typer.secho(f"error: {mask_text(line)}", fg=typer.colors.RED, err=True)
    if count is not None:
        typer.echo(count)
    if errors:
        raise typer.Exit(1)


@app.command()
@stage
def study(
    params: ParamsOpt = Path("params.yaml"),
    no_mlflow: Annotated[bool, typer.Option("--no-mlflow", help="do not log to MLflow")] = False,
) -> None:
    """Leaderboard of every evaluated method: gain per suite with 95% bootstrap intervals,
    paired differences against study.reference, harm. Writes metrics/study.json,
    plots/study.csv and reports/study/index.html; logs an MLflow run per method."""
    from girml.stages import study as this

    this.run(params, typer.echo, log_mlflow=not no_mlflow)


ApproachArg = Annotated[str, typer.Argument(help="an approach named in study.approaches")]


@app.command()
@stage
@locked("approach")
def approach(
    name: ApproachArg, params: ParamsOpt = Path("params.yaml"), wait: WaitOpt = False
) -> None:
    """Train one approach of the study (study.approaches.NAME) at the train section's compute.

    Writes models/approaches/NAME/ (approach.json beside the weights); checkpoints go to
    checkpoints/approaches/NAME/. DVC stage approach@NAME.
    """
    from girml.stages import approach as this

    this.run(params, name, typer.echo)


@app.command("approach-eval")
@stage
def approach_eval(name: ApproachArg, params: ParamsOpt = Path("params.yaml")) -> None:
    """Score one approach of the study on every benchmark image, as evaluate scores its methods.

    Writes metrics/approaches/NAME/per_image.csv and cost.json (seconds per megapixel,
    parameters). DVC stage approach-eval@NAME.
    """
    from girml.stages import approach_eval as this

    this.run(params, name, typer.echo)


@app.command()
@stage
@uses_mlflow
def release(
    model: Annotated[
        str | None,
        typer.Option(
            help="models:/gir-restorer@champion (default), models:/gir-restorer/<version> or a "
            "model folder written by `girml train`"
        ),
    ] = None,
    out: Annotated[Path, typer.Option("--out", "-o", help="release folder")] = RELEASE_DIR,
    fp16: Annotated[
        bool,
        typer.Option(
            help="store float16 weights; refused unless no benchmark suite's mean PSNR-Y "
            "changes by more than 0.01 dB (needs data/bench)"
        ),
    ] = False,
    real_photos: Annotated[
        Path | None,
        typer.Option(
            help="JSON of `python benchmarks/real_photos.py --model <out> --json FILE` run on "
            "a previous release of the same model: adds its scores on real photos to the "
            "card; refused unless it scored these very weights (same sha256)"
        ),
    ] = None,
    params: ParamsOpt = Path("params.yaml"),
) -> None:
    """Export a model as safetensors + config.yaml + MODEL_CARD.md (at most 8 MiB, for git).

    The card's metrics come from metrics/eval.json and metrics/per_family.csv, which must
    describe this model's registered version; loading a release never unpickles anything.
    """
    from girml.models.release import make_release, read_real_photos

    real = read_real_photos(real_photos) if real_photos is not None else None
    root = Path.cwd()
    model = model if model is not None else _champion_uri(root)
    inputs = _release_inputs(params)
    command = f"girml release --model {model} -o {out}" + (" --fp16" if fp16 else "")
    command += f" --real-photos {real_photos}" if real_photos is not None else ""
    result, provenance, metrics = make_release(
        str(model), out, inputs, root, fp16=fp16, real_photos=real, command=command
    )
    version = provenance.registered_version
    typer.echo(
        f"released {model}"
        + (f" (version {version})" if version is not None else "")
        + f" into {result.out_dir}: {result.dtype} weights, {result.bytes / 2**20:.2f} MiB, "
        f"card metrics from method {metrics.method!r} of {inputs.per_family_csv}"
    )


def _champion_uri(root: Path) -> str:
    """``models:/gir-restorer@champion``; exit 2 naming the alternatives when there is none."""
    from girml.tracking.mlflow import CHAMPION, REGISTERED_MODEL, alias_uri, tracking_uri

    uri = alias_uri(root)
    if uri is None:
        fail(
            f"no {REGISTERED_MODEL}@{CHAMPION} in the MLflow registry ({tracking_uri(root)}): "
            f"pass --model {MODEL_DIR} or --model models:/{REGISTERED_MODEL}/<version>",
            2,
        )
    return uri


def _release_inputs(params: Path) -> Any:
    """The project files a release reads (the stage outputs) and the params it needs."""
    from girml.models.release import ReleaseInputs

    spec = load_section(params, "degradations")
    evaluate_cfg = load_section(params, "evaluate")
    return ReleaseInputs(
        eval_json=METRICS_DIR / "eval.json",
        per_family_csv=METRICS_DIR / "per_family.csv",
        manifest=CLEAN_DIR / "manifest.csv",
        pairs_jsonl=PAIRS_DIR / "train" / "pairs.jsonl",
        bench_dir=BENCH_DIR,
        dvc_lock=Path("dvc.lock"),
        spec=spec,
        spec_source=f"{params}: degradations",
        unseen_content_category=load_section(params, "synthesize").unseen_content_category,
        crop_border=evaluate_cfg.crop_border,
        tile=evaluate_cfg.tile,
        train_metrics=TRAIN_METRICS,
    )


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
    """Switch profile: lay a partial params file over the base and write the result.

    The base's comments and key order are kept (the same overlay as the flow's overrides,
    :func:`girml.config.overlay_params`); the profile's values replace the base's.
    """
    text, _ = profile_text(base, profile_path)
    write_text(out, text)
    typer.echo(f"wrote {out} ({base} + {profile_path})")
