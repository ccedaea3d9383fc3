"""``girml pull data`` (pipelines/pull_dvc.py): data through DVC from an S3 remote.

Real services only: a moto S3 server over HTTP (``s3_server``), a git + DVC repository whose
remote is on it, the real ``dvc`` and ``git`` CLIs.
"""

from __future__ import annotations

import hashlib
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from girml.core.imageio import write_png
from girml.storage import s3
from pipelines.cli import app
from pipelines.dvc_run import run_dvc
from pipelines.pull_checks import PullError
from pipelines.pull_dvc import find_dvc_root, pull_data
from tests.factories import textured_image
from tests.pipelines.pull_common import KEY_ID, SECRET, runner

DVC_BUCKET = "girml-test-dvc"
GIT = ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", "-c", "commit.gpgsign=0"]
pytestmark = pytest.mark.usefixtures("restore_environ")


@dataclass(frozen=True)
class Origin:
    """A git + DVC repository whose data lives on the moto S3 (tags v1 and v2 pushed)."""

    path: Path
    v1: dict[str, bytes]
    v2: dict[str, bytes]


def _tree(folder: Path) -> dict[str, bytes]:
    return {
        p.relative_to(folder).as_posix(): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def _git(cwd: Path, *args: str) -> None:
    subprocess.run([*GIT, *args], cwd=cwd, check=True, capture_output=True)


@pytest.fixture(scope="module")
def origin(aws: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Origin]:
    repo = tmp_path_factory.mktemp("origin")
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(repo)
        patch.setenv("GIT_CEILING_DIRECTORIES", str(repo.parent))
        s3.make_client().create_bucket(Bucket=DVC_BUCKET)
        _git(repo, "init", "-q")
        run_dvc(["init", "-q"], repo)
        bench = repo / "data" / "bench"
        for i, rel in enumerate(["single-id/noise/0.png", "single-id/noise/1.png"]):
            write_png(bench / rel, textured_image(i, 16, 16))
        write_png(bench / "single-id/blur/0.png", textured_image(2, 16, 16))
        write_png(bench / "mixed/noise+blur/0.png", textured_image(3, 16, 16))
        endpoint = aws["AWS_ENDPOINT_URL"]
        args = ["remote", "s3", f"{DVC_BUCKET}/dvc", "--endpoint-url", endpoint, "--default"]
        result = runner.invoke(app, args)
        assert result.exit_code == 0, result.output
        v1 = _tree(bench / "single-id")
        for tag in ("v1", "v2"):
            if tag == "v2":  # a new data version: one image changes
                write_png(bench / "single-id/noise/1.png", textured_image(9, 16, 16))
            run_dvc(["add", "-q", "data/bench"], repo)
            _git(repo, "add", "-A")
            _git(repo, "commit", "-qm", tag)
            _git(repo, "tag", tag)
            run_dvc(["push", "-q"], repo)
        yield Origin(repo, v1, _tree(bench / "single-id"))


def _clone(origin: Origin, dest: Path) -> Path:
    _git(origin.path.parent, "clone", "-q", str(origin.path), str(dest))
    return dest


@pytest.mark.slow
def test_dvc_push_clone_pull_round_trip(
    origin: Origin, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = (origin.path / ".dvc" / "config").read_text()
    assert f"url = s3://{DVC_BUCKET}/dvc" in config and "endpointurl = http://127.0.0.1:" in config
    assert SECRET not in config and KEY_ID not in config
    keys = [o.key for o in s3.iter_objects(DVC_BUCKET, "dvc/")]
    assert any(key.endswith(".dir") for key in keys)

    clone = _clone(origin, tmp_path / "clone")
    monkeypatch.chdir(clone / "data")  # targets are relative to the working directory
    result = runner.invoke(app, ["pull", "data", "bench/single-id"])
    assert result.exit_code == 0, result.output
    assert "3 files md5-verified" in result.output
    assert _tree(clone / "data/bench/single-id") == origin.v2
    assert not (clone / "data/bench/mixed").exists()  # only the suite asked for was fetched
    assert SECRET not in result.output


@pytest.mark.slow
def test_dvc_get_a_revision_from_a_clean_directory(
    origin: Origin, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    args = ["pull", "data", "data/bench/single-id", "--repo", str(origin.path), "--rev", "v1"]
    result = runner.invoke(app, [*args, "-o", "suite"])
    assert result.exit_code == 0, result.output
    assert _tree(tmp_path / "suite") == origin.v1 != origin.v2

    no_repo = runner.invoke(app, ["pull", "data", "data/bench/single-id", "--rev", "v1"])
    assert no_repo.exit_code == 1 and "--repo" in no_repo.output
    outside = runner.invoke(app, ["pull", "data", "data/bench/single-id"])
    assert outside.exit_code == 1 and "not inside a DVC project" in outside.output


@pytest.mark.slow
def test_corrupt_remote_object_is_detected(
    origin: Origin, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    md5 = hashlib.md5(origin.v2["noise/0.png"]).hexdigest()
    key = f"dvc/files/md5/{md5[:2]}/{md5[2:]}"
    client = s3.make_client()
    good = s3.get_bytes(DVC_BUCKET, key, client=client)
    client.put_object(Bucket=DVC_BUCKET, Key=key, Body=good[:-1] + b"\x00")
    try:
        clone = _clone(origin, tmp_path / "clone")
        monkeypatch.chdir(clone)
        result = runner.invoke(app, ["pull", "data", "data/bench/single-id"])
    finally:
        client.put_object(Bucket=DVC_BUCKET, Key=key, Body=good)
    assert result.exit_code == 1
    assert "noise/0.png: md5" in result.output and md5 in result.output


def test_the_project_is_found_above_and_options_need_a_repo(tmp_path: Path) -> None:
    (tmp_path / ".dvc").mkdir()
    (tmp_path / "data" / "bench").mkdir(parents=True)
    assert find_dvc_root(tmp_path / "data" / "bench") == tmp_path.resolve()
    bare = tmp_path.parent / f"{tmp_path.name}-bare"
    bare.mkdir()
    with pytest.raises(PullError, match="is not inside a DVC project: run there, or pass --repo"):
        find_dvc_root(bare)
    for options in ({"rev": "v1"}, {"out": Path("x")}):
        with pytest.raises(PullError, match="--rev and --out need --repo"):
            pull_data("data/bench", tmp_path, **options)  # type: ignore[arg-type]
