"""A real ``redis-server`` (Debian's package) on a free loopback port, for the fleet tests.

``make test`` installs the package when it is missing (``make redis``); without it the tests that
need Redis skip, or fail under CI.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

from .gateway_process import free_port

START_TIMEOUT_SECONDS = 10.0


def redis_missing() -> str | None:
    """Why no Redis can be started here, or None."""
    if shutil.which("redis-server") is None:
        return "redis-server is missing: `make redis` (apt-get install redis-server)"
    return None


class RedisServer:
    """One ``redis-server`` process, with no persistence; it can be stopped and started again on
    the same port (a Redis outage in the middle of a test)."""

    def __init__(self, log_path: Path) -> None:
        self.port = free_port()
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        assert self.process is None or self.process.poll() is not None
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [
                shutil.which("redis-server") or "redis-server",
                *("--port", str(self.port), "--bind", "127.0.0.1"),
                *("--save", "", "--appendonly", "no"),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while not self.answers():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"redis-server did not start:\n{self.log_path.read_text()}")
            time.sleep(0.02)
        return self

    def answers(self) -> bool:
        """Whether it answers PING right now."""
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as connection:
                connection.sendall(b"PING\r\n")
                return connection.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)


def redis_cli(port: int, *command: str) -> str:
    """One command through ``redis-cli`` (to look at what the gateway wrote)."""
    result = subprocess.run(
        [shutil.which("redis-cli") or "redis-cli", "-p", str(port), *command],
        capture_output=True,
        text=True,
        timeout=10,
        env={**os.environ, "REDISCLI_AUTH": ""},
    )
    return result.stdout.strip()
