"""The stage DAG read from dvc.yaml (pipelines/dag.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from pipelines.dag import read_stages, stage_order

ROOT = Path(__file__).resolve().parents[2]


def test_stage_order_of_the_real_pipeline() -> None:
    order = stage_order(ROOT / "dvc.yaml")
    for before, after in [("collect", "synthesize"), ("synthesize", "validate")]:
        assert order.index(before) < order.index(after)
    assert order.index("synthesize") < order.index("train")
    assert set(order) == {s.name for s in read_stages(ROOT / "dvc.yaml")}


def test_the_protocol_stages_join_the_flow_after_their_sets_and_the_model(tmp_path: Path) -> None:
    """With protocols on (profiles/paper.yaml), each set and each protocol is a flow task: a
    protocol after every set, the model and collect."""
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["protocols"] = {"run": ["real"], "sets": {"lol-v1": {}, "real-photos": {}}}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    (tmp_path / "dvc.yaml").write_text((ROOT / "dvc.yaml").read_text())
    order = stage_order(tmp_path / "dvc.yaml")
    last = order.index("protocols@real")
    for before in ("testset@lol-v1", "testset@real-photos", "train", "collect"):
        assert order.index(before) < last, before
    outs = {s.name: s.outs for s in read_stages(tmp_path / "dvc.yaml")}
    assert outs["protocols@real"] == ("metrics/protocols/real.json",)


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
