"""The ``girml`` command line: one verb per DVC stage plus user tools.

Each stage verb reads its ``params.yaml`` section, calls one library function and writes the
outputs that ``dvc.yaml`` declares, relative to the working directory. This module is the only
place that knows those paths.
"""

from __future__ import annotations

import json
import logging
import sys
import traceback
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from types import TracebackType
from typing import Annotated, Any, TypeVar

import typer

from girml.config import ConfigError, load_section, profile_text, read_params
from girml.imageio import write_text
from girml.process import StageBusy
from girml.urls import MaskingFilter, mask_text

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
MODEL_DIR = Path("models/latest")
CHECKPOINT_DIR = Path("checkpoints/train")
METRICS_DIR = Path("metrics")
TRAIN_METRICS = METRICS_DIR / "train.json"
PLOTS_DIR = Path("plots")
SPECIALIST_DIR = Path("checkpoints/specialists")
TUNE_DIR = Path("checkpoints/tune")
INTERPRET_DIR = Path("reports/interpretation")
TUNED_PARAMS = Path("tune/best.yaml")
RELEASE_DIR = Path("models/release")
TRIALS_CSV = Path("reports/tune/trials.csv")
EXPERIMENT = "gir"
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


# The params keys each stage verb reads, exactly as dvc.yaml's `params:` lists them for its stage
# (tests/test_cli.py compares the two): a whole section, or "section.key". Stage verbs read
# params.yaml only through StageParams, which refuses anything not listed here, so a stage never
# depends on a value that DVC does not know it depends on.
STAGE_PARAMS: dict[str, tuple[str, ...]] = {
    "collect": ("collect",),
    "synthesize": ("degradations", "synthesize"),
    "validate": (
        "collect.min_size",
        "degradations",
        "synthesize.unseen_content_category",
        "validate",
    ),
    "tune": ("degradations", "model", "train", "tune"),
    "train": ("degradations", "model", "train"),
    "evaluate": ("degradations", "evaluate"),
    "interpret": ("degradations", "interpret"),
}


class StageParams:
    """The params of one stage verb: the sections and keys of :data:`STAGE_PARAMS` for it.

    Raises:
        KeyError: (a bug) on a section or key the stage does not declare.
    """

    def __init__(self, path: Path, stage: str) -> None:
        self.path = path
        self.stage = stage
        self.declared = STAGE_PARAMS[stage]

    def _check(self, name: str) -> None:
        section = name.split(".", 1)[0]
        if name not in self.declared and section not in self.declared:
            raise KeyError(
                f"stage {self.stage} reads {name}, which STAGE_PARAMS and dvc.yaml do not "
                "declare for it"
            )

    def section(self, name: str) -> Any:
        """A whole section, parsed and validated (``load_section``)."""
        self._check(name)
        return load_section(self.path, name)

    def value(self, dotted: str) -> Any:
        """One key of a section: ``"collect.min_size"``."""
        self._check(dotted)
        section, key = dotted.split(".", 1)
        return getattr(load_section(self.path, section), key)

    def raw(self, name: str) -> dict[str, Any]:
        """A whole section as written in the file (for overlays such as tuned overrides)."""
        self._check(name)
        return dict(read_params(self.path).get(name) or {})


def fail(message: str, code: int) -> None:
    typer.secho(f"error: {mask_text(message)}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code)


def fail_known(exc: Exception) -> None:
    """:func:`fail` with :func:`girml.errors.describe_error`'s line and exit code.

    Re-raises ``exc`` (a traceback, URLs masked) when it is of no known family, a CLI exit
    (``typer.Exit``, click's exceptions), or when ``GIRML_DEBUG=1`` asks for tracebacks.
    """
    import os

    import click

    from girml.errors import describe_error

    exits = (typer.Exit, typer.Abort, click.exceptions.Exit, click.ClickException, click.Abort)
    described = None if isinstance(exc, exits) else describe_error(exc)
    if described is None or os.environ.get(DEBUG_ENV, "") not in ("", "0"):
        raise exc
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
    from girml.data.collect import collect as run_collect
    from girml.data.collect import nothing_collected

    cfg = StageParams(params, "collect").section("collect")
    result = run_collect(cfg, CLEAN_DIR)
    if result.n_images == 0:
        fail(nothing_collected(CLEAN_DIR / "rejected.csv"), 1)
    typer.echo(
        f"collected {result.n_images} images ({result.n_rejected} rejected, "
        f"{result.n_duplicates} duplicates) into {CLEAN_DIR}"
    )


@app.command()
@stage
@locked("synthesize")
def synthesize(params: ParamsOpt = Path("params.yaml"), wait: WaitOpt = False) -> None:
    """Degrade clean photos into data/pairs/{train,val} and data/bench/<suite>/<family>."""
    from girml.data.synthesize import read_manifest
    from girml.data.synthesize import synthesize as run_synthesize
    from girml.degradations import check_spec

    reads = StageParams(params, "synthesize")
    spec = reads.section("degradations")
    try:
        check_spec(spec)
    except ValueError as exc:
        raise ConfigError(f"{params}: invalid config\n  {exc}") from None
    cfg = reads.section("synthesize")
    images = read_manifest(CLEAN_DIR / "manifest.csv", CLEAN_DIR / "images")
    result = run_synthesize(images, spec, cfg, PAIRS_DIR, BENCH_DIR)
    for group, n in sorted(result.counts.items()):
        typer.echo(f"{group:40s} {n:6d}")


@app.command()
@stage
def validate(params: ParamsOpt = Path("params.yaml")) -> None:
    """Great Expectations checks over manifests, pairs and recipes; non-zero exit on failure."""
    from girml.data.validate import validate_data

    reads = StageParams(params, "validate")
    spec = reads.section("degradations")
    cfg = reads.section("validate")
    min_size = reads.value("collect.min_size")
    held_category = reads.value("synthesize.unseen_content_category")
    report = validate_data(
        CLEAN_DIR, PAIRS_DIR, BENCH_DIR, spec, cfg, min_size, held_category, VALIDATION_DIR
    )
    typer.echo(report.summary())
    typer.echo(f"result: {VALIDATION_DIR / 'result.json'}  docs: {report.docs_index}")
    if not report.success:
        raise typer.Exit(1)


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
    import os

    import numpy as np

    from girml.hashing import file_digest
    from girml.models import model_stats
    from girml.models.store import WEIGHTS_FILE, save_model_dir
    from girml.tracking import mlflow as tracking
    from girml.training import process_state
    from girml.training import train as run_train

    reads = StageParams(params, "train")
    model_cfg = reads.section("model")
    cfg = reads.section("train")
    if cfg.use_tuned and TUNED_PARAMS.is_file():
        from girml.tuning import tuned_configs

        model_cfg, cfg = tuned_configs(reads.raw("model"), reads.raw("train"), TUNED_PARAMS)
        typer.echo(f"using tuned model/train overrides from {TUNED_PARAMS}", err=True)
    spec = reads.section("degradations") if cfg.online_degradation_prob > 0 else None
    ranks = process_state()
    if ranks.num_processes > 1:  # torchrun starts ranks in sessions of their own: end with it
        from girml.process import end_with_parent

        end_with_parent(os.getppid())
    if not ranks.is_main_process:  # under a launcher: rank 0 tracks and saves
        run_train(model_cfg, cfg, PAIRS_DIR, CHECKPOINT_DIR, spec=spec)
        return
    root = Path.cwd()
    tags = {
        **tracking.provenance_tags(root, params),
        "stage": "train",
        "hardware": hardware(),
        "world_size": str(ranks.num_processes),
    }
    if cfg.init_from is not None:  # fine-tuned: the source is part of the provenance
        tags["init_from"] = cfg.init_from
    with tracking.start_run(EXPERIMENT, root, run_name="train", tags=tags) as run:
        tracking.log_params_flat({"model": model_cfg, "train": cfg})
        result = run_train(
            model_cfg,
            cfg,
            PAIRS_DIR,
            CHECKPOINT_DIR,
            spec=spec,
            on_log=tracking.log_metrics,
            on_validate=tracking.log_metrics,
        )
        stats = model_stats(result.model, 256, 256)
        per_family = {
            # MLflow metric names allow no "+": blur+noise -> blur_noise
            f"val.psnr_gain.{fam.replace('+', '_')}": v["psnr_y_model"] - v["psnr_y_input"]
            for fam, v in sorted(result.per_family.items())
        }
        final = {
            **result.metrics,
            **per_family,
            "params": stats["params"],
            "flops_256": stats["flops"],
        }
        tracking.log_metrics(int(result.metrics["steps"]), final)
        tracking.log_curves(result.history, "curves")
        example = np.random.default_rng(0).random((1, 3, 32, 32), dtype=np.float32)
        version = tracking.log_and_register_model(result.model, example)
        # only what config and data determine, so a rerun elsewhere gives the same bytes;
        # the run-specific record goes to metrics/train.json's "run" (store.training_run)
        save_model_dir(result.model, model_cfg, MODEL_DIR, extra={"train": cfg, "stats": stats})
    metrics: dict[str, Any] = {k: result.metrics[k] for k in TRAIN_METRIC_KEYS}
    metrics["run"] = {
        "weights_sha256": file_digest(MODEL_DIR / WEIGHTS_FILE),
        "mlflow_run_id": run.info.run_id,
        "registered_version": version,
        "hardware": tags["hardware"],
        "samples_per_second": result.metrics["samples_per_second"],
        "world_size": result.world_size,
        "rank_weights_sha256": result.rank_digests,
    }
    metrics["per_family"] = {
        fam: {
            "psnr_y_input": v["psnr_y_input"],
            "psnr_y_model": v["psnr_y_model"],
            "psnr_gain": v["psnr_y_model"] - v["psnr_y_input"],
            "n": v["n"],
        }
        for fam, v in sorted(result.per_family.items())
    }
    write_text(TRAIN_METRICS, json.dumps(metrics, indent=2) + "\n")
    typer.echo(
        f"val PSNR-Y {metrics['val.psnr_y_input']:.2f} -> {metrics['val.psnr_y_model']:.2f} dB "
        f"(gain {metrics['val.psnr_gain']:+.2f}) after {int(metrics['steps'])} steps, "
        f"{metrics['train_seconds']:.0f} s; registered gir-restorer version {version}"
    )


@app.command()
@stage
@uses_mlflow
@locked("tune")
def tune(params: ParamsOpt = Path("params.yaml"), wait: WaitOpt = False) -> None:
    """Ray Tune search over params.yaml: tune.space; writes tune/best.yaml and trials.csv.

    An interrupted search resumes (Tuner.restore) when started again with the same settings.
    `RAY_ADDRESS` (or tune.address) joins an existing Ray cluster.
    """
    from girml.tuning import write_best, write_trials_csv
    from girml.tuning.search import tune as run_tune

    reads = StageParams(params, "tune")
    cfg = reads.section("tune")
    model_cfg = reads.section("model")
    train_cfg = reads.section("train")
    spec = reads.section("degradations") if train_cfg.online_degradation_prob > 0 else None
    result = run_tune(
        cfg,
        model_cfg,
        train_cfg,
        PAIRS_DIR,
        TUNE_DIR,
        spec=spec,
        project_root=Path.cwd(),
        params_path=params,
    )
    write_best(result, TUNED_PARAMS)
    write_trials_csv(result, TRIALS_CSV)
    default = "n/a" if result.default_score is None else f"{result.default_score:.2f}"
    typer.echo(
        f"searched {result.configs_searched} configurations in {result.wall_seconds:.0f} s; "
        f"best val PSNR-Y {result.best_score:.2f} dB (untuned default {default}) -> {TUNED_PARAMS}"
    )


@app.command()
@stage
@uses_mlflow
def evaluate(params: ParamsOpt = Path("params.yaml")) -> None:
    """Benchmark models/latest, the baselines and @champion on every suite; decide the champion.

    Writes metrics/eval.json, metrics/per_family.csv, metrics/per_image.csv and plots/.
    """
    from girml.evaluation import SpecialistInputs, evaluate_and_promote

    reads = StageParams(params, "evaluate")
    cfg = reads.section("evaluate")
    specialists = None
    if cfg.specialists:
        spec = reads.section("degradations")
        specialists = SpecialistInputs(spec, PAIRS_DIR, SPECIALIST_DIR)
    result = evaluate_and_promote(
        MODEL_DIR,
        BENCH_DIR,
        CLEAN_DIR,
        cfg,
        METRICS_DIR,
        PLOTS_DIR,
        Path.cwd(),
        specialists,
        train_metrics=TRAIN_METRICS,
    )
    typer.echo(result.summary())


@app.command()
@stage
@uses_mlflow
def interpret(params: ParamsOpt = Path("params.yaml")) -> None:
    """What the model learned: features (t-SNE, CH index), LAM, sensitivity, visual crops.

    Writes reports/interpretation/ (self-contained index.html, figures/, interpretation.json)
    and logs it to the model's MLflow run.
    """
    from girml.evaluation.promotion import registered_model
    from girml.interpret import log_report, run_interpretation
    from girml.models.store import load_model

    reads = StageParams(params, "interpret")
    cfg = reads.section("interpret")
    spec = reads.section("degradations")
    run_interpretation(
        load_model(str(MODEL_DIR)),
        BENCH_DIR,
        spec,
        cfg,
        INTERPRET_DIR,
        eval_json=METRICS_DIR / "eval.json",
        per_family_csv=METRICS_DIR / "per_family.csv",
        clean_dir=CLEAN_DIR,
    )
    try:
        log_report(INTERPRET_DIR, registered_model(MODEL_DIR, TRAIN_METRICS).run_id, Path.cwd())
    except ValueError as exc:  # a model folder without MLflow provenance
        typer.echo(f"not logged to MLflow: {exc}", err=True)
    typer.echo(f"report: {INTERPRET_DIR / 'index.html'}")


def hardware() -> str:
    """What trains: the GPU's name, or the CPU's model and core count."""
    import os
    import platform

    import torch

    if torch.cuda.is_available():
        return f"{torch.cuda.get_device_name(0)} x{torch.cuda.device_count()}"
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            names = [
                line.split(":", 1)[1].strip() for line in info if line.startswith("model name")
            ]
        cpu = names[0] if names else cpu
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} cores (CPU)"


TRAIN_METRIC_KEYS = (
    "val.psnr_y_input",
    "val.psnr_y_model",
    "val.psnr_gain",
    "steps",
    "train_seconds",
)


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
    tile: Annotated[int, typer.Option(help="tile side for bounded memory; 0 = whole image")] = 256,
    overlap: Annotated[int, typer.Option(help="tile overlap, pixels")] = 32,
    device: Annotated[str | None, typer.Option(help="cpu, cuda, cuda:1 ...; default: auto")] = None,
    batch_tiles: Annotated[
        int,
        typer.Option(min=1, help="tiles per forward pass (more help on GPUs; 1 is fastest on CPU)"),
    ] = 1,
) -> None:
    """Restore photos of any size (tiled) into OUT as same-size PNGs named after the inputs."""
    import torch

    from girml.models.store import choose_default_model, load_model
    from girml.restore import restore_files

    try:
        if model is None:
            choice = choose_default_model()
            uri, which = choice.uri, choice.describe()
        else:
            uri = which = model
        net = load_model(uri)
    except (FileNotFoundError, ValueError) as exc:
        fail(str(exc), 2)
    dev = device or ("cuda" if torch.cuda.is_available() else "cpu")
    typer.echo(f"model: {which} on {dev}", err=True)
    report = restore_files(
        list(inputs), out, net, tile or None, overlap, device=dev, batch_tiles=batch_tiles
    )
    if not report.restored and not report.failed:
        from girml.imageio import IMAGE_SUFFIXES

        names = ", ".join(str(path) for path in inputs)
        fail(f"nothing restored: no image file ({' '.join(sorted(IMAGE_SUFFIXES))}) in {names}", 1)
    for path, reason in report.failed:
        typer.secho(f"error: {path}: {reason}", fg=typer.colors.RED, err=True)
    typer.echo(f"restored {len(report.restored)} image(s) into {out}, {len(report.failed)} failed")
    if report.failed:
        raise typer.Exit(1)


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
    from girml.models.release import ReleaseInputs, make_release, read_real_photos

    real = read_real_photos(real_photos) if real_photos is not None else None
    root = Path.cwd()
    if model is None:
        from girml.tracking.mlflow import CHAMPION, REGISTERED_MODEL, alias_uri, tracking_uri

        model = alias_uri(root)
        if model is None:
            fail(
                f"no {REGISTERED_MODEL}@{CHAMPION} in the MLflow registry ({tracking_uri(root)}): "
                f"pass --model {MODEL_DIR} or --model models:/{REGISTERED_MODEL}/<version>",
                2,
            )
    spec = load_section(params, "degradations")
    evaluate_cfg = load_section(params, "evaluate")
    inputs = ReleaseInputs(
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
