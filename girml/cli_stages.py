"""The verbs that run the DVC stages: ``girml collect``, ``synthesize``, ``validate``,
``train``, ``tune``, ``specialists``, ``evaluate``, ``interpret``, ``study``, ``approach``,
``approach-eval``, ``testset`` and ``protocols``.

Each verb runs its module in :mod:`girml.stages` (which reads the stage's params keys, calls the
library and writes the outputs ``dvc.yaml`` declares, at the paths in
:mod:`girml.stages.contract`); the verb adds the argument parsing, the stage's lock and the
one-line errors with their exit codes (:mod:`girml.cli_common`). :mod:`girml.cli` registers them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from girml.cli_common import ParamsOpt, WaitOpt, fail, locked, stage, uses_mlflow


@stage
def collect(params: ParamsOpt = Path("params.yaml")) -> None:
    """Gather clean photos into data/clean/ (images, manifest.csv, rejected.csv)."""
    from girml.stages import collect as this

    this.run(params, typer.echo)


@stage
@locked("synthesize")
def synthesize(params: ParamsOpt = Path("params.yaml"), wait: WaitOpt = False) -> None:
    """Degrade clean photos into data/pairs/{train,val} and data/bench/<suite>/<family>."""
    from girml.stages import synthesize as this

    this.run(params, typer.echo)


@stage
def validate(params: ParamsOpt = Path("params.yaml")) -> None:
    """Great Expectations checks over manifests, pairs and recipes; non-zero exit on failure."""
    from girml.stages import validate as this

    this.run(params, typer.echo)


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


@stage
def specialists(params: ParamsOpt = Path("params.yaml")) -> None:
    """Train one-family specialists of models/latest for evaluate (when evaluate.specialists).

    Writes models/specialists/ (a model folder per family and specialists.json; the list alone,
    empty, when evaluate.specialists is off). Checkpoints go to checkpoints/specialists/.
    """
    from girml.stages import specialists as this

    this.run(params, typer.echo)


@stage
@uses_mlflow
def evaluate(params: ParamsOpt = Path("params.yaml")) -> None:
    """Benchmark models/latest, the baselines and @champion on every suite; decide the champion.

    Writes metrics/eval.json, metrics/per_family.csv, metrics/per_image.csv, plots/ and
    metrics/method_costs.json (each method's restoring time and parameter count).
    """
    from girml.stages import evaluate as this

    this.run(params, typer.echo)


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


@stage
def approach_eval(name: ApproachArg, params: ParamsOpt = Path("params.yaml")) -> None:
    """Score one approach of the study on every benchmark image, as evaluate scores its methods.

    Writes metrics/approaches/NAME/per_image.csv and cost.json (seconds per megapixel,
    parameters). DVC stage approach-eval@NAME.
    """
    from girml.stages import approach_eval as this

    this.run(params, name, typer.echo)


@stage
def testset(
    name: Annotated[str, typer.Argument(help="a test set named in protocols.sets")],
    params: ParamsOpt = Path("params.yaml"),
) -> None:
    """Fetch one test set (protocols.sets.NAME) through its source, in its usual layout.

    Writes data/protocols/NAME/ ({lq,gt}/<id>.png and set.json). DVC stage testset@NAME.
    """
    from girml.stages import testset as this

    this.run(params, name, typer.echo)


@stage
def protocols(
    name: Annotated[str, typer.Argument(help="a protocol: built in or in protocols.custom")],
    params: ParamsOpt = Path("params.yaml"),
) -> None:
    """Score the model, the degraded input and evaluate.methods on one protocol (allinone-3 ...)
    by the metric convention of the paper that defined it.

    Writes metrics/protocols/NAME.json. DVC stage protocols@NAME (docs/protocols.md).
    """
    from girml.stages import protocols as this

    this.run(params, name, typer.echo)
