"""The user's tools beside the stages: ``girml restore`` (photos of any size through a
model), ``girml release`` (export a model for git, with its card) and ``girml profile`` (switch
the params file to a profile). :mod:`girml.cli` registers them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from girml.cli_common import ParamsOpt, fail, stage, uses_mlflow
from girml.config import (
    RESTORE_MAX_FILE_BYTES,
    RESTORE_MAX_PIXELS,
    RESTORE_OVERLAP,
    RESTORE_TILE,
    load_section,
    profile_text,
)
from girml.core.imageio import write_text
from girml.core.paths import (
    BENCH_DIR,
    CLEAN_DIR,
    METRICS_DIR,
    MODEL_DIR,
    PAIRS_DIR,
    RELEASE_DIR,
    TRAIN_METRICS,
)
from girml.core.urls import mask_text


@stage
def restore(
    inputs: Annotated[list[Path], typer.Argument(help="image files or folders (recursive)")],
    out: Annotated[Path, typer.Option("--out", "-o", help="output folder for the PNGs")],
    model: Annotated[
        str | None,
        typer.Option(
            help="model folder, release folder, models:/name@alias, models:/name/version or "
            "an .onnx file (girml export); default: models:/gir-restorer@champion if "
            "registered, else models/latest, else the shipped models/release"
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
    json_path: Annotated[
        Path | None,
        typer.Option(
            "--json",
            help="also write a JSON summary here: per image the input, output, model, seconds "
            "and status (ok/error and why), then the totals; written even when some fail",
        ),
    ] = None,
) -> None:
    """Restore photos of any size (tiled) into OUT as same-size PNGs named after the inputs.

    OUT mirrors the inputs: files found in a folder keep their path relative to it (under a
    sub-folder named after each folder when several are given); files named directly go to
    OUT itself. Two inputs that would share an output are an error before any work. Inputs are
    checked before the model loads; a file that fails (missing, unreadable, over a cap, a link
    loop, a name too long) is named once with its reason at the end and the others are
    restored; the exit code is then 1. A progress bar shows on stderr when it is a terminal.
    """
    import sys

    from girml.artifacts.loading import load_model
    from girml.artifacts.onnx_runtime import is_onnx_file
    from girml.core.ensemble import SELF_ENSEMBLE_SIZES, with_self_ensemble
    from girml.restore import RestoreReport, pick_device, restore_plan, write_summary
    from girml.restore_inputs import plan_restore
    from girml.restore_model import resolve_restore_model

    if self_ensemble not in SELF_ENSEMBLE_SIZES:
        fail(f"--self-ensemble must be one of {SELF_ENSEMBLE_SIZES}, got {self_ensemble}", 2)
    if model is not None and is_onnx_file(model):  # onnxruntime's CPU provider runs it
        if device not in (None, "cpu"):
            fail(f"--device {device}: an ONNX model runs on the CPU; leave --device out", 2)
        device = "cpu"
    try:
        dev = pick_device(device)
    except ValueError as exc:
        fail(f"--device {exc}", 2)
    if json_path is not None and json_path.is_dir():
        fail(f"--json {json_path} is a folder; name the JSON file to write", 2)

    try:
        chosen = resolve_restore_model(model)
    except (FileNotFoundError, ValueError) as exc:
        fail(str(exc), 2)
    views = f", self-ensemble x{self_ensemble}" if self_ensemble > 1 else ""
    typer.echo(f"model: {chosen.description} on {dev}{views}", err=True)
    plan = plan_restore(list(inputs), out, max_file_bytes)  # before the model loads
    if plan.jobs:
        try:
            net = load_model(chosen.load, name=chosen.requested)
        except (FileNotFoundError, ValueError) as exc:
            fail(str(exc), 2)
        net = with_self_ensemble(net, self_ensemble)
        caps = {"max_pixels": max_pixels, "max_bytes": max_file_bytes}
        bar = sys.stderr.isatty()
        report = restore_plan(
            plan, net, tile or None, overlap, dev, batch_tiles, **caps, progress=bar
        )
    else:  # nothing to restore: the model is not loaded
        report = RestoreReport.refused(plan)
    if json_path is not None:
        write_summary(json_path, report, chosen.as_json(), dev, out)
    if report.stopped is not None:
        raise report.stopped
    errors, count = report.summary(list(inputs), out)
    for line in errors:
        typer.secho(f"error: {mask_text(line)}", fg=typer.colors.RED, err=True)
    if count is not None:
        typer.echo(count)
    if errors:
        raise typer.Exit(1)


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
    profile: Annotated[
        Path | None,
        typer.Option(
            help="the profile the model was trained with (`girml profile FILE`, e.g. "
            "profiles/long.yaml), a file in the project, or files joined by + in the order "
            "applied: the card's reproduction commands name them; default: the training "
            "run's `profile` tag, else params.yaml as committed"
        ),
    ] = None,
    params: ParamsOpt = Path("params.yaml"),
) -> None:
    """Export a model as safetensors + config.yaml + MODEL_CARD.md (at most 8 MiB, for git).

    The card's metrics come from metrics/eval.json and metrics/per_family.csv, which must
    describe this model's registered version; loading a release never unpickles anything.
    Paths of this machine are recorded relative to the project, or as path/to/<name>.
    """
    from girml.artifacts.make_release import make_release, profile_name, release_command
    from girml.artifacts.real_photos import read_real_photos

    real = read_real_photos(real_photos) if real_photos is not None else None
    root = Path.cwd()
    try:
        trained_with = profile_name(profile, root) if profile is not None else None
    except (FileNotFoundError, ValueError) as exc:
        fail(str(exc), 2)
    model = model if model is not None else _champion_uri(root)
    inputs = _release_inputs(params)
    command = release_command(
        model, out, root, fp16=fp16, real_photos=real_photos, profile=trained_with
    )
    result, provenance, metrics = make_release(
        str(model),
        out,
        inputs,
        root,
        fp16=fp16,
        real_photos=real,
        command=command,
        profile=trained_with,
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
    from girml.tracking.store import tracking_uri
    from girml.tracking.versions import CHAMPION, REGISTERED_MODEL, alias_uri

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
    from girml.artifacts.make_release import ReleaseInputs

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
