"""Outside restorers (``evaluate.methods``) scored by the harness on a tiny synthesized bench.

Real parts: command-line tools this test writes and runs as programs, a model registered in a
temporary SQLite MLflow store, Python modules written into ``tmp_path`` and imported. The bench,
NIQE and store fixtures are in conftest.py; models are registered as tests/evaluation/common.py
does.
"""

from __future__ import annotations

import json
import logging
import re
import shlex
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy.ndimage import median_filter
from typer.testing import CliRunner

from girml.artifacts.loading import load_model
from girml.artifacts.promotion import evaluate_and_promote
from girml.config import ConfigError, EvaluateConfig, MethodSpec, parse_section
from girml.core.errors import EX_BAD_INPUT
from girml.evaluation.bench import Bench
from girml.evaluation.harness import evaluate_method
from girml.evaluation.methods import (
    MethodError,
    evaluate_outside,
    input_name,
    load_methods,
)
from girml.evaluation.restorers import model_restorer
from girml.metrics import NiqeModel
from girml.tracking.versions import REGISTERED_MODEL, set_alias
from pipelines.cli import app
from tests.evaluation.common import TRAIN_JSON, read_csv, register, tiny_model
from tests.factories import tiny_params, write_params

CFG = EvaluateConfig(niqe_patch_size=16, baselines=["identity"])
SCORES = ("psnr", "ssim", "psnr_y", "ssim_y", "psnr_y_input", "ssim_y_input", "niqe")

# A folder-restoring program: reads {in}/*.png, writes {out}/<same name>.
TOOL = """\
import argparse
import sys
from pathlib import Path

import numpy as np
from PIL import Image
from scipy.ndimage import median_filter

parser = argparse.ArgumentParser()
parser.add_argument("--in", dest="src", required=True)
parser.add_argument("--out", dest="dst", required=True)
parser.add_argument("--mode", choices=["identity", "median", "crash"], default="median")
parser.add_argument("--skip", default="", help="write nothing for this file")
parser.add_argument("--shrink", default="", help="write this file at half size")
args = parser.parse_args()
if args.mode == "crash":
    print("loading weights ...", file=sys.stderr)
    print("FileNotFoundError: weights/restorer.pth", file=sys.stderr)
    sys.exit(1)
for path in sorted(Path(args.src).glob("*.png")):
    image = np.asarray(Image.open(path).convert("RGB"))
    if args.mode == "median":
        image = median_filter(image, size=(3, 3, 1))
    if path.name == args.skip:
        continue
    if path.name == args.shrink:
        image = image[::2, ::2]
    Image.fromarray(image).save(Path(args.dst) / path.name)
"""


def median(lq: np.ndarray) -> np.ndarray:
    return median_filter(lq, size=(3, 3, 1))


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def tool(tmp_path_factory: pytest.TempPathFactory) -> str:
    """``python <tool.py>``, the start of every command (quoted for shlex)."""
    script = tmp_path_factory.mktemp("tool") / "restore_folder.py"
    script.write_text(TOOL, encoding="utf-8")
    return shlex.join([sys.executable, str(script)])


def spec(**fields: object) -> MethodSpec:
    return MethodSpec.model_validate(fields)


def outside(
    method: MethodSpec, bench: Bench, pristine: NiqeModel, root: Path, cfg: EvaluateConfig = CFG
):
    """Load ``method`` and score it on ``bench``."""
    restorer = load_methods([method], cfg.tile, root, load_model)[method.name]
    return evaluate_outside(method.name, restorer, method.batch, bench, cfg, pristine, None)


def scores(rows: list[dict]) -> list[tuple]:
    return [(r["suite"], r["family"], r["id"], *(r[k] for k in SCORES)) for r in rows]


def write_module(root: Path, name: str, code: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """Write ``root/<name>.py`` and make it importable for this test; returns ``name``."""
    (root / f"{name}.py").write_text(code, encoding="utf-8")
    monkeypatch.syspath_prepend(str(root))
    return name


# --------------------------------------------------------------------------- config


M0 = "evaluate.methods[0]"


@pytest.mark.parametrize(
    ("methods", "key", "message"),
    [
        ([{"name": "x"}], M0, "exactly one of command, mlflow, python; got none"),
        (
            [{"name": "x", "command": "t {in} {out}", "python": "m:f"}],
            M0,
            r"exactly one of command, mlflow, python; got \['command', 'python'\]",
        ),
        ([{"name": "x", "command": "tool --in {in}"}], M0, "lacks {out}"),
        ([{"name": "x", "command": "tool"}], M0, "lacks {in} and {out}"),
        ([{"name": "x", "python": "mod"}], M0, "python must be 'package.module:function'"),
        ([{"name": "x", "mlflow": "m", "kind": "module_factory"}], M0, r"kind \(only with py"),
        ([{"name": "x", "python": "m:f", "timeout_s": 5}], M0, r"timeout_s \(only with command"),
        ([{"name": "x", "mlflow": "m", "batch": "all"}], M0, r"batch \(only with command"),
        (
            [{"name": "x", "command": "t {in} {out}", "timeout_s": 0}],
            f"{M0}.timeout_s",
            "greater than 0",
        ),
        ([{"name": "a.b", "python": "m:f"}], f"{M0}.name", "should match pattern"),
        ([{"name": "x", "python": "m:f", "shell": True}], f"{M0}.shell", "Extra inputs"),
        (
            [{"name": "x", "python": "m:f"}, {"name": "x", "mlflow": "models:/m@a"}],
            "evaluate",
            r"method name 'x' is taken \(another method\)",
        ),
        ([{"name": "identity", "python": "m:f"}], "evaluate", r"'identity' is taken \(a baseline"),
        ([{"name": "model", "python": "m:f"}], "evaluate", r"'model' is taken \(reserved\)"),
        ([{"name": "champion", "python": "m:f"}], "evaluate", r"'champion' is taken"),
    ],
)
def test_bad_method_configs_are_errors_naming_the_key(
    methods: list, key: str, message: str
) -> None:
    raw = {"baselines": ["identity"], "methods": methods}
    with pytest.raises(ConfigError, match=message) as info:
        parse_section(raw, "evaluate", EvaluateConfig)
    assert f"\n  {key}: " in str(info.value)


def test_good_method_configs_parse() -> None:
    cfg = parse_section(
        {
            "methods": [
                {"name": "tool", "command": "tool --in {in} --out {out}", "batch": "all"},
                {"name": "reg", "mlflow": "models:/gir-restorer@champion"},
                {"name": "fn", "python": "pkg.mod:make", "kind": "module_factory"},
                # a name another config's baselines hold is free when this one's do not
                {"name": "nlm", "python": "pkg.mod:restore"},
            ],
            "baselines": ["identity"],
        },
        "evaluate",
        EvaluateConfig,
    )
    assert [m.name for m in cfg.methods] == ["tool", "reg", "fn", "nlm"]
    assert cfg.methods[0].timeout_s == 3600 and cfg.methods[1].batch == "family"
    assert cfg.methods[3].kind == "restorer"
    assert EvaluateConfig().methods == []


# --------------------------------------------------------------------------- command


def test_identity_tool_scores_the_input(
    tool: str, bench: Bench, pristine: NiqeModel, tmp_path: Path
) -> None:
    method = spec(name="copy", command=f"{tool} --mode identity --in {{in}} --out {{out}}")
    result = outside(method, bench, pristine, tmp_path)
    assert not result.failures and len(result.rows) == len(bench)
    assert {r["method"] for r in result.rows} == {"copy"}
    assert [(r["suite"], r["family"], r["id"]) for r in result.rows] == [
        (i.suite, i.family, i.id) for i in bench.items
    ]
    for row in result.rows:
        assert row["psnr_y"] == row["psnr_y_input"] and row["ssim_y"] == row["ssim_y_input"]


@pytest.mark.parametrize("batch", ["family", "all"])
def test_tool_scores_are_those_of_its_filter(
    tool: str, bench: Bench, pristine: NiqeModel, tmp_path: Path, batch: str
) -> None:
    method = spec(name="med", command=f"{tool} --in {{in}} --out {{out}}", batch=batch)
    result = outside(method, bench, pristine, tmp_path)
    in_process = evaluate_method(median, bench, CFG, pristine, None, method="med")
    assert scores(result.rows) == scores(in_process)
    assert any(r["psnr_y"] != r["psnr_y_input"] for r in result.rows)


def test_missing_and_wrong_size_outputs_are_reported_per_image(
    tool: str, bench: Bench, pristine: NiqeModel, tmp_path: Path
) -> None:
    skipped, shrunk = bench.items[2], bench.items[5]
    command = (
        f"{tool} --in {{in}} --out {{out}} --skip {input_name(2, skipped)} "
        f"--shrink {input_name(5, shrunk)}"
    )
    result = outside(spec(name="flaky", command=command, batch="all"), bench, pristine, tmp_path)
    assert len(result.rows) == len(bench) - 2
    first, second = result.failures
    assert first.describe().startswith(f"{skipped.suite}/{skipped.family}/{skipped.id}: ")
    assert first.message.startswith(f"ImageReadError: {{out}}/{input_name(2, skipped)}: ")
    assert (second.suite, second.family, second.id) == (shrunk.suite, shrunk.family, shrunk.id)
    assert "method 'flaky' returned (16, 16, 3)" in second.message
    # the other images are scored exactly as the filter scores them
    expected = [
        row
        for row in evaluate_method(median, bench, CFG, pristine, None, method="flaky")
        if (row["suite"], row["family"], row["id"])
        not in {(i.suite, i.family, i.id) for i in (skipped, shrunk)}
    ]
    assert scores(result.rows) == scores(expected)


def test_a_failing_command_names_the_method_and_its_stderr(
    tool: str, bench: Bench, pristine: NiqeModel, tmp_path: Path
) -> None:
    crash = spec(name="crash", command=f"{tool} --mode crash --in {{in}} --out {{out}}")
    with pytest.raises(MethodError, match=r"method 'crash': .* exited with 1; its last") as info:
        outside(crash, bench, pristine, tmp_path)
    assert str(info.value).endswith("stderr line: FileNotFoundError: weights/restorer.pth")
    assert "\n" not in str(info.value) and info.value.code == 1

    # a program whose child would hold the output pipes open for 60 s: both are ended
    python = shlex.quote(sys.executable)
    child = "import subprocess, sys, time; subprocess.Popen([sys.executable, '-c', "
    child += "'import time; time.sleep(60)']); time.sleep(60)"
    slow = spec(name="slow", command=f'{python} -c "{child}" {{in}} {{out}}', timeout_s=0.5)
    start = time.monotonic()
    with pytest.raises(MethodError, match=r"method 'slow': .* ran past its timeout_s of 0.5 s"):
        outside(slow, bench, pristine, tmp_path)
    assert time.monotonic() - start < 30

    absent = spec(name="absent", command="no-such-girml-tool {in} {out}")
    with pytest.raises(MethodError, match=r"method 'absent': cannot run `no-such-girml-tool"):
        outside(absent, bench, pristine, tmp_path)

    nothing = spec(name="nothing", command=f"{shlex.quote(sys.executable)} -c pass {{in}} {{out}}")
    with pytest.raises(MethodError, match="method 'nothing' failed on every image; the first: "):
        outside(nothing, bench, pristine, tmp_path)


def test_the_command_runs_in_the_project_root(
    bench: Bench, pristine: NiqeModel, tmp_path: Path
) -> None:
    """A relative script path in the command resolves against the project root."""
    (tmp_path / "tools").mkdir()
    (tmp_path / "tools" / "copy.py").write_text(
        "import shutil, sys\nshutil.copytree(sys.argv[1], sys.argv[2], dirs_exist_ok=True)\n"
    )
    command = f"{shlex.quote(sys.executable)} tools/copy.py {{in}} {{out}}"
    result = outside(spec(name="copy", command=command), bench, pristine, tmp_path)
    assert len(result.rows) == len(bench) and not result.failures


# --------------------------------------------------------------------------- python


FUNCTIONS = """\
import itertools

import numpy as np
import torch

_calls = itertools.count()


def restore(lq):
    return np.ascontiguousarray(lq[:, ::-1])


def flaky(lq):
    if next(_calls) == 3:
        raise RuntimeError("out of memory on this one")
    return lq.copy()


def identity_net():
    return torch.nn.Identity()


def not_a_net():
    return "weights.pth"
"""


def test_python_restorer_and_module_factory(
    bench: Bench, pristine: NiqeModel, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    module = write_module(tmp_path, "girml_test_functions_a", FUNCTIONS, monkeypatch)
    flip = outside(spec(name="flip", python=f"{module}:restore"), bench, pristine, tmp_path)
    expected = evaluate_method(
        lambda lq: np.ascontiguousarray(lq[:, ::-1]), bench, CFG, pristine, None, method="flip"
    )
    assert scores(flip.rows) == scores(expected) and not flip.failures

    net = spec(name="net", python=f"{module}:identity_net", kind="module_factory")
    result = outside(net, bench, pristine, tmp_path)
    expected = evaluate_method(
        model_restorer(torch.nn.Identity(), None), bench, CFG, pristine, None, method="net"
    )
    assert scores(result.rows) == scores(expected) and not result.failures
    for row in result.rows:  # float round trip of an identity network: at most a rounding
        assert row["psnr_y"] == pytest.approx(row["psnr_y_input"], abs=1e-6)


def test_a_function_that_raises_on_one_image_is_reported_for_it(
    bench: Bench, pristine: NiqeModel, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    module = write_module(tmp_path, "girml_test_functions_b", FUNCTIONS, monkeypatch)
    result = outside(spec(name="flaky", python=f"{module}:flaky"), bench, pristine, tmp_path)
    assert len(result.rows) == len(bench) - 1
    (failure,) = result.failures
    item = bench.items[3]
    assert failure.describe() == (
        f"{item.suite}/{item.family}/{item.id}: RuntimeError: out of memory on this one"
    )


def test_python_methods_that_cannot_load_are_errors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    module = write_module(tmp_path, "girml_test_functions_c", FUNCTIONS, monkeypatch)
    cases = [
        (spec(name="gone", python="girml_no_such_module:f"), "cannot import 'girml_no_such"),
        (spec(name="nofn", python=f"{module}:missing"), r":missing is not found"),
        (spec(name="data", python=f"{module}:_calls"), "is a count, expected a callable"),
        (
            spec(name="str", python=f"{module}:not_a_net", kind="module_factory"),
            r"not_a_net\(\) returned str, expected a torch nn.Module",
        ),
    ]
    for method, message in cases:
        with pytest.raises(MethodError, match=f"method '{method.name}': .*{message}"):
            load_methods([method], None, tmp_path, load_model)


# --------------------------------------------------------------------------- mlflow


def test_registered_mlflow_model_is_scored_like_the_model(
    registry: Path, bench: Bench, pristine: NiqeModel
) -> None:
    model = tiny_model(7, 0.05)
    _, version = register(model, registry, registry / "latest")
    set_alias(REGISTERED_MODEL, "outside", version)
    method = spec(name="registered", mlflow=f"models:/{REGISTERED_MODEL}@outside")
    result = outside(method, bench, pristine, registry)
    expected = evaluate_method(
        model_restorer(model, None), bench, CFG, pristine, None, method="registered"
    )
    assert scores(result.rows) == scores(expected) and not result.failures

    missing = spec(name="missing", mlflow=f"models:/{REGISTERED_MODEL}@nobody")
    with pytest.raises(
        MethodError, match=f"method 'missing': cannot load models:/{REGISTERED_MODEL}"
    ):
        load_methods([missing], None, registry, load_model)


# --------------------------------------------------------------------------- evaluate stage


def test_methods_flow_into_eval_json_and_the_csvs(
    data: Path, registry: Path, tool: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    module = write_module(registry, "girml_test_functions_d", FUNCTIONS, monkeypatch)
    model_dir = registry / "models" / "latest"
    register(tiny_model(0, 0.0), registry, model_dir)
    cfg = parse_section(
        {
            "niqe_patch_size": 16,
            "baselines": ["identity"],
            "methods": [
                {"name": "med", "command": f"{tool} --in {{in}} --out {{out}}"},
                {"name": "flaky", "python": f"{module}:flaky"},
            ],
        },
        "evaluate",
        EvaluateConfig,
    )
    metrics_dir, plots_dir = registry / "metrics", registry / "plots"
    result = evaluate_and_promote(
        model_dir=model_dir,
        bench_dir=data / "bench",
        clean_dir=data / "clean",
        cfg=cfg,
        metrics_dir=metrics_dir,
        plots_dir=plots_dir,
        project_root=registry,
        train_metrics=registry / TRAIN_JSON,
    )
    n = len(Bench(data / "bench"))
    whole = len(Bench(data / "bench", whole=True))  # whole photos: the model's alone
    header, rows = read_csv(metrics_dir / "per_image.csv")
    assert "error" not in header
    assert [r["method"] for r in rows] == ["model"] * n + ["identity"] * n + ["med"] * n + [
        "flaky"
    ] * (n - 1) + ["model"] * whole
    _, families = read_csv(metrics_dir / "per_family.csv")
    assert {"med", "flaky"} <= {r["method"] for r in families}

    metrics = json.loads((metrics_dir / "eval.json").read_text())
    for name in ("med", "flaky"):
        assert isinstance(metrics[f"methods.{name}.gir_score"], float)
        assert f"methods.{name}.harm_rate.single-id" in metrics
        assert f"methods.{name}.harm.clean_psnr_y.single-id" in metrics
    assert metrics["methods.med.failed"] == 0 and metrics["methods.med.errors"] == []
    assert metrics["methods.flaky.failed"] == 1
    (error,) = metrics["methods.flaky.errors"]
    assert error.endswith(": RuntimeError: out of memory on this one")
    assert metrics["methods.flaky.gir_score"] == pytest.approx(0.0, abs=1e-6)  # a copy
    keys = list(metrics)
    assert keys.index("baselines.identity.gir_score") < keys.index("methods.med.gir_score")
    assert keys.index("methods.flaky.errors") < keys.index("champion.promoted")

    header, _ = read_csv(plots_dir / "generalization.csv")
    assert header == ["suite_index", "suite", "model", "identity", "med", "flaky", "best_baseline"]
    assert f"method flaky: 1 image(s) not scored, the first {error}" in result.summary()
    assert {"med", "flaky"} <= set(result.seconds)


# --------------------------------------------------------------------------- girml evaluate
# A broken outside method stops `girml evaluate` in one line, before anything is scored: the
# command in a project folder, programs that crash, hang or write nothing, and a `python:` method
# whose module does not exist.

PYTHON = shlex.quote(sys.executable)
CRASH = "import sys; print('loading weights ...', file=sys.stderr); sys.exit('weights: not found')"

# (method, exit code, the error line after "error: ")
CASES = [
    (
        {"name": "crash", "command": f'{PYTHON} -c "{CRASH}" {{in}} {{out}}'},
        1,
        r"method 'crash': `.+ \{in\} \{out\}` exited with 1; its last stderr line: "
        r"weights: not found",
    ),
    (
        {
            "name": "hangs",
            "command": f'{PYTHON} -c "import time; time.sleep(60)" {{in}} {{out}}',
            "timeout_s": 1,
        },
        1,
        r"method 'hangs': `.+` ran past its timeout_s of 1(\.0)? s",
    ),
    (
        {"name": "nothing", "command": f"{PYTHON} -c pass {{in}} {{out}}"},
        1,
        r"method 'nothing' failed on single-id/\w+/[^,]+, tried before scoring: ImageReadError: "
        r"\{out\}/00000_\S+\.png: no output file: the program wrote none",
    ),
    (
        {"name": "gone", "python": "girml_no_such_module:restore"},
        EX_BAD_INPUT,
        r"method 'gone': cannot import 'girml_no_such_module': ModuleNotFoundError: "
        r"No module named 'girml_no_such_module'",
    ),
]


def test_each_broken_method_is_one_line_with_its_exit_code_before_any_scoring(
    data: Path, registry: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    for name in ("bench", "clean"):
        shutil.copytree(data / name, registry / "data" / name)
    register(tiny_model(0, 0.0), registry, registry / "models" / "latest")
    monkeypatch.chdir(registry)
    caplog.set_level(logging.INFO)
    for method, code, message in CASES:
        params = tiny_params()
        params["evaluate"] = {"niqe_patch_size": 16, "baselines": ["identity"], "methods": [method]}
        write_params(registry / "params.yaml", params)
        caplog.clear()
        result = CliRunner().invoke(app, ["evaluate"])
        errors = [line for line in result.output.splitlines() if line.startswith("error: ")]
        assert "Traceback" not in result.output, result.output
        assert len(errors) == 1, result.output
        assert result.exit_code == code, result.output
        assert re.fullmatch(f"error: {message}", errors[0]), errors[0]
        # found on the first image, before the model, the baselines or the method were scored
        assert "evaluated " not in caplog.text, method["name"]
        assert not (registry / "metrics" / "eval.json").exists()
