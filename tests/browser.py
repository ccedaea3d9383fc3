"""Open HTML reports in a real headless Chromium with the network blocked, and say what rendered.

One Chromium per test session (the ``browser`` fixture in ``tests/conftest.py``), driven over
the Chrome DevTools Protocol on its websocket (``websockets``' sync client, already in the
lock through Prefect). Each :meth:`Browser.open` gets a fresh tab that intercepts every request
(``Fetch`` domain): ``file:``, ``data:``, ``blob:`` and ``about:`` ones go on; any other is
recorded and failed before it is sent. ``Network.requestWillBeSent`` and websocket creation are
recorded too, so a request that slipped past interception is still seen. As a second wall the
browser starts with every host name unresolvable and a proxy that refuses connections.

Where Chromium is missing the browser tests skip, unless ``CI`` is set (``.ci/run`` sets it):
then they fail, so CI cannot pass without having opened the reports.
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

LOCAL_SCHEMES = ("file:", "data:", "blob:", "about:", "chrome-error:")
EXECUTABLES = ("chromium", "chromium-headless-shell", "chromium-browser")
FLAGS = [
    "--headless",
    "--no-sandbox",  # CI runs as root
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-default-apps",
    "--disable-extensions",
    "--disable-sync",
    "--disable-quic",
    "--host-resolver-rules=MAP * ~NOTFOUND",
    "--proxy-server=http://127.0.0.1:9",  # the discard port: nothing listens, connections fail
    "--remote-debugging-port=0",
]
# What a page shows, measured in the page once it has loaded.
PROBE = """(() => {
  const rows = t => [...t.rows].filter(r => r.querySelector('td')).length;
  return {
    title: document.title,
    text: document.body ? document.body.innerText.length : 0,
    height: document.documentElement.scrollHeight,
    tables: [...document.querySelectorAll('table')].map(rows),
    images: [...document.images].map(i => ({
      src: i.currentSrc.slice(0, 60), width: i.naturalWidth,
      decoded: i.complete && i.naturalWidth > 0,
    })),
    scripts: document.scripts.length,
    styled: [...document.styleSheets].reduce((n, s) => { try { return n + s.cssRules.length; }
      catch (e) { return n; } }, 0),  // a sheet from elsewhere cannot be read
  };
})()"""


def require_browser() -> bool:
    """Whether a missing Chromium is a failure rather than a skip (``CI`` set, as by .ci/run)."""
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def chromium_executable() -> str:
    """Path of Chromium (``$CHROMIUM`` or the first of :data:`EXECUTABLES` on PATH).

    Skips the calling test where there is none, or fails it when :func:`require_browser`.
    """
    found = os.environ.get("CHROMIUM") or next(filter(None, map(shutil.which, EXECUTABLES)), None)
    if found:
        return found
    message = f"no Chromium on PATH (looked for {', '.join(EXECUTABLES)}, $CHROMIUM)"
    if require_browser():
        pytest.fail(f"{message}; CI is set, so the browser tests must run: install chromium")
    pytest.skip(message)


@dataclass
class PageReport:
    """What one page did in the browser.

    Attributes:
        url: the page opened.
        requests: every URL the page asked for (its own included), in order.
        blocked: the requests that would have left the machine (not file:/data:/blob:/about:).
        errors: uncaught script exceptions.
        title, text, height: the document's title, length of its visible text, its height (px).
        tables: per table, the rows that hold data cells (``<td>``).
        images: per ``<img>``: ``src`` (the first 60 characters), ``width`` (natural, px) and
            ``decoded`` (loaded and with a natural width > 0).
        scripts: ``<script>`` elements in the document.
        styled: CSS rules the page's style sheets hold.
        loaded: the load event fired.
    """

    url: str
    requests: list[str] = field(default_factory=list)
    blocked: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    title: str = ""
    text: int = 0
    height: int = 0
    tables: list[int] = field(default_factory=list)
    images: list[dict[str, Any]] = field(default_factory=list)
    scripts: int = 0
    styled: int = 0
    loaded: bool = False

    def flag(self, url: str) -> None:
        """Record a request that would have left the machine (once)."""
        if url not in self.blocked:
            self.blocked.append(url)

    def assert_renders_offline(self, min_tables: int = 1, min_images: int = 0) -> None:
        """Fail unless nothing left the machine, every table has rows and every image decoded."""
        assert self.blocked == [], f"{self.url} asked the network for {self.blocked}"
        assert self.errors == [], f"{self.url} raised {self.errors}"
        assert self.text > 200 and self.height > 200, f"{self.url} shows (almost) nothing"
        assert self.styled > 0, f"{self.url}: no CSS applies"
        assert len(self.tables) >= min_tables, f"{self.url}: {len(self.tables)} tables"
        assert all(n > 0 for n in self.tables), f"{self.url}: an empty table: {self.tables}"
        assert len(self.images) >= min_images, f"{self.url}: {len(self.images)} images"
        broken = [i["src"] for i in self.images if not i["decoded"]]
        assert broken == [], f"{self.url}: images that did not decode: {broken}"


class Browser:
    """A running headless Chromium, spoken to over the DevTools protocol."""

    def __init__(self, ws: ClientConnection) -> None:
        self._ws = ws
        self._ids = itertools.count(1)
        self._replies: dict[int, dict[str, Any]] = {}
        self._on_event: Callable[[dict[str, Any]], None] = lambda event: None

    def alive(self) -> bool:
        """Whether Chromium still answers (a test may end stray processes, a crash may happen)."""
        try:
            self._send("Browser.getVersion")
        except (ConnectionClosed, OSError, TimeoutError, RuntimeError):
            return False
        return True

    def _pump(self, timeout: float) -> bool:
        """Read one message: keep a reply, hand an event to the current handler. False when
        none came within ``timeout`` seconds."""
        try:
            message = json.loads(self._ws.recv(timeout=timeout))
        except TimeoutError:
            return False
        if "id" in message:
            self._replies[message["id"]] = message
        else:
            self._on_event(message)
        return True

    def _send(self, method: str, session: str | None = None, **params: Any) -> dict[str, Any]:
        """Send one command and return its result, handling the events that come meanwhile."""
        ident = next(self._ids)
        message: dict[str, Any] = {"id": ident, "method": method, "params": params}
        if session:
            message["sessionId"] = session
        self._ws.send(json.dumps(message))
        while ident not in self._replies:
            if not self._pump(30):
                raise TimeoutError(f"DevTools {method}: no reply in 30 s")
        reply = self._replies.pop(ident)
        if "error" in reply:
            raise RuntimeError(f"DevTools {method}: {reply['error']}")
        return reply.get("result", {})

    def _handle(self, event: dict[str, Any], session: str, page: PageReport) -> None:
        """Record one event of ``session``; continue or fail a paused request."""
        if event.get("sessionId") != session:
            return
        method, params = event.get("method", ""), event.get("params", {})
        if method == "Fetch.requestPaused":
            url = params["request"]["url"]
            if url.startswith(LOCAL_SCHEMES):
                self._send("Fetch.continueRequest", session, requestId=params["requestId"])
            else:
                page.flag(url)
                self._send(
                    "Fetch.failRequest",
                    session,
                    requestId=params["requestId"],
                    errorReason="BlockedByClient",
                )
        elif method in ("Network.requestWillBeSent", "Network.webSocketCreated"):
            url = params["request"]["url"] if "request" in params else params["url"]
            page.requests.append(url)
            if not url.startswith(LOCAL_SCHEMES):
                page.flag(url)
        elif method == "Runtime.exceptionThrown":
            details = params["exceptionDetails"]
            page.errors.append(details.get("exception", {}).get("description", details["text"]))
        elif method == "Page.loadEventFired":
            page.loaded = True

    def open(self, target: Path | str, timeout: float = 30.0, settle: float = 0.3) -> PageReport:
        """Load a page (a path or URL) in a fresh tab and measure what it shows.

        Args:
            target: an HTML file, or a URL.
            timeout: seconds to wait for the load event.
            settle: seconds without any event after the load before the page is measured.

        Returns:
            The :class:`PageReport`.
        """
        url = Path(target).resolve().as_uri() if isinstance(target, Path) else target
        page = PageReport(url=url)
        tab = self._send("Target.createTarget", url="about:blank")["targetId"]
        session = self._send("Target.attachToTarget", targetId=tab, flatten=True)["sessionId"]
        self._on_event = lambda event: self._handle(event, session, page)
        try:
            self._send("Fetch.enable", session, patterns=[{"urlPattern": "*"}])
            for domain in ("Network", "Page", "Runtime"):
                self._send(f"{domain}.enable", session)
            self._send("Page.navigate", session, url=url)
            deadline = time.monotonic() + timeout
            while not page.loaded:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{url} did not load in {timeout} s")
                self._pump(max(deadline - time.monotonic(), 0.01))
            while self._pump(settle):  # late requests (scripts, fonts) come in this quiet time
                pass
            probe = self._send("Runtime.evaluate", session, expression=PROBE, returnByValue=True)
            if "exceptionDetails" in probe:
                raise RuntimeError(f"measuring {url} failed: {probe['exceptionDetails']}")
            for key, value in probe["result"]["value"].items():
                setattr(page, key, value)
        finally:
            self._on_event = lambda event: None
            self._send("Target.closeTarget", targetId=tab)
        return page


@contextmanager
def launch(executable: str, profile: Path, timeout: float = 60.0) -> Iterator[Browser]:
    """Start headless Chromium with a fresh profile in ``profile``; stop it on exit.

    Raises:
        RuntimeError: Chromium exited or gave no DevTools port within ``timeout`` seconds (the
            message holds the end of its log).
    """
    profile.mkdir(parents=True, exist_ok=True)
    log = profile / "chromium.log"
    with log.open("wb") as sink:
        proc = subprocess.Popen(
            [executable, *FLAGS, f"--user-data-dir={profile}", "about:blank"],
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # out of the test process's group: signals to it miss us
        )
    port_file = profile / "DevToolsActivePort"
    try:
        deadline = time.monotonic() + timeout
        while not port_file.is_file() or len(port_file.read_text().splitlines()) < 2:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{executable} gave no DevTools port: {log.read_text()[-2000:]}")
            time.sleep(0.05)
        port, path = port_file.read_text().splitlines()[:2]
        with connect(
            f"ws://127.0.0.1:{port}{path}", max_size=None, open_timeout=30, ping_interval=None
        ) as ws:
            yield Browser(ws)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class Chromium:
    """The session's Chromium: started on first use, started again if it stopped answering."""

    def __init__(self, executable: str, root: Path) -> None:
        self._executable = executable
        self._root = root
        self._stack: ExitStack | None = None
        self._browser: Browser | None = None
        self.starts = 0

    def get(self) -> Browser:
        """A Chromium that answers now."""
        if self._browser is None or not self._browser.alive():
            self.close()
            self.starts += 1
            stack = ExitStack()
            self._browser = stack.enter_context(
                launch(self._executable, self._root / f"profile-{self.starts}")
            )
            self._stack = stack
        return self._browser

    def close(self) -> None:
        """Stop Chromium if it runs."""
        if self._stack is not None:
            self._stack.close()
        self._stack, self._browser = None, None
