"""Tiny copies of the field's test sets in their real layouts, and a local server for them.

Each set is written as its publishers ship it (folder names, file names, file types): CBSD68 as
the CBSD68-dataset repository's zip (``original_png/`` beside ``original/`` JPEGs and the
``noisyNN/`` folders), Kodak24
as loose ``kodimNN.png`` downloads, McMaster as ``.tif`` files, Rain100L with its ground truth
beside ``rainy/``, SOTS-outdoor's hazy JPEGs named ``<id>_<A>_<beta>.jpg`` next to an indoor
split, GoPro's ``test/<scene>/{blur,blur_gamma,sharp}``, LOL's ``eval15`` beside ``our485``. No
set of these ships ``.mat`` files (SIDD would; it is not one of them). Images are 40x56 pixels
(a multiple of 16 is cut from them, as the references do), the real photos 128x192.
"""

from __future__ import annotations

import io
import tarfile
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from girml.config import TestSetConfig
from girml.data.testsets import PreparedSet, prepare_set
from tests.factories import serving, textured_image

SIZE = (40, 56)  # height, width
REAL_SIZE = (128, 192)


def _image(seed: int, degraded: bool = False) -> np.ndarray:
    """A textured photo; ``degraded`` adds fixed noise (the set's degraded input). The real
    photos (seeds from 19) are larger: NIQE needs whole 64-pixel patches."""
    clean = textured_image(seed, *(SIZE if seed < 19 else REAL_SIZE))
    if not degraded:
        return clean
    noise = np.random.default_rng(seed).normal(0, 12, clean.shape)
    return np.clip(clean + noise, 0, 255).astype(np.uint8)


def _encode(pixels: np.ndarray, name: str) -> bytes:
    fmt = {".jpg": "JPEG", ".tif": "TIFF", ".png": "PNG"}[Path(name).suffix]
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format=fmt, **({"quality": 95} if fmt == "JPEG" else {}))
    return buf.getvalue()


# set -> {path inside its archive (or file name): (seed, degraded)}
FILES: dict[str, dict[str, tuple[int, bool]]] = {
    "cbsd68": {
        "CBSD68-dataset-master/CBSD68/original_png/0000.png": (1, False),
        "CBSD68-dataset-master/CBSD68/original_png/0001.png": (2, False),
        "CBSD68-dataset-master/CBSD68/noisy15/0000.png": (1, True),
        "CBSD68-dataset-master/CBSD68/original/101085.jpg": (1, False),
    },
    "kodak24": {"kodim01.png": (3, False), "kodim02.png": (4, False)},
    "mcmaster": {"McMaster/1.tif": (5, False), "McMaster/2.tif": (6, False)},
    "urban100": {"Urban100/img_001.png": (7, False), "Urban100/img_002.png": (8, False)},
    "rain100l": {
        "rain100L_test/Rain100L/rainy/rain-001.png": (9, True),
        "rain100L_test/Rain100L/norain-001.png": (9, False),
        "rain100L_test/Rain100L/rainy/rain-002.png": (10, True),
        "rain100L_test/Rain100L/norain-002.png": (10, False),
    },
    "sots-outdoor": {
        "SOTS/outdoor/hazy/0001_0.8_0.2.jpg": (11, True),
        "SOTS/outdoor/gt/0001.png": (11, False),
        "SOTS/outdoor/hazy/0002_0.9_0.16.jpg": (12, True),
        "SOTS/outdoor/gt/0002.png": (12, False),
        "SOTS/indoor/hazy/1400_1.png": (13, True),
        "SOTS/indoor/gt/1400.png": (13, False),
    },
    "gopro": {
        "GOPRO_Large/test/GOPR0384_11_00/blur/000001.png": (14, True),
        "GOPRO_Large/test/GOPR0384_11_00/blur_gamma/000001.png": (14, True),
        "GOPRO_Large/test/GOPR0384_11_00/sharp/000001.png": (14, False),
        "GOPRO_Large/test/GOPR0862_11_00/blur/000001.png": (15, True),
        "GOPRO_Large/test/GOPR0862_11_00/sharp/000001.png": (15, False),
    },
    "lol-v1": {
        "LOLdataset/eval15/low/1.png": (16, True),
        "LOLdataset/eval15/high/1.png": (16, False),
        "LOLdataset/eval15/low/22.png": (17, True),
        "LOLdataset/eval15/high/22.png": (17, False),
        "LOLdataset/our485/low/2.png": (18, True),
        "LOLdataset/our485/high/2.png": (18, False),
    },
    "real-photos": {"trip/beach.jpg": (19, True), "night.png": (20, True)},
}
# what each set holds once found: its image ids
IDS: dict[str, list[str]] = {
    "cbsd68": ["0000", "0001"],
    "kodak24": ["kodim01", "kodim02"],
    "mcmaster": ["1", "2"],
    "urban100": ["img_001", "img_002"],
    "rain100l": ["rain-001", "rain-002"],
    "sots-outdoor": ["0001_0.8_0.2", "0002_0.9_0.16"],
    "gopro": ["GOPR0384_11_00-000001", "GOPR0862_11_00-000001"],
    "lol-v1": ["1", "22"],
    "real-photos": ["night", "trip-beach"],
}
ARCHIVE = {"cbsd68": "master.zip", "rain100l": "Rain100L.tar.gz", "kodak24": None}


def write_folder(name: str, root: Path) -> Path:
    """Set ``name`` as files under ``root`` (its usual layout); returns ``root``."""
    for rel, (seed, degraded) in FILES[name].items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(_encode(_image(seed, degraded), rel))
    return root


def prepare_folder_sets(names: list[str], root: Path) -> dict[str, PreparedSet]:
    """Each named set written in its usual layout under ``root/src`` and prepared from there."""
    out = {}
    for name in names:
        source = {"type": "folder", "path": str(write_folder(name, root / "src" / name))}
        out[name] = prepare_set(name, TestSetConfig(source=source), root / name)
    return out


def archive_bytes(name: str) -> tuple[str, bytes]:
    """Set ``name`` as one archive, the way it is published: ``(file name, bytes)``; a tar.gz
    for Rain100L, a zip for the others."""
    members = {rel: _encode(_image(s, d), rel) for rel, (s, d) in FILES[name].items()}
    buf = io.BytesIO()
    file_name = ARCHIVE.get(name) or f"{name}.zip"
    if file_name.endswith(".tar.gz"):
        with tarfile.open(fileobj=buf, mode="w:gz") as tar:
            for rel, data in members.items():
                info = tarfile.TarInfo(rel)
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    else:
        with zipfile.ZipFile(buf, "w") as zf:
            for rel, data in members.items():
                zf.writestr(rel, data)
    return file_name, buf.getvalue()


class SetServer(ThreadingHTTPServer):
    """Serves ``files`` (URL path -> bytes) on 127.0.0.1; ``files`` may change while it runs."""

    def __init__(self, files: dict[str, bytes]) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.files = files

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}{path}"


class _Handler(BaseHTTPRequestHandler):
    server: SetServer

    def do_GET(self) -> None:
        body = self.server.files.get(self.path)
        if body is None:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        """Keep test output quiet."""


@contextmanager
def set_server(names: list[str]) -> Iterator[tuple[SetServer, dict[str, dict]]]:
    """Serve sets ``names`` (Kodak24 as loose files, the others as archives) and give each
    one's ``protocols.sets`` entry: a ``urls`` source pointing at the server."""
    files: dict[str, bytes] = {}
    paths: dict[str, list[str]] = {}
    for name in names:
        if name == "kodak24":
            paths[name] = []
            for rel, (seed, degraded) in FILES[name].items():
                files[f"/kodak/{rel}"] = _encode(_image(seed, degraded), rel)
                paths[name].append(f"/kodak/{rel}")
        else:
            file_name, data = archive_bytes(name)
            files[f"/{name}/{file_name}"] = data
            paths[name] = [f"/{name}/{file_name}"]
    with serving(SetServer(files)) as server:
        assert isinstance(server, SetServer)
        sets = {
            name: {"source": {"type": "urls", "items": [{"url": server.url(p)} for p in ps]}}
            for name, ps in paths.items()
        }
        yield server, sets
