"""The ``dvc.lock`` reader of a release (girml/artifacts/dvc_lock.py): stages, commands and
output hashes, and a lock that is absent or empty."""

from __future__ import annotations

from pathlib import Path

import yaml

from girml.artifacts.dvc_lock import lock_out_md5, lock_stage, read_lock

LOCK = {
    "schema": "2.0",
    "stages": {
        "train": {"cmd": "girml train --params params.yaml", "outs": []},
        "synthesize": {
            "cmd": "girml synthesize --params params.yaml",
            "params": {"params.yaml": {"degradations": {"families": {}}}},
            "outs": [
                {"path": "data/pairs", "md5": "9e03.dir", "size": 10},
                {"path": "data/bench", "hash": "md5"},  # no md5 recorded
            ],
        },
        "broken": "not a mapping",
    },
}


def test_stages_commands_and_output_hashes(tmp_path: Path) -> None:
    path = tmp_path / "dvc.lock"
    path.write_text(yaml.safe_dump(LOCK), encoding="utf-8")
    lock = read_lock(path)
    assert lock_stage(lock, "train")["cmd"] == "girml train --params params.yaml"
    assert lock_stage(lock, "nope") == {} and lock_stage(lock, "broken") == {}
    assert lock_out_md5(lock, "synthesize", "data/pairs") == "9e03.dir"
    assert lock_out_md5(lock, "synthesize", "data/bench") is None
    assert lock_out_md5(lock, "synthesize", "data/other") is None
    assert lock_out_md5(lock, "collect", "data/clean") is None


def test_an_absent_or_empty_lock_reads_as_no_stages(tmp_path: Path) -> None:
    assert read_lock(tmp_path / "dvc.lock") == {}
    empty = tmp_path / "empty.lock"
    empty.write_text("", encoding="utf-8")
    assert read_lock(empty) == {}
    assert lock_stage({}, "train") == {} and lock_stage({"stages": None}, "train") == {}
