""".ci/run, CI's entry point: it installs Chromium when none is on PATH (for the browser tests),
never fails for want of apt when Chromium is there, sets CI=1 and runs the README's `make test`.

Real parts: the script under bash; ``make``, ``apt-get``, ``sudo`` and ``chromium`` are small
stand-in scripts on a PATH that holds nothing else but the few tools the script uses."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TOOLS = ("bash", "dirname", "id", "mktemp", "rm", "tail", "chmod", "touch")  # + the stubs


def _stub(folder: Path, name: str, body: str) -> None:
    path = folder / name
    path.write_text(f"#!/bin/bash\n{body}\n")
    path.chmod(0o755)


@pytest.fixture
def bin_dir(tmp_path: Path) -> Path:
    """A PATH folder with the tools .ci/run needs and a `make` that records how it was called."""
    folder = tmp_path / "bin"
    folder.mkdir()
    for tool in TOOLS:
        (folder / tool).symlink_to(shutil.which(tool))
    _stub(folder, "make", f'echo "make $* CI=$CI" >> {tmp_path}/calls; exit "${{MAKE_RC:-0}}"')
    _stub(folder, "sudo", 'shift; exec "$@"')  # `sudo -n CMD`, for a run that is not root
    return folder


def _run(bin_dir: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(bin_dir / "bash"), str(ROOT / ".ci" / "run")],
        env={"PATH": str(bin_dir), "HOME": str(bin_dir.parent), **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def _calls(bin_dir: Path) -> list[str]:
    path = bin_dir.parent / "calls"
    return path.read_text().splitlines() if path.is_file() else []


def _apt(bin_dir: Path, fail_first_install: bool) -> None:
    """An apt-get whose first install fails (no package lists yet) when asked; a successful
    install puts a `chromium` on PATH."""
    log = bin_dir.parent / "calls"
    fail = f'[ "$1" = install ] && [ ! -e {bin_dir.parent}/updated ] && exit 100' * (
        fail_first_install
    )
    _stub(
        bin_dir,
        "apt-get",
        f'echo "apt-get $*" >> {log}\n{fail}\n[ "$1" = update ] && touch {bin_dir.parent}/updated\n'
        f'[ "$1" = install ] && printf "#!/bin/bash\\n" > {bin_dir}/chromium '
        f"&& chmod +x {bin_dir}/chromium\nexit 0",
    )


def test_with_chromium_there_apt_is_not_needed_and_make_test_runs_with_ci_set(
    bin_dir: Path,
) -> None:
    _stub(bin_dir, "chromium", "exit 0")
    done = _run(bin_dir)
    assert done.returncode == 0, done.stderr
    assert _calls(bin_dir) == ["make test CI=1"]


def test_a_missing_chromium_is_installed_updating_the_package_lists_if_need_be(
    bin_dir: Path,
) -> None:
    _apt(bin_dir, fail_first_install=True)
    done = _run(bin_dir)
    assert done.returncode == 0, done.stderr
    install = "apt-get install -y --no-install-recommends chromium"
    assert _calls(bin_dir) == [install, "apt-get update", install, "make test CI=1"]
    assert (bin_dir / "chromium").is_file() and "installed chromium" in done.stdout


def test_without_apt_the_tests_still_run_and_their_result_is_the_result(bin_dir: Path) -> None:
    done = _run(bin_dir, MAKE_RC="3")
    assert done.returncode == 3
    assert "no chromium and no apt-get" in done.stderr
    assert _calls(bin_dir) == ["make test CI=1"]


def test_an_install_that_fails_warns_and_goes_on(bin_dir: Path) -> None:
    _stub(bin_dir, "apt-get", f'echo "apt-get $*" >> {bin_dir.parent}/calls; echo E: no; exit 100')
    done = _run(bin_dir)
    assert done.returncode == 0
    assert "could not install chromium" in done.stderr and "E: no" in done.stderr
    install = "apt-get install -y --no-install-recommends chromium"
    assert _calls(bin_dir) == [install, "apt-get update", "make test CI=1"]
