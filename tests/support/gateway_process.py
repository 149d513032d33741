"""Start a gateway runtime as a real process on 127.0.0.1, for end-to-end tests."""

from __future__ import annotations

import functools
import os
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT_SECONDS = 60.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class GatewayProcess:
    runtime: str
    port: int
    process: subprocess.Popen[bytes]
    log_path: Path

    @property
    def base(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def url(self, path: str = "/v1/realtime", **query: str) -> str:
        return f"{self.base}{path}" + (f"?{urlencode(query)}" if query else "")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)


def command_for(runtime: str, port: int) -> list[str]:
    if runtime == "standalone":
        return [sys.executable, "-m", "standalone.cli", "serve", "--host", "127.0.0.1", "--port", str(port)]
    if runtime == "worker":
        # The Worker bundle wrangler deploys (worker/build_bundle.py), entry file and all, on the
        # local Pyodide host (tests/worker_host/README.md); its env bindings are the process's
        # upper-case environment variables, as `wrangler dev` vars are.
        bundle = worker_bundle()
        # --expose-gc: the host's memory report (SIGUSR2) collects garbage first.
        return [
            "node",
            "--expose-gc",
            str(ROOT / "tests" / "worker_host" / "host.mjs"),
            *("--entry", str(bundle / "entry.py"), "--root", str(bundle)),
            *("--python-modules", str(ROOT / "python_modules")),
            *("--cache-dir", str(ROOT / "node_modules" / ".cache" / "worker-host")),
            *("--host", "127.0.0.1", "--port", str(port)),
        ]
    raise ValueError(f"unknown runtime {runtime!r}")


@functools.cache
def worker_bundle() -> Path:
    """The Worker's bundle root, built once per test run from the current tree."""
    from worker.build_bundle import build

    return build()


def runtime_missing(runtime: str) -> str | None:
    """Why ``runtime`` cannot start on this machine, or None if it can."""
    if runtime == "worker":
        for needed in ("node_modules/pyodide", "python_modules/workers"):
            if not (ROOT / needed).exists():
                return f"{needed} is missing: run `make test` (npm ci + tests/worker_host/vendor.py)"
    return None


def start_gateway(runtime: str, env: dict[str, str], log_path: Path) -> GatewayProcess:
    """Start ``runtime`` with ``env`` added to a clean environment; wait until /healthz answers."""
    port = free_port()
    base_env = {name: value for name, value in os.environ.items() if not name.endswith("_API_KEY")}
    log = log_path.open("wb")
    process = subprocess.Popen(
        command_for(runtime, port),
        cwd=ROOT,
        env={**base_env, "LOG_LEVEL": "DEBUG", **env},
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    gateway = GatewayProcess(runtime, port, process, log_path)
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{runtime} gateway exited at start:\n{gateway.log()}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as answer:
                if answer.status == 200:
                    return gateway
        except OSError:
            time.sleep(0.05)
    gateway.stop()
    raise RuntimeError(f"{runtime} gateway did not start within {START_TIMEOUT_SECONDS} s:\n{gateway.log()}")
