"""A fake tiny DVC project for the orchestration tests (git + dvc init, stages that are small
Python scripts), and what a flow run left in Prefect's API."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

SECRET = "verysecret123"

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


def sh(args: list[str], cwd: Path) -> None:
    env = {**os.environ, "DVC_NO_ANALYTICS": "1"}
    subprocess.run(args, cwd=cwd, env=env, check=True, capture_output=True, timeout=120)


def make_project(path: Path, extra_stages: str = "") -> Path:
    """A tiny DVC project in ``path`` (git repo, dvc init, local remote ``path/../remote``)."""
    path.mkdir(parents=True)
    (path / "params.yaml").write_text(PARAMS)
    (path / "stages.py").write_text(STAGES_PY)
    (path / "dvc.yaml").write_text(DVC_YAML + extra_stages)
    sh(["git", "init", "-q"], path)
    sh([sys.executable, "-m", "dvc", "init", "-q"], path)
    sh(
        [sys.executable, "-m", "dvc", "remote", "add", "-d", "local", str(path.parent / "remote")],
        path,
    )
    return path


def logs_and_artifacts(flow_run_id: Any) -> tuple[list[str], list[Any]]:
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
