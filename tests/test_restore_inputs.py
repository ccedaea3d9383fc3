"""``plan_restore`` (girml/restore_inputs.py): output names that mirror the inputs, clashes
refused naming both inputs, and each input checked without decoding it, before a model loads.

Real files, folders, links and a FIFO in ``tmp_path``; nothing is restored here.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import girml.restore_inputs
from girml.restore_inputs import Job, check_input, plan_restore

CAP = 1000


def touch(path: Path, size: int = 10) -> Path:
    """A file of ``size`` bytes (its content is never decoded by the plan)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x" * size)
    return path


def outputs(inputs: list[Path], out: Path) -> dict[str, str]:
    """``{input relative to out's parent: output relative to out}`` of the plan's jobs."""
    plan = plan_restore(inputs, out, CAP)
    assert not plan.failures, plan.failures
    root = out.parent
    return {
        job.source.relative_to(root).as_posix(): job.output.relative_to(out).as_posix()
        for job in plan.jobs
    }


def test_one_folder_is_mirrored_at_the_top_and_files_go_to_the_top(tmp_path: Path) -> None:
    for rel in ["in/a.png", "in/sub/b.jpg", "in/sub/deep/c.tif", "in/.hidden/d.png", "e.png"]:
        touch(tmp_path / rel)
    touch(tmp_path / "in" / "notes.txt")
    out = tmp_path / "out"
    assert outputs([tmp_path / "in", tmp_path / "e.png"], out) == {
        "in/a.png": "a.png",
        "in/sub/b.jpg": "sub/b.png",
        "in/sub/deep/c.tif": "sub/deep/c.png",
        "e.png": "e.png",
    }


def test_several_folders_each_go_under_their_own_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for rel in ["2023/x.png", "2023/sub/y.png", "2024/x.png", "loose/x.jpg"]:
        touch(tmp_path / rel)
    out = tmp_path / "out"
    assert outputs([tmp_path / "2023", tmp_path / "2024", tmp_path / "loose" / "x.jpg"], out) == {
        "2023/x.png": "2023/x.png",
        "2023/sub/y.png": "2023/sub/y.png",
        "2024/x.png": "2024/x.png",
        "loose/x.jpg": "x.png",
    }
    # "." is named after the folder it stands for
    monkeypatch.chdir(tmp_path / "2023")
    plan = plan_restore([Path("."), tmp_path / "2024"], out, CAP)
    assert [job.output.relative_to(out).as_posix() for job in plan.jobs] == [
        "2023/sub/y.png",
        "2023/x.png",
        "2024/x.png",
    ]


def test_files_sharing_a_stem_in_one_folder_keep_their_full_names(tmp_path: Path) -> None:
    for name in ("a.jpg", "a.png", "b.png"):
        touch(tmp_path / "in" / name)
    out = tmp_path / "out"
    assert outputs([tmp_path / "in"], out) == {
        "in/a.jpg": "a.jpg.png",
        "in/a.png": "a.png.png",
        "in/b.png": "b.png",
    }
    # the same rule for files named directly
    named = [tmp_path / "in" / "a.jpg", tmp_path / "in" / "a.png"]
    assert list(outputs(named, out).values()) == ["a.jpg.png", "a.png.png"]


def test_the_same_file_reached_twice_is_restored_once(tmp_path: Path) -> None:
    image = touch(tmp_path / "in" / "a.png")
    plan = plan_restore([tmp_path / "in", image, image], tmp_path / "out", CAP)
    assert plan.jobs == [Job(image, tmp_path / "out" / "a.png")]


@pytest.mark.parametrize(
    ("files", "inputs", "first", "second", "output"),
    [
        # two files named directly, from two folders (before: x.png.png and x.png-1.png)
        (["a/x.png", "b/x.png"], ["a/x.png", "b/x.png"], "a/x.png", "b/x.png", "x.png"),
        # one folder and a file named directly
        (["in/x.jpg", "b/x.png"], ["in", "b/x.png"], "in/x.jpg", "b/x.png", "x.png"),
        # two folders of the same name
        (["a/in/x.png", "b/in/x.png"], ["a/in", "b/in"], "a/in/x.png", "b/in/x.png", "in/x.png"),
    ],
)
def test_two_inputs_for_one_output_are_an_error_naming_both(
    tmp_path: Path, files: list[str], inputs: list[str], first: str, second: str, output: str
) -> None:
    for rel in files:
        touch(tmp_path / rel)
    out = tmp_path / "out"
    with pytest.raises(ValueError) as info:
        plan_restore([tmp_path / rel for rel in inputs], out, CAP)
    assert str(info.value) == (
        f"{tmp_path / first} and {tmp_path / second} would both be restored to {out / output}; "
        "restore them into different -o folders, or pass the folders that hold them"
    )
    assert not out.exists()


def test_an_output_another_needs_as_a_folder_is_an_error(tmp_path: Path) -> None:
    """``a/x.png/y.png`` (a folder named like an image) and a file ``x.png`` named directly."""
    nested, flat = touch(tmp_path / "in" / "x.png" / "y.png"), touch(tmp_path / "x.png")
    with pytest.raises(ValueError, match=r"which .* needs as a folder") as info:
        plan_restore([tmp_path / "in", flat], tmp_path / "out", CAP)
    assert str(flat) in str(info.value) and str(nested) in str(info.value)


def test_an_output_over_an_input_is_refused(tmp_path: Path) -> None:
    touch(tmp_path / "in" / "a.png")
    with pytest.raises(ValueError, match="would overwrite an input"):
        plan_restore([tmp_path / "in"], tmp_path / "in", CAP)


def test_inputs_are_checked_without_decoding(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "in"
    good = touch(folder / "good.png")
    big = touch(folder / "big.png", CAP + 1)
    os.mkfifo(folder / "pipe.png")  # reading it would wait for a writer forever
    (folder / "dangling.png").symlink_to(tmp_path / "gone.png")
    locked = touch(folder / "locked.png")
    locked.chmod(0)
    missing = tmp_path / "missing.jpg"
    broken_arg = tmp_path / "link.png"
    broken_arg.symlink_to(tmp_path / "nowhere.png")
    if os.geteuid() == 0:  # root opens any file: refuse this one as the kernel would others

        def denied(path: Path) -> str | None:
            return "unreadable file (Permission denied)" if path == locked else None

        monkeypatch.setattr(girml.restore_inputs, "_open_problem", denied)

    plan = plan_restore([folder, missing, broken_arg], tmp_path / "out", CAP)
    assert plan.jobs == [Job(good, tmp_path / "out" / "good.png")]
    assert plan.failures == [
        (folder / "dangling.png", f"broken symbolic link to {tmp_path / 'gone.png'}"),
        (folder / "pipe.png", "not a regular file"),
        (missing, "no such file or folder"),
        (broken_arg, f"broken symbolic link to {tmp_path / 'nowhere.png'}"),
        (
            big,
            f"file too large: {CAP + 1} bytes exceeds max_file_bytes={CAP} "
            "(raise it with --max-file-bytes)",
        ),
        (locked, "unreadable file (Permission denied)"),
    ]
    assert not (tmp_path / "out").exists()


def test_check_input_on_its_own(tmp_path: Path) -> None:
    image = touch(tmp_path / "a.png", 5)
    assert check_input(image, 5) is None
    assert check_input(image, 4).startswith("file too large: 5 bytes exceeds max_file_bytes=4")
    assert check_input(tmp_path, 5) == "not a regular file"
    assert check_input(tmp_path / "b.png", 5) == "no such file or folder"
