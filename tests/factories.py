"""Tiny, deterministic inputs shared by tests: textured images, a clean set, small params."""

from __future__ import annotations

import csv
import os
import signal
import socketserver
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from scipy.ndimage import gaussian_filter

from girml.config import ModelConfig
from girml.core.imageio import write_png
from girml.models import build_model

REPO = Path(__file__).resolve().parents[1]


def textured_image(seed: int, height: int = 96, width: int = 128) -> np.ndarray:
    """A photo-like RGB uint8 (H, W, 3) image: smooth colour blobs plus fine texture and edges."""
    rng = np.random.default_rng(seed)
    base = gaussian_filter(rng.random((height, width, 3)), sigma=(6, 6, 0))
    fine = gaussian_filter(rng.random((height, width, 3)), sigma=(1, 1, 0))
    img = 0.6 * (base - base.min()) / np.ptp(base) + 0.4 * fine
    img[height // 3 : height // 2, width // 4 : width // 2] *= 0.5  # a hard edge
    return (np.clip(img, 0, 1) * 255).round().astype(np.uint8)


def _paeth(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    p = a + b - c
    pa, pb, pc = np.abs(p - a), np.abs(p - b), np.abs(p - c)
    return np.where((pa <= pb) & (pa <= pc), a, np.where(pb <= pc, b, c))


def write_png16(path: Path, samples: np.ndarray, info: dict[bytes, bytes] | None = None) -> Path:
    """A 16-bit PNG of ``samples``, (H, W, C) uint16 with C = 2 (grey+alpha), 3 or 4, written by
    hand (Pillow cannot write 16-bit colour). Rows cycle through the five PNG filters, so a
    reader that undoes them with the wrong pixel width gets other values. ``info`` adds
    chunks (``{b"tRNS": ...}``) before the image data."""
    import struct
    import zlib

    height, width, channels = samples.shape
    raw = samples.astype(">u2").view(np.uint8).reshape(height, width * channels * 2).astype(int)
    bpp = channels * 2
    rows = []
    for y in range(height):
        line, prior = raw[y], raw[y - 1] if y else np.zeros_like(raw[0])
        left = np.concatenate([np.zeros(bpp, int), line[:-bpp]])
        upleft = np.concatenate([np.zeros(bpp, int), prior[:-bpp]])
        kind = y % 5
        predicted = [0, left, prior, (left + prior) // 2, _paeth(left, prior, upleft)][kind]
        rows.append(bytes([kind]) + ((line - predicted) % 256).astype(np.uint8).tobytes())

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))

    color_type = {2: 4, 3: 2, 4: 6}[channels]
    header = struct.pack(">IIBBBBB", width, height, 16, color_type, 0, 0, 0)
    extra = b"".join(chunk(tag, data) for tag, data in (info or {}).items())
    body = chunk(b"IDAT", zlib.compress(b"".join(rows)))
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + extra + body + chunk(b"IEND", b"")
    )
    return path


def make_clean_set(root: Path, layout: dict[str, tuple[str, int]], size=(96, 128)) -> Path:
    """Write ``root/images/<id>.png`` and ``root/manifest.csv`` like the collect stage does.

    Args:
        root: output folder (``data/clean`` equivalent).
        layout: image id -> (split, category index) ; category "cat<k>" or "scientific" for -1.
        size: (height, width) of every image.
    """
    rows = []
    for i, (image_id, (split, cat)) in enumerate(sorted(layout.items())):
        write_png(root / "images" / f"{image_id}.png", textured_image(i, *size))
        rows.append(
            {
                "id": image_id,
                "source": "folder",
                "origin": f"/photos/{image_id}.png",
                "width": size[1],
                "height": size[0],
                "category": "scientific" if cat < 0 else f"cat{cat}",
                "split": split,
            }
        )
    with (root / "manifest.csv").open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return root


TINY_LAYOUT = {
    "a0000000000000a1": ("train", 0),
    "a0000000000000a2": ("train", 1),
    "a0000000000000a3": ("val", 0),
    "a0000000000000a4": ("test", 0),
    "a0000000000000a5": ("test", 1),
    "a0000000000000a6": ("train", -1),
}


def tiny_params() -> dict:
    """A params mapping with every stage shrunk to seconds (four families, one held out)."""
    return {
        "collect": {"sources": [{"type": "builtin"}], "min_size": 32},
        "degradations": {
            "families": {
                "noise": {
                    "ops": {
                        "gaussian_noise": {"params": {"sigma": {"id": [15, 50], "ood": [50, 70]}}}
                    }
                },
                "blur": {
                    "ops": {"gaussian_blur": {"params": {"sigma": {"id": [1, 3], "ood": [3, 5]}}}}
                },
                "jpeg": {
                    "ops": {
                        "jpeg": {
                            "params": {
                                "quality": {"id": [30, 70], "ood": [10, 30], "integer": True}
                            }
                        }
                    }
                },
                "haze": {
                    "ops": {
                        "haze": {"params": {"A": {"id": [0.7, 1.0]}, "beta": {"id": [0.5, 1.5]}}}
                    }
                },
            },
            "held_out": {"families": ["haze"], "combinations": [["blur", "jpeg"]]},
            "train_composers": {"single": 0.5, "mixed": 0.5},
            "mixed": {"k": [2, 2]},
            "bench_combinations": [["blur", "noise"]],
        },
        "synthesize": {
            "seed": 0,
            "patch_size": 32,
            "train_pairs": 24,
            "val_pairs": 6,
            "bench_crop": 32,
            "bench_per_family": 4,
            "max_crops_per_image": 4,
            "unseen_content_category": "scientific",
            "workers": 1,
        },
        "validate": {"default_psnr_band": [3.0, 60.0]},
    }


def synthesize_tiny(root: Path) -> Path:
    """``root/{clean,pairs,bench}`` from the real synthesize stage on :data:`TINY_LAYOUT`.

    Returns:
        ``root``: 24 train and 6 val pairs, 4 benchmark crops per suite/family, all 32x32.
    """
    from girml.config import DegradationsConfig, SynthesizeConfig, parse_section
    from girml.data.synthesize import read_manifest, synthesize

    raw = tiny_params()
    clean = make_clean_set(root / "clean", TINY_LAYOUT)
    synthesize(
        read_manifest(clean / "manifest.csv", clean / "images"),
        parse_section(raw["degradations"], "degradations", DegradationsConfig),
        parse_section(raw["synthesize"], "synthesize", SynthesizeConfig),
        root / "pairs",
        root / "bench",
    )
    return root


def write_params(path: Path, params: dict) -> Path:
    path.write_text(yaml.safe_dump(params, sort_keys=False))
    return path


def spawn_python(code: str, cwd: Path, new_session: bool = False) -> subprocess.Popen:
    """Run ``code`` in a fresh interpreter that imports this checkout (to be killed by a test).

    stdout is discarded and stderr piped, for the test's failure message; ``new_session`` puts
    the child in its own session so a group kill also reaches the processes it starts.
    """
    path = os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])
    return subprocess.Popen(
        [sys.executable, "-c", code],
        cwd=cwd,
        env={**os.environ, "PYTHONPATH": path},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=new_session,
    )


@contextmanager
def serving(server: socketserver.BaseServer) -> Iterator[socketserver.BaseServer]:
    """Run ``server`` (an ``http.server`` on 127.0.0.1) in a thread for the block; close it."""
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def wait_for(
    condition: Callable[[], bool], proc: subprocess.Popen, timeout_s: float, poll_s: float = 0.05
) -> None:
    """Poll ``condition`` while ``proc`` runs; fail the test with its stderr if it exits first,
    or after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if proc.poll() is not None:
            err = proc.stderr.read().decode() if proc.stderr else ""
            pytest.fail(f"process exited with {proc.returncode} too early:\n{err[-3000:]}")
        assert time.monotonic() < deadline, f"condition not met after {timeout_s} s"
        time.sleep(poll_s)


def kill_when(
    condition: Callable[[], bool],
    proc: subprocess.Popen,
    timeout_s: float,
    poll_s: float = 0.05,
    group: bool = False,
) -> None:
    """Kill ``proc`` with SIGKILL (kill -9) once ``condition`` holds, reap it, and check it died
    of that signal: the first half of a kill-and-resume test.

    Args:
        condition: What must be true (a checkpoint saved, a file written) before the kill.
        proc: The process to kill, from :func:`spawn_python`.
        timeout_s: Seconds to wait for ``condition``; the test fails after that, or with the
            process's stderr if it exits first (see :func:`wait_for`).
        poll_s: Seconds between two checks of ``condition``.
        group: Kill the process's whole group (spawned with ``new_session=True``), so the
            processes it started die with it.
    """
    try:
        wait_for(condition, proc, timeout_s, poll_s)
        (os.killpg if group else os.kill)(proc.pid, signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == -signal.SIGKILL


TINY_MODEL = ModelConfig(width=4, enc_blocks=[1], middle_blocks=0)


def tiny_model(seed: int) -> torch.nn.Module:
    """A :data:`TINY_MODEL` NAFNet in eval mode whose outputs differ by ``seed`` (a freshly built
    NAFNet is close to identity, so its weights are moved by a seeded 0.1-std noise)."""
    torch.manual_seed(seed)
    model = build_model(TINY_MODEL)
    with torch.no_grad():
        for param in model.parameters():
            param.add_(0.1 * torch.randn_like(param))
    return model.eval()
