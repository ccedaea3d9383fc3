"""Provenance tags (girml/tracking/provenance.py) of a real git work tree with a dvc.lock."""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

import pytest
import yaml

from girml.tracking.provenance import dvc_output_hashes, pipeline_paths, provenance_tags

LOCK = {
    "schema": "2.0",
    "stages": {
        "collect": {
            "cmd": "girml collect",
            "outs": [
                {"path": "data/clean/images", "hash": "md5", "md5": "6acb7def.dir"},
                {"path": "data/clean/manifest.csv", "hash": "md5", "md5": "5e233330"},
            ],
        },
        "synthesize": {"cmd": "girml synthesize", "deps": [{"path": "data/clean/images"}]},
    },
}
DVC_YAML = {
    "stages": {
        "train": {
            "cmd": "girml train",
            "outs": ["models/latest"],
            "metrics": [{"metrics/train.json": {"cache": False, "persist": True}}],
        },
        "approach": {
            "foreach": "${study.approaches}",
            "do": {"cmd": "girml approach ${key}", "outs": ["models/approaches/${key}"]},
        },
        "evaluate": {"cmd": "girml evaluate", "plots": [{"plots/psnr.csv": {"cache": False}}]},
    }
}


@pytest.fixture(autouse=True)
def no_outer_git(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep git from finding a repository above tmp_path."""
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A committed git work tree with params.yaml and a dvc.lock."""
    root = tmp_path / "project"
    root.mkdir()
    (root / "params.yaml").write_text("train:\n  steps: 3\n", encoding="utf-8")
    (root / "dvc.lock").write_text(yaml.safe_dump(LOCK), encoding="utf-8")
    (root / "code.py").write_text("x = 1\n", encoding="utf-8")
    (root / "metrics").mkdir()
    (root / "metrics" / "train.json").write_text("{}\n", encoding="utf-8")
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", "-c", "commit.gpgsign=0"]
    subprocess.run([*git, "init", "-q"], cwd=root, check=True)
    subprocess.run([*git, "add", "."], cwd=root, check=True)
    subprocess.run([*git, "commit", "-qm", "init"], cwd=root, check=True)
    return root


def test_tags_pin_commit_outputs_and_params(project: Path) -> None:
    tags = provenance_tags(project, Path("params.yaml"))
    head = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=project, capture_output=True, text=True, check=True
    ).stdout.strip()
    assert tags["git_commit"] == head and len(head) == 40
    assert tags["git_dirty"] == "false"
    assert tags["dvc.data/clean/images"] == "6acb7def.dir"
    assert tags["dvc.data/clean/manifest.csv"] == "5e233330"
    params_hash = hashlib.sha256((project / "params.yaml").read_bytes()).hexdigest()[:16]
    assert tags["params_hash"] == params_hash
    assert set(tags) == {
        "git_commit",
        "git_dirty",
        "dvc.data/clean/images",
        "dvc.data/clean/manifest.csv",
        "params_hash",
        "profile",
    }
    assert tags["profile"] == "custom"  # the file names no profile
    (project / "params.yaml").write_text("profile: smoke\ntrain:\n  steps: 3\n")
    assert provenance_tags(project, Path("params.yaml"))["profile"] == "smoke"


def test_pipeline_outputs_leave_the_tree_clean(project: Path) -> None:
    """What dvc repro and MLflow write does not make a run dirty; code and params do."""
    (project / "dvc.yaml").write_text(yaml.safe_dump(DVC_YAML), encoding="utf-8")
    subprocess.run(["git", "add", "dvc.yaml"], cwd=project, check=True)
    subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-qm", "dvc"],
        cwd=project,
        check=True,
    )
    assert pipeline_paths(project)[:3] == [".girml", "checkpoints", "dvc.lock"]
    assert {"models/approaches", "models/.gitignore", "plots/psnr.csv"} <= set(
        pipeline_paths(project)
    )
    (project / "dvc.lock").write_text("schema: '2.0'\nstages: {}\n", encoding="utf-8")
    (project / "metrics" / "train.json").write_text('{"steps": 3}\n', encoding="utf-8")
    for written in (
        "mlflow.db",
        "mlartifacts/1/a/artifacts/model.bin",
        "models/latest/weights.pt",
        "models/approaches/plain/weights.pt",
        "models/.gitignore",
        "plots/psnr.csv",
        "checkpoints/train/checkpoint-3/state.pt",
    ):
        (project / written).parent.mkdir(parents=True, exist_ok=True)
        (project / written).write_text("x\n", encoding="utf-8")
    assert provenance_tags(project, Path("params.yaml"))["git_dirty"] == "false"
    (project / "models" / "notes.txt").write_text("mine\n", encoding="utf-8")  # not an output
    assert provenance_tags(project, Path("params.yaml"))["git_dirty"] == "true"
    (project / "models" / "notes.txt").unlink()
    subprocess.run(["git", "mv", "code.py", "renamed.py"], cwd=project, check=True)
    assert provenance_tags(project, Path("params.yaml"))["git_dirty"] == "true"


def test_bad_dvc_yaml_is_named(project: Path) -> None:
    (project / "dvc.yaml").write_text("stages: [unclosed\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"dvc\.yaml: not valid YAML"):
        pipeline_paths(project)
    (project / "dvc.yaml").write_text("stages: [1, 2]\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"dvc\.yaml: unexpected"):
        pipeline_paths(project)


def test_provenance_marks_dirty_tree(project: Path) -> None:
    (project / "params.yaml").write_text("train:\n  steps: 4\n", encoding="utf-8")
    assert provenance_tags(project, Path("params.yaml"))["git_dirty"] == "true"
    (project / "params.yaml").write_text("train:\n  steps: 3\n", encoding="utf-8")
    assert provenance_tags(project, Path("params.yaml"))["git_dirty"] == "false"
    (project / "new_module.py").write_text("y = 2\n", encoding="utf-8")  # untracked code
    assert provenance_tags(project, Path("params.yaml"))["git_dirty"] == "true"


def test_provenance_outside_git_and_bad_inputs(tmp_path: Path) -> None:
    (tmp_path / "params.yaml").write_text("a: 1\n", encoding="utf-8")
    tags = provenance_tags(tmp_path, tmp_path / "params.yaml")
    assert tags["git_commit"] == "unknown" and tags["git_dirty"] == "unknown"
    assert tags["profile"] == "custom"
    assert not any(key.startswith("dvc.") for key in tags)
    assert dvc_output_hashes(tmp_path / "dvc.lock") == {}  # no stage has run yet
    with pytest.raises(FileNotFoundError, match=r"nope\.yaml"):
        provenance_tags(tmp_path, Path("nope.yaml"))
    (tmp_path / "dvc.lock").write_text("stages: [unclosed\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"dvc\.lock"):
        dvc_output_hashes(tmp_path / "dvc.lock")
    (tmp_path / "dvc.lock").write_text("stages: [1, 2]\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"dvc\.lock"):
        dvc_output_hashes(tmp_path / "dvc.lock")
