"""tests/browser.py, the headless-Chromium helper the report tests use: it must see and stop every
request that would leave the machine, and measure what a page shows."""

from __future__ import annotations

import base64
import io
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

from tests.browser import Browser, Chromium, chromium_executable


def _png(size: tuple[int, int]) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, (200, 40, 40)).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture
def listener() -> Iterator[tuple[int, list[bytes]]]:
    """A TCP server on 127.0.0.1 that records what every connection sends; yields its port and
    the records."""
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.2)
    seen: list[bytes] = []
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            with conn:
                conn.settimeout(1)
                try:
                    seen.append(conn.recv(1024))
                except OSError:
                    seen.append(b"")

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield server.getsockname()[1], seen
    stop.set()
    thread.join(timeout=5)
    server.close()


def _page(body: str, head: str = "") -> str:
    return (
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>t</title>{head}"
        "<style>body{font-family:sans-serif}td{padding:2px}</style></head><body>"
        f"<p>{'A page of text that is long enough to count as content. ' * 6}</p>{body}"
        "</body></html>"
    )


def test_a_self_contained_page_renders_with_its_tables_and_images(
    browser: Browser, tmp_path: Path
) -> None:
    (tmp_path / "local.png").write_bytes(_png((30, 20)))
    inline = "data:image/png;base64," + base64.b64encode(_png((40, 10))).decode()
    body = (
        "<table><tr><th>a</th></tr><tr><td>1</td></tr><tr><td>2</td></tr></table>"
        f'<img src="local.png" alt="file"><img src="{inline}" alt="inline">'
    )
    (tmp_path / "page.html").write_text(_page(body))
    page = browser.open(tmp_path / "page.html")
    page.assert_renders_offline(min_tables=1, min_images=2)
    assert page.tables == [2] and [i["width"] for i in page.images] == [30, 40]
    assert page.requests[0] == (tmp_path / "page.html").as_uri() and page.blocked == []


def test_a_chromium_that_stopped_answering_is_started_again(
    chromium: Chromium, tmp_path: Path
) -> None:
    # a test elsewhere may end stray child processes; the next browser test must not inherit that
    first = chromium.get()
    starts = chromium.starts
    first._ws.close()  # what a killed Chromium looks like from here
    assert not first.alive()
    second = chromium.get()
    assert second is not first and chromium.starts == starts + 1 and second.alive()
    (tmp_path / "page.html").write_text(_page("<table><tr><td>1</td></tr></table>"))
    assert second.open(tmp_path / "page.html").tables == [1]


def test_every_request_that_would_leave_the_machine_is_caught_and_stopped(
    browser: Browser, tmp_path: Path, listener: tuple[int, list[bytes]]
) -> None:
    port, seen = listener
    cdn = [
        "https://cdn.jsdelivr.net/npm/jquery@3.7.1/dist/jquery.min.js",
        "https://unpkg.com/bootstrap-table@1.19.1/dist/bootstrap-table.min.css",
        "https://fonts.gstatic.com/s/roboto/v30/roboto.woff2",
        f"http://127.0.0.1:{port}/logo.png",
        "https://api.example.com/ping",
    ]
    head = (
        f'<script src="{cdn[0]}"></script><link rel="stylesheet" href="{cdn[1]}">'
        f"<style>@font-face{{font-family:R;src:url({cdn[2]})}}p{{font-family:R}}</style>"
    )
    body = (
        f'<table><tr><td>x</td></tr></table><img src="{cdn[3]}" alt="remote">'
        f"<script>fetch('{cdn[4]}').catch(() => {{}});</script>"
    )
    (tmp_path / "cdn.html").write_text(_page(body, head))
    page = browser.open(tmp_path / "cdn.html")
    assert sorted(page.blocked) == sorted(cdn)
    assert seen == []  # the local "remote" server got no connection: the request was stopped
    assert page.images == [{"src": cdn[3], "width": 0, "decoded": False}]
    with pytest.raises(AssertionError, match="asked the network for"):
        page.assert_renders_offline()


def test_a_page_with_an_empty_table_or_a_broken_image_does_not_pass(
    browser: Browser, tmp_path: Path
) -> None:
    (tmp_path / "empty.html").write_text(_page("<table><tr><th>a</th></tr></table>"))
    with pytest.raises(AssertionError, match="an empty table"):
        browser.open(tmp_path / "empty.html").assert_renders_offline()
    (tmp_path / "bad.png").write_bytes(b"not a png")
    (tmp_path / "broken.html").write_text(_page('<img src="bad.png" alt="x">'))
    with pytest.raises(AssertionError, match="did not decode"):
        browser.open(tmp_path / "broken.html").assert_renders_offline(min_tables=0)


def test_a_missing_chromium_skips_but_fails_under_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "")
    monkeypatch.delenv("CHROMIUM", raising=False)
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="no Chromium on PATH"):
        chromium_executable()
    monkeypatch.setenv("CI", "false")
    with pytest.raises(pytest.skip.Exception):
        chromium_executable()
    monkeypatch.setenv("CI", "1")
    with pytest.raises(pytest.fail.Exception, match="CI is set"):
        chromium_executable()
