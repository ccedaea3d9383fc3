"""girml.data.downloads: resumable downloads, the pin file, and verification against a pin."""

from __future__ import annotations

from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests

from girml.config import UrlItem, UrlSource
from girml.data.downloads import (
    DownloadError,
    PinFileError,
    download,
    fetch_verified,
    read_pins,
)
from tests.factories import serving

DIGEST = "ab" * 32


class _Server(ThreadingHTTPServer):
    """Serves ``body`` at ``/file``, after answering ``failures`` requests with that status."""

    def __init__(self, body: bytes, failures: list[int]) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.body = body
        self.failures = failures
        self.paths: list[str] = []


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_GET(self) -> None:
        self.server.paths.append(self.path)
        if self.server.failures:
            self.send_error(self.server.failures.pop(0))
            return
        if self.path != "/file":
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(self.server.body)))
        self.end_headers()
        self.wfile.write(self.server.body)

    def log_message(self, format: str, *args: Any) -> None:
        """Keep test output quiet."""


@pytest.fixture
def server() -> Iterator[_Server]:
    with serving(_Server(b"payload" * 100, [])) as running:
        yield running


def test_read_pins_parses_lines_and_names_a_bad_one(tmp_path: Path) -> None:
    pins = tmp_path / "downloads.sha256"
    assert read_pins(pins) == {}  # no file yet: nothing pinned
    pins.write_text(f"# pins\n\n{DIGEST.upper()}  https://h/a.zip\n{DIGEST}  https://h/b.tar\n")
    assert read_pins(pins) == {"https://h/a.zip": DIGEST, "https://h/b.tar": DIGEST}
    pins.write_text(f"{DIGEST}  https://h/a.zip\nabc https://h/b.tar\n")
    with pytest.raises(PinFileError, match=r"downloads\.sha256:2: expected .*got 'abc https"):
        read_pins(pins)


def test_download_retries_transient_errors_then_succeeds(server: _Server, tmp_path: Path) -> None:
    server.failures.extend([503, 429])
    dest = tmp_path / "cache" / "file.bin"
    url = f"http://127.0.0.1:{server.server_address[1]}/file"
    download(url, dest, retries=2, timeout_s=5, backoff_s=0)
    assert dest.read_bytes() == server.body and server.paths == ["/file"] * 3
    assert not dest.with_name("file.bin.part").exists()


def test_download_gives_up_on_permanent_errors_and_after_retries(
    server: _Server, tmp_path: Path
) -> None:
    base = f"http://127.0.0.1:{server.server_address[1]}"
    with pytest.raises(DownloadError, match="HTTP 404"):
        download(f"{base}/missing", tmp_path / "m", retries=3, timeout_s=5, backoff_s=0)
    assert server.paths == ["/missing"]  # a 404 is not retried
    server.failures.extend([500, 500])
    with pytest.raises(DownloadError, match=r"gave up after 2 attempts \(HTTP 500\)"):
        download(f"{base}/file", tmp_path / "f", retries=1, timeout_s=5, backoff_s=0)
    assert not (tmp_path / "f").exists()
    for bad, message in (
        ({"retries": -1}, "retries must be >= 0, got -1"),
        ({"timeout_s": 0}, "timeout_s must be > 0, got 0"),
        ({"backoff_s": -1.0}, r"backoff_s must be >= 0, got -1\.0"),
    ):
        args: dict[str, Any] = {"retries": 0, "timeout_s": 5, **bad}
        with pytest.raises(ValueError, match=message):
            download(f"{base}/file", tmp_path / "x", **args)


def test_first_fetch_pins_and_a_changed_file_is_refused(server: _Server, tmp_path: Path) -> None:
    """The first download records the file's sha256; a later one with other bytes is refused
    and leaves nothing in the cache."""
    url = f"http://127.0.0.1:{server.server_address[1]}/file"
    cfg = UrlSource(type="urls", items=[UrlItem(url=url)], pin_file=str(tmp_path / "pins"))
    with requests.Session() as session:
        local, digest = fetch_verified(cfg.items[0], tmp_path / "a", cfg, session, {})
        assert local.read_bytes() == server.body
        pins = read_pins(tmp_path / "pins")
        assert pins == {url: digest}
        server.body = b"changed upstream"
        with pytest.raises(DownloadError, match=rf"sha256 mismatch: expected {digest} \(pinned"):
            fetch_verified(cfg.items[0], tmp_path / "b", cfg, session, pins)
    assert not any((tmp_path / "b").iterdir())
