"""Helpers for tests that start a real server process (uvicorn, streamlit, chromium, postgres)."""

from __future__ import annotations

import socket
import subprocess
import time

import httpx


def free_port() -> int:
    """A TCP port on loopback that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(url: str, process: subprocess.Popen, seconds: float = 60) -> httpx.Response:
    """GET url until it answers; fails with the process's output if it dies or takes too long."""
    deadline = time.time() + seconds
    while True:
        try:
            return httpx.get(url, timeout=5)
        except httpx.TransportError:
            assert process.poll() is None, process.stdout.read().decode(errors="replace")
            assert time.time() < deadline, f"{url} did not answer within {seconds} s"
            time.sleep(0.5)
