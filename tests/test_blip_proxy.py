"""The loopback proxy the blip and chaos tests put between the operator and the API server or
Prometheus: it forwards, cuts (open connections reset, new ones closed), restores, and slows."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator

import pytest

from gridshift.devcluster.proxy import BlipProxy


@pytest.fixture
def echo() -> Iterator[tuple[str, int]]:
    server = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            threading.Thread(target=_echo, args=(conn,), daemon=True).start()

    threading.Thread(target=serve, daemon=True).start()
    yield server.getsockname()
    server.close()


def _echo(conn: socket.socket) -> None:
    with conn, contextlib.suppress(OSError):
        while data := conn.recv(4096):
            conn.sendall(data)


def _round_trip(port: int, payload: bytes = b"ping") -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(payload)
        return s.recv(4096)


def test_it_forwards_cuts_and_restores(echo: tuple[str, int]) -> None:
    proxy = BlipProxy(echo)
    try:
        assert _round_trip(proxy.port) == b"ping"
        held = socket.create_connection(("127.0.0.1", proxy.port), timeout=5)
        held.sendall(b"a")
        assert held.recv(16) == b"a"
        proxy.cut()
        assert held.recv(16) == b"", "an open connection is reset by the cut"
        held.close()
        assert _round_trip_or_empty(proxy.port) == b"", "a new connection is closed while cut"
        proxy.restore()
        assert _round_trip(proxy.port) == b"ping"
    finally:
        proxy.close()


def _round_trip_or_empty(port: int) -> bytes:
    try:
        return _round_trip(port)
    except OSError:
        return b""


def test_a_slowed_line_holds_each_chunk(echo: tuple[str, int]) -> None:
    proxy = BlipProxy(echo)
    try:
        proxy.delay_s = 0.3
        started = time.monotonic()
        assert _round_trip(proxy.port) == b"ping"
        assert time.monotonic() - started >= 0.6, "held 0.3 s on the way there and 0.3 s on the way back"
        proxy.delay_s = 0.0
        assert _round_trip(proxy.port) == b"ping"
    finally:
        proxy.close()
