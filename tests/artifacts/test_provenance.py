"""Where a release comes from (girml/artifacts/provenance.py): the spec hash, the training data,
the profile, the notes where the working tree no longer matches the training run, and no path
of the release machine."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from girml.artifacts.provenance import (
    ReleaseSource,
    photo_set,
    portable_text,
    release_provenance,
    spec_sha256,
    training_data,
)
from girml.artifacts.training_run import TrainingRun
from girml.config import DegradationsConfig
from tests.artifacts.common import TINY, tiny_model
from tests.factories import synthesize_tiny, tiny_params


def test_spec_hash_is_canonical(spec: DegradationsConfig) -> None:
    raw = tiny_params()["degradations"]
    reordered = dict(reversed(list(raw.items())))
    same = DegradationsConfig.model_validate(reordered)
    assert spec_sha256(same) == spec_sha256(spec)
    raw_changed = json.loads(json.dumps(raw))
    raw_changed["families"]["noise"]["ops"]["gaussian_noise"]["params"]["sigma"]["id"] = [15, 51]
    assert spec_sha256(DegradationsConfig.model_validate(raw_changed)) != spec_sha256(spec)


def test_training_data_lists_train_ids_and_hashes(tmp_path: Path) -> None:
    root = synthesize_tiny(tmp_path)
    data = training_data(root / "clean" / "manifest.csv", root / "pairs" / "train" / "pairs.jsonl")
    assert data.clean_train_ids == ["a0000000000000a1", "a0000000000000a2", "a0000000000000a6"]
    assert data.n_clean_train == 3 and data.n_train_pairs == 24
    assert len(data.manifest_sha256 or "") == 64 and len(data.pairs_sha256 or "") == 64
    missing = training_data(tmp_path / "no.csv", tmp_path / "no.jsonl")
    assert missing.n_clean_train is None and missing.pairs_sha256 is None
    assert data.photo_credits == [] and data.package_pins_sha256 is None  # builtin only
    assert data.sources == {"folder": {"test": 2, "train": 3, "val": 1}}


def test_photo_sets_are_named() -> None:
    assert photo_set("builtin", "astronaut") == "skimage.data"
    assert photo_set("builtin", "china") == "sklearn.datasets.images"
    assert photo_set("packages", "gnome-backgrounds:/usr/share/x.jpg") == "debian:gnome-backgrounds"
    assert photo_set("s3", "s3://bucket/a.png") == "s3"


def test_portable_text_leaves_no_path_of_this_machine(tmp_path: Path) -> None:
    root = tmp_path / "project"
    text = (
        f"girml release --model {root}/models/latest -o {root} --real-photos "
        f"{tmp_path}/elsewhere/real.json --json={tmp_path}/x.json; store "
        f"sqlite:///{root}/mlflow.db ('{tmp_path}/q.csv')"
    )
    assert portable_text(text, root) == (
        "girml release --model models/latest -o . --real-photos path/to/real.json "
        "--json=path/to/x.json; store sqlite:///mlflow.db ('path/to/q.csv')"
    )
    plain = "girml release --model models:/gir-restorer@champion -o models/release"
    assert portable_text(plain, root) == plain


def source(**fields: object) -> ReleaseSource:
    """A model to release as :func:`girml.artifacts.make_release.open_source` describes it."""
    base = dict(
        model=tiny_model(0),
        model_cfg=TINY,
        version=None,
        run_id=None,
        tags={},
        params={},
        metrics={},
        folder_config={},
        notes=[],
    )
    return ReleaseSource(**{**base, **fields})


def test_provenance_from_the_run_and_notes_where_the_tree_drifted(
    tmp_path: Path, spec: DegradationsConfig
) -> None:
    other = json.loads(json.dumps(tiny_params()["degradations"]))  # another noise level
    other["families"]["noise"]["ops"]["gaussian_noise"]["params"]["sigma"]["id"] = [15, 51]
    lock = {
        "stages": {
            "train": {"cmd": "girml train --params params.yaml"},
            "collect": {"outs": [{"path": "data/clean", "md5": "new1.dir"}]},
            "synthesize": {
                "outs": [{"path": "data/pairs", "md5": "same.dir"}],
                "params": {"params.yaml": {"degradations": other}},
            },
        }
    }
    (tmp_path / "dvc.lock").write_text(yaml.safe_dump(lock), encoding="utf-8")
    tags = {"git_commit": "e" * 40, "git_dirty": "true", "init_from": "release"}
    tags |= {"dvc.data/clean": "old1.dir", "dvc.data/pairs": "same.dir", "stage": "train"}
    src = source(
        version=4,
        run_id="r4",
        tags=tags,
        metrics={"steps": 90.0, "train_seconds": 12.0, "system/gpu_0_utilization": 50.0},
        notes=["from the run"],
    )
    prov = release_provenance(
        src,
        "models:/gir-restorer/4",
        dvc_lock=tmp_path / "dvc.lock",
        spec=spec,
        spec_source="params.yaml: degradations",
        manifest=tmp_path / "no.csv",
        pairs_jsonl=tmp_path / "no.jsonl",
        command="girml release --model models:/gir-restorer/4",
    )
    assert (prov.registered_model, prov.registered_version, prov.run_id) == (
        "gir-restorer",
        4,
        "r4",
    )
    assert (prov.git_commit, prov.git_dirty, prov.init_from) == ("e" * 40, "true", "release")
    assert prov.train_command == "girml train --params params.yaml"
    assert (prov.steps, prov.train_seconds) == (90, 12.0)
    assert prov.hardware.startswith("1 GPU(s) (from the run's MLflow system metrics")
    assert prov.dvc_hashes == {"data/clean": "old1.dir", "data/pairs": "same.dir"}
    assert prov.degradation_spec_sha256 == spec_sha256(spec)
    assert prov.notes[0] == "from the run"
    assert prov.notes[1].startswith("data/clean in this working tree (dvc.lock md5 new1.dir)")
    assert "differ from those that synthesized data/pairs" in prov.notes[2]
    assert len(prov.notes) == 3  # data/pairs did not change


def test_provenance_without_a_run_or_a_lock(tmp_path: Path, spec: DegradationsConfig) -> None:
    run = TrainingRun(source=tmp_path / "train.json", hardware="Test CPU", steps=5)
    src = source(folder_config={"train": {"init_from": "models/old"}}, run=run)
    prov = release_provenance(
        src,
        "models/latest",
        dvc_lock=tmp_path / "dvc.lock",
        spec=spec,
        spec_source="params.yaml: degradations",
        manifest=tmp_path / "no.csv",
        pairs_jsonl=tmp_path / "no.jsonl",
        command="girml release",
    )
    assert prov.registered_model is None and prov.run_id is None
    assert (prov.git_commit, prov.params_hash) == ("unknown", None)
    assert prov.train_command == "girml train"  # a trained folder, no dvc.lock
    assert (prov.init_from, prov.steps, prov.hardware) == ("models/old", 5, "Test CPU")
    assert prov.train_seconds is None and prov.notes == [] and prov.dvc_hashes == {}
    assert prov.data.n_clean_train is None


def test_profile_from_the_release_or_the_run_and_portable_paths(
    tmp_path: Path, spec: DegradationsConfig
) -> None:
    root = tmp_path / "project"
    common = dict(
        dvc_lock=tmp_path / "dvc.lock",
        spec=spec,
        spec_source="params.yaml: degradations",
        manifest=root / "data" / "clean" / "manifest.csv",
        pairs_jsonl=root / "data" / "pairs" / "train" / "pairs.jsonl",
    )
    tagged = source(tags={"profile": "profiles/long.yaml"}, notes=[f"no store at {root}/x.db"])
    prov = release_provenance(
        tagged, f"{root}/models/latest", command=f"girml release -o {root}/r", **common
    )
    assert prov.profile == "profiles/long.yaml"  # the run's tag
    assert f"{root}/models/latest" == prov.source  # no project root: kept as given
    prov = release_provenance(
        tagged,
        f"{root}/models/latest",
        command=f"girml release -o {root}/r --real-photos /abs/real.json",
        profile="profiles/release.yaml",
        project_root=root,
        **common,
    )
    assert prov.profile == "profiles/release.yaml"  # girml release --profile wins, noted
    assert prov.notes[-1].startswith("--profile profiles/release.yaml differs from the training")
    assert (prov.source, prov.notes[0]) == ("models/latest", "no store at x.db")
    assert prov.release_command == "girml release -o r --real-photos path/to/real.json"
    assert (prov.data.manifest, prov.data.pairs) == (
        "data/clean/manifest.csv",
        "data/pairs/train/pairs.jsonl",
    )
    assert str(tmp_path) not in prov.model_dump_json()
    untagged = release_provenance(source(), "models/latest", command="girml release", **common)
    assert untagged.profile is None
    named = source(tags={"profile": "long"})  # the tag the train stage writes: a name
    prov = release_provenance(named, "m", command="c", profile="profiles/long.yaml", **common)
    assert prov.profile == "profiles/long.yaml" and prov.notes == []  # the same profile
