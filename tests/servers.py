"""Starting throwaway servers for tests: a free loopback port, and a process that listens on it."""

from __future__ import annotations

import socket
import subprocess
import time

import pytest

__all__ = ["free_port", "start_listening"]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_listening(cmd: list[str], port: int, *, name: str, timeout: float, **popen) -> subprocess.Popen:
    """Start ``cmd`` and wait until it accepts connections on ``port``; fail the test if it dies or times out."""
    proc = subprocess.Popen(cmd, **popen)
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return proc
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                pytest.fail(f"{name} did not start listening on port {port} within {timeout:.0f}s")
            time.sleep(0.2)
