"""Start a gateway runtime as a real process on 127.0.0.1, for end-to-end tests."""

from __future__ import annotations

import functools
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode

from worker_host.wrangler_options import host_options

ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT_SECONDS = 60.0
# Other installs of the gateway's dependencies than the project's own (tests/deps/check.py), so
# that the tests, run from the project's venv with the SDKs and pytest, check the gateway on them:
# a virtual environment holding only ``pip install .[standalone]``, whose ``realtime-gateway`` is
# then the standalone gateway; and a directory of the Worker's packages in place of python_modules/.
GATEWAY_VENV = "GATEWAY_VENV"
WORKER_PYTHON_MODULES = "WORKER_PYTHON_MODULES"


def dependencies_under_test() -> dict[str, str]:
    """The other installs this run uses (empty: the project's own)."""
    return {name: os.environ[name] for name in (GATEWAY_VENV, WORKER_PYTHON_MODULES) if os.environ.get(name)}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


# Sockets bound by :func:`refused_port`, held until the test process exits.
_REFUSING: list[socket.socket] = []


def refused_port() -> int:
    """A port on 127.0.0.1 that refuses connections for as long as the tests run: bound and never
    listening (the kernel answers a SYN with a reset), so no server started later can take it.
    A port merely found free can be: once a gateway whose "unreachable" provider was such a port
    was given that very port itself, and relayed to itself until MAX_SESSIONS."""
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    _REFUSING.append(probe)
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


def command_for(
    runtime: str,
    port: int,
    args: Sequence[str] = (),
    d1: dict[str, Path] | None = None,
    bundle: Path | None = None,
) -> list[str]:
    """The command running ``runtime`` on ``port``; ``args`` go to ``realtime-gateway serve``; ``d1``
    binds D1 databases (SQLite files) on the Worker, whose bundle is ``bundle`` (default: the one
    built from the tree)."""
    if runtime == "standalone":
        return [*standalone_command(), "serve", "--host", "127.0.0.1", "--port", str(port), *args]
    if runtime == "worker":
        # The Worker bundle wrangler deploys (worker/build_bundle.py), entry file and all, on the
        # local Pyodide host (tests/worker_host/README.md); its env bindings are the process's
        # upper-case environment variables, as `wrangler dev` vars are.
        bundle = bundle or worker_bundle()
        # --expose-gc: the host's memory report (SIGUSR2) collects garbage first.
        return [
            "node",
            "--expose-gc",
            str(ROOT / "tests" / "worker_host" / "host.mjs"),
            *("--entry", str(bundle / "entry.py"), "--root", str(bundle)),
            *("--python-modules", str(worker_python_modules())),
            *("--cache-dir", str(worker_host_cache())),
            *("--host", "127.0.0.1", "--port", str(port)),
            *host_options(),  # wrangler.toml's [assets] (the playground's files) and Durable Objects
            *(f"--d1={name}={file}" for name, file in (d1 or {}).items()),
        ]
    raise ValueError(f"unknown runtime {runtime!r}")


def standalone_command() -> list[str]:
    """How the standalone gateway is started: this interpreter on the source tree, or the installed
    ``realtime-gateway`` of the environment ``GATEWAY_VENV`` names."""
    venv = os.environ.get(GATEWAY_VENV)
    if not venv:
        return [sys.executable, "-m", "standalone.cli"]
    script = Path(venv) / "bin" / "realtime-gateway"
    if not script.is_file():
        raise RuntimeError(f"{GATEWAY_VENV}={venv} has no bin/realtime-gateway")
    return [str(script)]


def worker_python_modules() -> Path:
    """The Worker's packages: python_modules/, or the directory ``WORKER_PYTHON_MODULES`` names."""
    return Path(os.environ.get(WORKER_PYTHON_MODULES) or ROOT / "python_modules")


def worker_host_cache() -> Path:
    """The local host's cache (stdlib snapshot, bytecode), one per set of the Worker's packages: the
    host mounts every python_modules/ at the same path, and a .pyc checks only its source's mtime and
    size, so two sets side by side (tests/deps/check.py's ends) sharing one cache could load each
    other's bytecode (pydantic 2.14.0's version.py beside pydantic-core 2.50.5 once did)."""
    if os.environ.get(WORKER_PYTHON_MODULES):
        return Path(os.environ[WORKER_PYTHON_MODULES]).parent / "worker-host-cache"
    return ROOT / "node_modules" / ".cache" / "worker-host"


@functools.cache
def worker_bundle() -> Path:
    """The Worker's bundle root, built once per test run from the current tree (beside the Worker's
    packages when they are not python_modules/: runs on other installs may go on at the same time)."""
    from worker.build_bundle import build

    modules = os.environ.get(WORKER_PYTHON_MODULES)
    return build(Path(modules).parent / "worker-bundle") if modules else build()


def runtime_missing(runtime: str) -> str | None:
    """Why ``runtime`` cannot start on this machine, or None if it can."""
    if runtime == "worker":
        for needed in (ROOT / "node_modules/pyodide", worker_python_modules() / "workers"):
            if not needed.exists():
                return f"{needed} is missing: run `make test` (npm ci + tests/worker_host/vendor.py)"
    return None


def start_gateway(
    runtime: str,
    env: dict[str, str],
    log_path: Path,
    port: int | None = None,
    args: Sequence[str] = (),
    d1: dict[str, Path] | None = None,
) -> GatewayProcess:
    """Start ``runtime`` with ``env`` added to a clean environment; wait until /healthz answers.

    It listens on ``port``, or on a free one; pass one from :func:`free_port` when a setting must
    name it (``ALLOWED_ORIGINS`` with the gateway's own origin). ``args`` go to ``serve``.
    The standalone server's usage ledger goes beside the log unless ``env`` names one (USAGE_DB);
    ``d1`` binds D1 databases on the Worker. A PRICES_FILE in ``env`` goes into a Worker bundle of
    its own, built beside the log, as wrangler's build step puts it into a deployed one.
    """
    port = port or free_port()
    bundle = None
    if runtime == "worker" and env.get("PRICES_FILE"):
        from worker.build_bundle import build

        # The assets go where wrangler.toml's [assets] points, as for the tree's own bundle.
        bundle = build(log_path.with_name("worker-bundle"), prices_file=env["PRICES_FILE"])
    base_env = {name: value for name, value in os.environ.items() if not name.endswith("_API_KEY")}
    base_env["USAGE_DB"] = str(log_path.with_name("usage.sqlite3"))
    log = log_path.open("wb")
    process = subprocess.Popen(
        command_for(runtime, port, args, d1, bundle),
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
