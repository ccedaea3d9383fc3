"""Prefect orchestration: DAG order, overrides, the gir-pipeline flow and its deployment.

The flow tests run a fake tiny DVC project (git + dvc init, stages that are small Python
scripts) against a real temporary Prefect server (``prefect_test_harness``).
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from girml.config import ConfigError, OrchestrationConfig
from pipelines.dag import read_stages, stage_order
from pipelines.flows import (
    SUMMARY_KEY,
    TABLE_KEY,
    apply_overrides,
    build_deployment,
    error_summary,
    gir_pipeline,
    mlflow_lines,
    parse_override,
    per_family_table,
    redact,
    summary_markdown,
)
from tests.factories import serving

ROOT = Path(__file__).resolve().parents[2]
SECRET = "verysecret123"

# --------------------------------------------------------------------------- DAG


def test_stage_order_of_the_real_pipeline() -> None:
    order = stage_order(ROOT / "dvc.yaml")
    for before, after in [("collect", "synthesize"), ("synthesize", "validate")]:
        assert order.index(before) < order.index(after)
    assert order.index("synthesize") < order.index("train")
    assert set(order) == {s.name for s in read_stages(ROOT / "dvc.yaml")}


def _write_dvc_yaml(path: Path, stages: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump({"stages": stages}, sort_keys=False))
    return path


def test_new_stages_join_by_their_deps(tmp_path: Path) -> None:
    # file order is deliberately not DAG order
    dvc_yaml = _write_dvc_yaml(
        tmp_path / "dvc.yaml",
        {
            "evaluate": {
                "cmd": "e",
                "deps": ["models/latest", "data/bench/single-id"],  # under synthesize's out
                "outs": ["plots"],
                "metrics": [{"metrics/eval.json": {"cache": False}}],
            },
            "interpret": {"cmd": "i", "deps": ["metrics/eval.json"], "outs": ["reports/interp"]},
            "collect": {"cmd": "c", "outs": ["data/clean"]},
            "lint": {"cmd": "l", "deps": ["src"]},  # independent: keeps its file position
            "train": {"cmd": "t", "deps": ["data"], "outs": ["models/latest"]},  # above outs
            "synthesize": {
                "cmd": "s",
                "deps": ["data/clean/images"],
                "outs": ["data/pairs", {"data/bench": {"persist": True}}],
            },
        },
    )
    order = stage_order(dvc_yaml)
    assert order == ["collect", "lint", "synthesize", "train", "evaluate", "interpret"]


def test_wdir_paths_are_resolved(tmp_path: Path) -> None:
    dvc_yaml = _write_dvc_yaml(
        tmp_path / "dvc.yaml",
        {
            "b": {"cmd": "b", "wdir": "sub", "deps": ["../data/x.txt"]},
            "a": {"cmd": "a", "outs": ["data"]},
        },
    )
    assert stage_order(dvc_yaml) == ["a", "b"]


@pytest.mark.parametrize(
    ("stages", "message"),
    [
        (
            {"a": {"cmd": "a", "deps": ["y"], "outs": ["x"]}, "b": {"cmd": "b", "deps": ["x"]}}
            | {"c": {"cmd": "c", "deps": ["x"], "outs": ["y"]}},
            "cycle",
        ),
        ({"a": {"matrix": {"x": [1, 2]}, "cmd": "x"}}, "matrix"),
        ({"a": {"foreach": "${nowhere.key}", "do": {"cmd": "x"}}}, r"\$\{nowhere.key\} is not"),
        ({"a": {"cmd": "a", "outs": ["d"]}, "b": {"cmd": "b", "outs": ["d/e"]}}, "both output"),
        ({"a": {"cmd": "a", "deps": "notalist"}}, "must be a list"),
    ],
)
def test_bad_pipelines_are_rejected(tmp_path: Path, stages: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        stage_order(_write_dvc_yaml(tmp_path / "dvc.yaml", stages))


def test_foreach_stages_expand_per_item_as_dvc_names_them(tmp_path: Path) -> None:
    """One stage ``name@key`` per item of a params mapping; ``${key}``/``${item.x}`` in paths.
    The same file through DVC's own resolver gives the same stage names."""
    (tmp_path / "params.yaml").write_text(
        "study:\n  approaches:\n    b: {kind: k, src: data/one}\n    a: {kind: k, src: data/two}\n"
    )
    dvc_yaml = _write_dvc_yaml(
        tmp_path / "dvc.yaml",
        {
            "report": {"cmd": "r", "deps": ["models/approaches"], "outs": ["report"]},
            "approach": {
                "foreach": "${study.approaches}",
                "do": {
                    "cmd": "t ${key}",
                    "deps": ["${item.src}"],
                    "outs": ["models/approaches/${key}"],
                },
            },
            "data": {"cmd": "d", "outs": ["data"]},
        },
    )
    stages = {stage.name: stage for stage in read_stages(dvc_yaml)}
    assert stages["approach@b"].deps == ("data/one",)
    assert stages["approach@a"].outs == ("models/approaches/a",)
    assert stage_order(dvc_yaml) == ["data", "approach@b", "approach@a", "report"]
    from dvc.repo import Repo

    Repo.init(str(tmp_path), no_scm=True)
    with Repo(str(tmp_path)) as repo:
        assert {stage.name for stage in repo.index.stages} == set(stages)
    (tmp_path / "params.yaml").write_text("study:\n  approaches: {}\n")
    assert stage_order(dvc_yaml) == ["report", "data"]


def test_missing_dvc_yaml(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"dvc\.yaml"):
        stage_order(tmp_path / "dvc.yaml")


# --------------------------------------------------------------------------- overrides

PARAMS = """\
# the fake project's params
synthesize:
  train_pairs: 4     # pairs written by the fetch stage
orchestration:
  cron: "0 3 * * 1"
  timezone: Europe/Paris
  deployment: nightly
  push: false
  retries: 1
  retry_delay_s: 0
  io_stages: [fetch]
"""


def test_parse_override() -> None:
    assert parse_override("train.steps=200") == (["train", "steps"], 200)
    assert parse_override("collect.split.val=0.2") == (["collect", "split", "val"], 0.2)
    assert parse_override("model.enc_blocks=[1, 2]") == (["model", "enc_blocks"], [1, 2])
    for bad in ("steps=200", "train.steps", "=1", "train.steps=[1,"):
        with pytest.raises(ConfigError, match="override"):
            parse_override(bad)


def test_apply_overrides_keeps_comments_and_validates(tmp_path: Path) -> None:
    params = tmp_path / "params.yaml"
    params.write_text(PARAMS)
    new = apply_overrides(params, ["synthesize.train_pairs=9", "train.steps=3"])
    assert new["synthesize"]["train_pairs"] == 9 and new["train"] == {"steps": 3}
    text = params.read_text()
    assert "# pairs written by the fetch stage" in text and "train_pairs: 9" in text

    before = params.read_text()
    with pytest.raises(ConfigError, match=r"synthesize\.train_pairz"):
        apply_overrides(params, ["synthesize.train_pairz=3"])
    with pytest.raises(ConfigError, match=r"synthesize\.train_pairs"):
        apply_overrides(params, ["synthesize.train_pairs=-1"])
    with pytest.raises(ConfigError, match="unknown section 'bogus'"):
        apply_overrides(params, ["bogus.x=1"])
    with pytest.raises(ConfigError, match=r"synthesize\.train_pairs is not a mapping"):
        apply_overrides(params, ["synthesize.train_pairs.x=1"])
    assert params.read_text() == before


def test_overrides_on_the_real_params_change_only_their_lines(tmp_path: Path) -> None:
    params = tmp_path / "params.yaml"
    original = (ROOT / "params.yaml").read_text()
    params.write_text(original)
    new = apply_overrides(params, ["train.steps=7", 'train.mixed_precision="no"'])
    assert new["train"]["steps"] == 7 and new["train"]["mixed_precision"] == "no"  # not False
    changed = [
        (a, b) for a, b in zip(original.splitlines(), params.read_text().splitlines(), strict=True)
        if a != b
    ]  # fmt: skip
    assert [b.split("#")[0].strip() for _, b in changed] == ["steps: 7"]


# --------------------------------------------------------------------------- secrets and summary


def test_redact_masks_userinfo_and_secret_values() -> None:
    env = {"AWS_SECRET_ACCESS_KEY": SECRET, "MY_TOKEN": "tok-123456", "SHORT_KEY": "abc"}
    text = f"s3://u:p@host/x key={SECRET} https://me@example.org tok-123456 abc"
    out = redact(text, env)
    assert SECRET not in out and "u:p@" not in out and "me@" not in out and "tok-123456" not in out
    assert "s3://***@host/x" in out and out.endswith("abc")
    assert redact("nothing here", {}) == "nothing here"


def test_error_summary_starts_at_the_error() -> None:
    lines = ["Running stage 'x':", "> python x.py", "working", "error: boom 42", "ERROR: failed"]
    assert error_summary(lines) == "error: boom 42\nERROR: failed"
    assert error_summary(["a", "", "b"]) == "a\nb"


def test_mlflow_links() -> None:
    [server] = mlflow_lines("http://user:pw@127.0.0.1:5001/", "abc", "7")
    assert "(http://127.0.0.1:5001/#/experiments/7/runs/abc)" in server and "pw" not in server
    assert "/#/runs/abc)" in mlflow_lines("https://mlflow.example.org", "abc")[0]
    sqlite = "\n".join(mlflow_lines("sqlite:////p/mlflow.db", "abc"))
    assert "`abc`" in sqlite and "mlflow ui --backend-store-uri sqlite:////p/mlflow.db" in sqlite


def _write_results(root: Path) -> None:
    """What train/evaluate/interpret leave behind, in miniature."""
    (root / "metrics").mkdir(parents=True, exist_ok=True)
    train = {
        "val.psnr_gain": 1.25,
        "steps": 3,
        "train_seconds": 0.5,
        "per_family": {"x": {}},
        "run": {"weights_sha256": "ab12", "mlflow_run_id": "r123", "registered_version": 1},
    }
    (root / "metrics/train.json").write_text(json.dumps(train))
    evaluation = {
        "gir_score": 2.5,
        "psnr_gain.single-id": 3.0,
        "psnr_y.single-id": 30.0,
        "harm_rate.single-id": 0.125,
        "harm.clean_psnr_y.single-id": 41.5,
        "harm.worst_family_gain": -0.25,
        "baselines.nlm.harm_rate.single-id": 0.5,
        "champion.promoted": True,
        "champion.reasons": "first model\nno regression",
    }
    (root / "metrics/eval.json").write_text(json.dumps(evaluation))
    rows = ["method,suite,family,n,psnr_y,niqe"]
    rows += [
        f"{m},single-id,f{i},4,{30 + i}.123456," for m in ("model", "identity") for i in range(40)
    ]
    (root / "metrics/per_family.csv").write_text("\n".join(rows) + "\n")
    (root / "reports/interpretation").mkdir(parents=True)
    (root / "reports/interpretation/index.html").write_text("<html></html>")


class _FakeMlflow(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = json.dumps({"run": {"info": {"experiment_id": "42"}}}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


def test_summary_and_table(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert summary_markdown(tmp_path, {"a": "ran"}).count("\n## ") == 0  # nothing there yet
    _write_results(tmp_path)
    (tmp_path / "models/latest").mkdir(parents=True)
    config = {"model": {"type": "nafnet"}, "weights_sha256": "ab12"}  # train.json names the run
    (tmp_path / "models/latest/config.yaml").write_text(yaml.safe_dump(config))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)

    md = summary_markdown(tmp_path, {"collect": "unchanged", "train": "ran"})
    assert "| collect | unchanged |" in md and "| `gir_score` | 2.500 |" in md
    assert "`psnr_gain.single-id`" in md and "`val.psnr_gain`" in md
    assert "`psnr_y.single-id`" not in md and "per_family" not in md
    assert "| `harm_rate.single-id` | 0.125 |" in md and "`harm.clean_psnr_y.single-id`" in md
    assert "`harm.worst_family_gain`" in md and "baselines.nlm" not in md  # the model's only
    assert "- **promoted**: True" in md and "  - no regression" in md
    assert "`r123`" in md and f"sqlite:///{tmp_path.resolve()}/mlflow.db" in md
    assert (tmp_path / "reports/interpretation/index.html").resolve().as_uri() in md
    assert "## Study leaderboard" not in md  # the study stage has not run
    (tmp_path / "reports/study").mkdir(parents=True)
    (tmp_path / "reports/study/index.html").write_text("<html></html>")
    md = summary_markdown(tmp_path, {"study": "ran"})
    assert (tmp_path / "reports/study/index.html").resolve().as_uri() in md

    with serving(HTTPServer(("127.0.0.1", 0), _FakeMlflow)) as server:
        monkeypatch.setenv(
            "MLFLOW_TRACKING_URI", f"http://u:{SECRET}@127.0.0.1:{server.server_port}"
        )
        md = summary_markdown(tmp_path, {})
    assert f"http://127.0.0.1:{server.server_port}/#/experiments/42/runs/r123" in md
    assert SECRET not in md

    table = per_family_table(tmp_path / "metrics/per_family.csv")
    assert len(table) == 40 and {r["method"] for r in table} == {"model"}  # 80 rows: too many
    assert table[0] == {
        "method": "model", "suite": "single-id", "family": "f0", "n": 4.0, "psnr_y": 30.123,
        "niqe": None,
    }  # fmt: skip
    assert len(per_family_table(tmp_path / "metrics/per_family.csv", max_rows=100)) == 80
    assert per_family_table(tmp_path / "missing.csv") == []


# --------------------------------------------------------------------------- the fake project

STAGES_PY = """\
import json, os, pathlib, sys
import yaml

step = sys.argv[1]
params = yaml.safe_load(open("params.yaml"))
if step == "fetch":
    flaky = pathlib.Path(".fetch-attempted")  # I/O stage: the first attempt fails
    if not flaky.exists():
        flaky.write_text("1")
        print("error: network down (attempt 1)", file=sys.stderr)
        sys.exit(1)
    n = params["synthesize"]["train_pairs"]
    pathlib.Path("data").mkdir(exist_ok=True)
    pathlib.Path("data/raw.txt").write_text("".join(f"pair {i}\\n" for i in range(n)))
elif step == "report":
    n = len(open("data/raw.txt").read().splitlines())
    print(f"report over {n} pairs; key is {os.environ.get('AWS_SECRET_ACCESS_KEY')}")
    pathlib.Path("metrics").mkdir(exist_ok=True)
    json.dump({"val.psnr_gain": 1.5, "steps": n, "train_seconds": 0.1},
              open("metrics/train.json", "w"))
    json.dump({"gir_score": 2.25, "psnr_gain.single-id": 3.0, "champion.promoted": True},
              open("metrics/eval.json", "w"))
    with open("metrics/per_family.csv", "w") as fh:
        fh.write("method,suite,family,n,psnr_y\\n")
        fh.write(f"model,single-id,noise,{n},31.5\\nidentity,single-id,noise,{n},25.25\\n")
elif step == "boom":
    print("working...")
    print("error: boom 42", file=sys.stderr)
    sys.exit(1)
elif step == "after":
    pathlib.Path("after.txt").write_text("ran")
"""

DVC_YAML = """\
stages:
  report:              # listed first, runs second: it depends on fetch's output
    cmd: python stages.py report
    deps: [data/raw.txt, stages.py]
    outs: [metrics/per_family.csv]
    metrics:
      - metrics/train.json: {cache: false}
      - metrics/eval.json: {cache: false}
  fetch:
    cmd: python stages.py fetch
    deps: [stages.py]
    params: [synthesize.train_pairs]
    outs: [data/raw.txt]
"""

BOOM_STAGE = """\
  boom:
    cmd: python stages.py boom
    deps: [metrics/train.json]
  after:
    cmd: python stages.py after
    deps: [stages.py]
    outs: [after.txt]
"""


def _sh(args: list[str], cwd: Path) -> None:
    env = {**os.environ, "DVC_NO_ANALYTICS": "1"}
    subprocess.run(args, cwd=cwd, env=env, check=True, capture_output=True, timeout=120)


def make_project(path: Path, extra_stages: str = "") -> Path:
    """A tiny DVC project in ``path`` (git repo, dvc init, local remote ``path/../remote``)."""
    path.mkdir(parents=True)
    (path / "params.yaml").write_text(PARAMS)
    (path / "stages.py").write_text(STAGES_PY)
    (path / "dvc.yaml").write_text(DVC_YAML + extra_stages)
    _sh(["git", "init", "-q"], path)
    _sh([sys.executable, "-m", "dvc", "init", "-q"], path)
    _sh(
        [sys.executable, "-m", "dvc", "remote", "add", "-d", "local", str(path.parent / "remote")],
        path,
    )
    return path


@pytest.fixture(scope="module")
def prefect_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A temporary Prefect server (own database, PREFECT_HOME in tmp); yields its API URL."""
    home = tmp_path_factory.mktemp("prefect-home")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PREFECT_HOME", str(home))
        mp.setenv("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
        mp.setenv("DO_NOT_TRACK", "1")
        from prefect.settings import PREFECT_API_URL, PREFECT_HOME, temporary_settings
        from prefect.testing.utilities import prefect_test_harness

        with (
            temporary_settings(updates={PREFECT_HOME: str(home)}),
            prefect_test_harness(server_startup_timeout=120),
        ):
            yield str(PREFECT_API_URL.value())


def _logs_and_artifacts(flow_run_id: Any) -> tuple[list[str], list[Any]]:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        ArtifactFilter,
        ArtifactFilterFlowRunId,
        LogFilter,
        LogFilterFlowRunId,
    )
    from prefect.logging.handlers import APILogHandler

    APILogHandler().flush()
    with get_client(sync_client=True) as client:
        logs = client.read_logs(LogFilter(flow_run_id=LogFilterFlowRunId(any_=[flow_run_id])))
        artifacts = client.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id]))
        )
    return [log.message for log in logs], artifacts


def test_flow_is_named_gir_pipeline() -> None:
    assert gir_pipeline.name == "gir-pipeline"


@pytest.mark.slow
def test_flow_runs_the_stages_and_publishes(
    prefect_api: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    project = make_project(tmp_path / "project")
    state = gir_pipeline(
        overrides=["synthesize.train_pairs=3"], project_dir=str(project), return_state=True
    )
    assert state.is_completed(), state.message
    assert state.result() == {"fetch": "ran", "report": "ran"}  # DAG order, not file order
    assert (project / "data/raw.txt").read_text().count("\n") == 3  # the override took effect
    assert "train_pairs: 3" in (project / "params.yaml").read_text()
    lock = yaml.safe_load((project / "dvc.lock").read_text())
    assert set(lock["stages"]) == {"fetch", "report"}
    assert (project / ".fetch-attempted").is_file()  # fetch failed once, then was retried

    logs, artifacts = _logs_and_artifacts(state.state_details.flow_run_id)
    assert any("[fetch] error: network down" in m for m in logs)
    assert any("[report] report over 3 pairs; key is ***" in m for m in logs)
    by_key = {a.key: a for a in artifacts}
    summary = by_key[SUMMARY_KEY].data
    assert "| fetch | ran |" in summary and "| `gir_score` | 2.250 |" in summary
    assert "- **promoted**: True" in summary
    table = by_key[TABLE_KEY].data
    table = json.loads(table) if isinstance(table, str) else table
    assert [row["psnr_y"] for row in table] == [31.5, 25.25]
    published = json.dumps([[a.data, a.description] for a in artifacts], default=str)
    assert SECRET not in published and not any(SECRET in m for m in logs)

    # nothing changed: DVC skips every stage; push=True sends the cache to the local remote
    again = gir_pipeline(push=True, project_dir=str(project), return_state=True)
    assert again.is_completed(), again.message
    assert again.result() == {"fetch": "unchanged", "report": "unchanged"}
    assert any(p.is_file() for p in (tmp_path / "remote").rglob("*"))

    from pipelines.cli import app

    cli = CliRunner().invoke(app, ["flow", "--project-dir", str(project), "--no-push"])
    assert cli.exit_code == 0, cli.output
    assert "gir-pipeline completed" in cli.output and "'report': 'unchanged'" in cli.output


@pytest.mark.slow
def test_bad_override_fails_the_flow_naming_the_key(prefect_api: str, tmp_path: Path) -> None:
    project = make_project(tmp_path / "project")
    state = gir_pipeline(
        overrides=["synthesize.train_pairz=3"], project_dir=str(project), return_state=True
    )
    assert state.is_failed()
    assert "synthesize.train_pairz" in state.message
    assert (project / "params.yaml").read_text() == PARAMS
    assert not (project / "dvc.lock").exists()


@pytest.mark.slow
def test_stage_failure_is_the_flow_state_message(prefect_api: str, tmp_path: Path) -> None:
    project = make_project(tmp_path / "project", BOOM_STAGE)
    (project / ".fetch-attempted").write_text("1")
    state = gir_pipeline(project_dir=str(project), return_state=True)
    assert state.is_failed()
    assert "boom 42" in state.message and "'boom'" in state.message
    assert not (project / "after.txt").exists()  # later stages do not run

    from pipelines.cli import app

    cli = CliRunner().invoke(app, ["flow", "--project-dir", str(project)])
    assert cli.exit_code == 1 and "error: boom 42" in cli.output


@pytest.mark.slow
def test_deployment_schedule_and_triggered_run(prefect_api: str, tmp_path: Path) -> None:
    from prefect.client.orchestration import get_client
    from prefect.deployments import run_deployment
    from prefect.runner import Runner

    project = make_project(tmp_path / "project")
    (project / ".fetch-attempted").write_text("1")
    cfg = OrchestrationConfig.model_validate(yaml.safe_load(PARAMS)["orchestration"])
    deployment = build_deployment(cfg, project)
    deployment_id = deployment.apply()
    with get_client(sync_client=True) as client:
        stored = client.read_deployment_by_name(f"gir-pipeline/{cfg.deployment}")
        assert stored.id == deployment_id
        [schedule] = client.read_deployment_schedules(deployment_id)
    assert schedule.schedule.cron == cfg.cron and schedule.schedule.timezone == cfg.timezone
    assert stored.parameters == {"project_dir": str(project.resolve())}

    flow_run = run_deployment(f"gir-pipeline/{cfg.deployment}", timeout=0)
    runner = Runner(name="test-runner", limit=1)
    runner.add_deployment(deployment)
    asyncio.run(asyncio.wait_for(runner.start(run_once=True), timeout=240))
    with get_client(sync_client=True) as client:
        final = client.read_flow_run(flow_run.id)
    assert final.state is not None and final.state.is_completed(), final.state
    assert (project / "metrics/train.json").is_file()


def test_build_deployment_rejects_a_bad_schedule(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"orchestration\.cron"):
        build_deployment(OrchestrationConfig(cron="61 * * * * *"), tmp_path)
    with pytest.raises(ConfigError, match=r"orchestration\.cron/timezone"):
        build_deployment(OrchestrationConfig(timezone="Mars/Olympus"), tmp_path)


def test_deploy_needs_a_reachable_prefect_api(tmp_path: Path, free_tcp_port: int) -> None:
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from pipelines.cli import app

    params = tmp_path / "params.yaml"
    params.write_text(PARAMS)
    runner = CliRunner()
    with temporary_settings(restore_defaults={PREFECT_API_URL}):
        result = runner.invoke(app, ["deploy", "--params", str(params)])
    assert result.exit_code == 2
    assert "prefect server start" in result.output
    assert "PREFECT_API_URL=http://127.0.0.1:4200/api" in result.output
    url = f"http://user:{SECRET}@127.0.0.1:{free_tcp_port}/api"
    with temporary_settings(updates={PREFECT_API_URL: url}):
        result = runner.invoke(app, ["deploy", "--params", str(params)])
    assert result.exit_code == 2 and "not reachable" in result.output
    assert SECRET not in result.output
    bad = tmp_path / "bad.yaml"
    bad.write_text(PARAMS.replace("retries: 1", "retries: -1"))
    result = runner.invoke(app, ["deploy", "--params", str(bad)])
    assert result.exit_code == 2 and "orchestration.retries" in result.output


PROGRESS_STAGE = """\
  progress:
    cmd: python progress.py
    deps: [progress.py]
"""
PROGRESS_PY = """\
import sys, time
from tqdm import tqdm
print("training starts")
for _ in tqdm(range(300), desc="train", unit="step", mininterval=0, file=sys.stderr):
    time.sleep(0.001)
print("training done")
"""


@pytest.mark.slow  # a real Prefect server (prefect_api): 10-20 s to start
def test_progress_bars_take_a_few_log_lines(prefect_api: str, tmp_path: Path) -> None:
    from prefect import flow

    from pipelines.flows import is_progress, run_stage

    assert is_progress("train:  40%|####      | 8/20 [00:02<00:03, 3.91step/s]")
    assert is_progress("collect: 12img [00:01, 9.50img/s]")
    assert is_progress("train:   0%|          | 0/20 [00:00<?, ?step/s]")
    assert not is_progress("error: boom 42") and not is_progress("[2026] step 5, 1.2 it/s")

    project = make_project(tmp_path / "project", PROGRESS_STAGE)
    (project / "progress.py").write_text(PROGRESS_PY)

    @flow(name="progress-only")
    def progress_only() -> str:
        return run_stage("progress", str(project))

    state = progress_only(return_state=True)
    assert state.is_completed(), state.message
    logs, _ = _logs_and_artifacts(state.state_details.flow_run_id)
    mine = [m for m in logs if m.startswith("[progress] ")]
    bars = [m for m in mine if is_progress(m)]
    assert 1 <= len(bars) <= 3, bars  # 300 refreshes -> the first and the last
    assert "300/300" in bars[-1]
    assert any("training starts" in m for m in mine) and any("training done" in m for m in mine)


def test_deploy_refuses_the_name_of_a_work_pool_deployment(
    prefect_api: str, tmp_path: Path
) -> None:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import WorkPoolCreate

    from pipelines.cli import app
    from pipelines.deploy import pool_deployment

    cfg = OrchestrationConfig.model_validate(yaml.safe_load(PARAMS)["orchestration"])
    with get_client(sync_client=True) as client:
        client.create_work_pool(WorkPoolCreate(name="gir-team", type="process"))
    build_deployment(cfg, tmp_path, name="team").apply(work_pool_name="gir-team")
    assert pool_deployment("team") == "gir-team"
    assert pool_deployment("no-such-deployment") is None

    params = tmp_path / "params.yaml"
    params.write_text(PARAMS)
    result = CliRunner().invoke(app, ["deploy", "--params", str(params), "--name", "team"])
    assert result.exit_code == 2, result.output
    assert "work pool 'gir-team'" in result.output and "--name" in result.output


def test_importing_pipelines_turns_prefect_telemetry_off() -> None:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("DO_NOT_TRACK", "PREFECT_SERVER_ANALYTICS_ENABLED")
    }
    code = (
        "import pipelines.flows, os\n"
        "from prefect.settings import get_current_settings\n"
        "print(get_current_settings().server.analytics_enabled, os.environ['DO_NOT_TRACK'])"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["False", "1"]  # inherited by a temporary server it starts


@pytest.mark.slow
def test_work_pool_deployment_runs_on_a_process_worker(prefect_api: str, tmp_path: Path) -> None:
    """The README's team recipe: `prefect deploy` into a process pool, `prefect worker start`."""
    from prefect.client.orchestration import get_client
    from prefect.deployments import run_deployment

    project = make_project(tmp_path / "project")
    (project / ".fetch-attempted").write_text("1")
    # the deploy command runs where the flow's code is; a folder of its own keeps the checkout
    # free of the prefect.yaml and .prefect/ that `prefect deploy` may write
    code = tmp_path / "code"
    code.mkdir()
    (code / "pipelines").symlink_to(ROOT / "pipelines", target_is_directory=True)
    env = {
        **os.environ,
        "PREFECT_API_URL": prefect_api,
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    prefect = [sys.executable, "-m", "prefect"]

    def cli(*args: str, timeout: int = 180) -> subprocess.CompletedProcess:
        done = subprocess.run(
            [*prefect, *args], cwd=code, env=env, capture_output=True, text=True, timeout=timeout
        )
        assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
        return done

    cli("work-pool", "create", "gir-workers", "--type", "process")
    cli(
        *("--no-prompt", "deploy", "pipelines/flows.py:gir_pipeline", "--name", "team"),
        *("--pool", "gir-workers", "--cron", "0 3 * * 1", "--timezone", "UTC"),
        *("--param", f"project_dir={project}"),
    )
    flow_run = run_deployment("gir-pipeline/team", timeout=0)
    cli("worker", "start", "--pool", "gir-workers", "--run-once", "--limit", "1", timeout=300)
    with get_client(sync_client=True) as client:
        final = client.read_flow_run(flow_run.id)
        deployment = client.read_deployment_by_name("gir-pipeline/team")
    assert final.state is not None and final.state.is_completed(), final.state
    assert deployment.work_pool_name == "gir-workers"
    assert (project / "dvc.lock").is_file() and (project / "data/raw.txt").is_file()
