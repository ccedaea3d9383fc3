"""A fault-injecting TCP proxy for tests: put it in front of a real server (moto's S3).

``FaultProxy(upstream_port)`` listens on ``127.0.0.1:<port>`` and forwards every connection to
``127.0.0.1:<upstream_port>``, in one of three modes, switchable while it runs:

- :meth:`FaultProxy.pass_through`: forward everything;
- :meth:`FaultProxy.cut`: close a connection once ``after`` bytes of one response (or, with
  ``direction="request"``, one request) have gone through, i.e. mid-transfer. Bytes are
  counted per exchange: they start again from 0 whenever the other side speaks, so on an
  HTTP keep-alive connection every response is judged on its own size;
- :meth:`FaultProxy.refuse`: accept, then reset at once (RST) the next ``k`` connections.

Threads only: one accept loop, two pumps per connection.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
from types import TracebackType
from typing import Literal

Direction = Literal["response", "request"]
_LINGER_RST = struct.pack("ii", 1, 0)  # SO_LINGER on, 0 s: close() sends RST


class FaultProxy:
    """A TCP proxy on 127.0.0.1 that can cut, refuse or pass connections (see module doc).

    Attributes:
        url: ``http://127.0.0.1:<port>``, to give clients as the endpoint.
        connections: connections accepted so far.
        cuts: connections closed mid-transfer so far.
        refused: connections reset at accept so far.
    """

    def __init__(self, upstream_port: int, upstream_host: str = "127.0.0.1") -> None:
        self.upstream = (upstream_host, upstream_port)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._listener.getsockname()[1])
        self.url = f"http://127.0.0.1:{self.port}"
        self._lock = threading.Lock()
        self._cut_after: int | None = None
        self._cut_direction: Direction = "response"
        self._cut_left: int | None = None  # connections still to cut; None = every one
        self._refuse_left = 0
        self._open: set[socket.socket] = set()
        self.connections = 0
        self.cuts = 0
        self.refused = 0
        self._thread = threading.Thread(target=self._accept_loop, daemon=True)
        self._thread.start()

    # ------------------------------------------------------------------ modes

    def pass_through(self) -> None:
        """Forward everything from now on (connections already open included)."""
        with self._lock:
            self._cut_after, self._cut_left, self._refuse_left = None, None, 0

    def cut(
        self, after: int, direction: Direction = "response", connections: int | None = None
    ) -> None:
        """Close connections once ``after`` bytes of one response (or request) went through.

        Args:
            after: bytes of one exchange let through before the cut, >= 0.
            direction: ``"response"`` (server to client: downloads) or ``"request"``
                (client to server: uploads).
            connections: cut only this many more connections, then pass; None for all.
        """
        if after < 0:
            raise ValueError(f"after must be >= 0, got {after}")
        if connections is not None and connections < 1:
            raise ValueError(f"connections must be >= 1 or None, got {connections}")
        with self._lock:
            self._cut_after, self._cut_direction, self._cut_left = after, direction, connections

    def refuse(self, k: int) -> None:
        """Reset the next ``k`` connections as soon as they are accepted."""
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        with self._lock:
            self._refuse_left = k

    def close(self) -> None:
        """Stop listening and close every open connection."""
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)  # wakes the thread blocked in accept()
        self._listener.close()
        with self._lock:
            for sock in list(self._open):
                _close(sock)
            self._open.clear()
        self._thread.join(timeout=5)

    def __enter__(self) -> FaultProxy:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # ------------------------------------------------------------------ internals

    def _accept_loop(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:  # closed
                return
            with self._lock:
                self.connections += 1
                if self._refuse_left > 0:
                    self._refuse_left -= 1
                    self.refused += 1
                    client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RST)
                    client.close()
                    continue
            try:
                upstream = socket.create_connection(self.upstream, timeout=10)
                upstream.settimeout(None)
            except OSError:
                _close(client)
                continue
            _Connection(self, client, upstream).start()

    def _cut_limit(self, direction: Direction) -> int | None:
        with self._lock:
            if self._cut_after is None or self._cut_direction != direction:
                return None
            return self._cut_after

    def _register_cut(self) -> bool:
        """Count a cut; False when the ``connections`` budget ran out meanwhile."""
        with self._lock:
            if self._cut_after is None:
                return False
            if self._cut_left is not None:
                self._cut_left -= 1
                if self._cut_left == 0:
                    self._cut_after, self._cut_left = None, None
            self.cuts += 1
            return True


class _Connection:
    """One proxied connection: two pump threads and the per-exchange byte counts."""

    def __init__(self, proxy: FaultProxy, client: socket.socket, upstream: socket.socket) -> None:
        self.proxy = proxy
        self.client = client
        self.upstream = upstream
        self.lock = threading.Lock()
        self.sent = {"request": 0, "response": 0}  # bytes of the current exchange
        self.closed = False
        self.pumps_done = 0

    def start(self) -> None:
        with self.proxy._lock:
            self.proxy._open.update((self.client, self.upstream))
        for src, dst, direction in (
            (self.client, self.upstream, "request"),
            (self.upstream, self.client, "response"),
        ):
            threading.Thread(target=self._pump, args=(src, dst, direction), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, direction: Direction) -> None:
        other: Direction = "response" if direction == "request" else "request"
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                with self.lock:
                    self.sent[other] = 0  # this side speaks: the other side's exchange is over
                    limit = self.proxy._cut_limit(direction)
                    room = None if limit is None else max(limit - self.sent[direction], 0)
                    cut = room is not None and room < len(data) and self.proxy._register_cut()
                    self.sent[direction] += len(data)
                if cut:
                    if room:
                        dst.sendall(data[:room])
                    self._close()
                    return
                dst.sendall(data)
            dst.shutdown(socket.SHUT_WR)  # half-close: the other pump finishes what is in flight
        except OSError:
            self._close()
            return
        with self.lock:
            self.pumps_done += 1
            both = self.pumps_done == 2
        if both:
            self._close()

    def _close(self) -> None:
        with self.lock:
            if self.closed:
                return
            self.closed = True
        with self.proxy._lock:
            for sock in (self.client, self.upstream):
                self.proxy._open.discard(sock)
                _close(sock)


def _close(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    sock.close()
