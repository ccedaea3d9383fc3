"""What the flow publishes (pipelines/summary.py): the summary markdown and the per-family
table, from stage outputs in miniature."""

from __future__ import annotations

import json
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml

from pipelines.summary import mlflow_lines, per_family_table, summary_markdown
from tests.factories import serving
from tests.pipelines.project import SECRET


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
