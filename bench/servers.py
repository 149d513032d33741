"""The benchmark's server processes: the upstream, the gateway, the peers and the Worker host.

Every one listens on 127.0.0.1 only and is reached as ``ws://127.0.0.1:<port>/v1/realtime?model=...``.
A :class:`Subject` is something measured against the direct path: a server plus what a client must
send to it (extra handshake headers) and whether ``session.created`` reaches the client.

The peers install on demand into ``bench/.cache/`` (ignored by git) and are pinned:

- Portkey gateway (npm ``@portkey-ai/gateway``) under Node, from ``bench/.cache/portkey``;
- LiteLLM proxy (PyPI ``litellm[proxy]``) in its own venv, ``bench/.cache/litellm-venv``, since its
  dependencies may conflict with the project's.

A peer that cannot be installed or started raises :class:`Unavailable`; the run skips it and says why.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from .common import API_KEY, free_port

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "bench"
OUT = BENCH / "out"
CACHE = BENCH / ".cache"
BIN = Path(sys.executable).parent
MODEL = "gpt-realtime"
START_TIMEOUT_SECONDS = 30.0
PEER_START_TIMEOUT_SECONDS = 120.0  # LiteLLM takes ~8 s on an idle machine, the Worker host more cold

PORTKEY_VERSION = "1.15.2"
PORTKEY_DIR = CACHE / "portkey"
LITELLM_VERSION = "1.108.7"
LITELLM_VENV = CACHE / "litellm-venv"
INSTALL_TIMEOUT_SECONDS = 900
# Node's servers listen on every interface unless told a host; Portkey's start script names none.
# This preload makes a listen() without a host listen on 127.0.0.1.
LOOPBACK_SHIM = BENCH / "node_loopback.mjs"

_started = time.monotonic()


def say(message: str) -> None:
    print(f"[bench {time.monotonic() - _started:6.1f}s] {message}", flush=True)


def elapsed() -> float:
    """Seconds since the run started."""
    return time.monotonic() - _started


class Unavailable(Exception):
    """A peer that cannot be installed or started here; the message says why."""


class Server:
    """A long-lived server subprocess on 127.0.0.1, healthy once ``health_path`` answers 200."""

    def __init__(
        self,
        name: str,
        command: list[str],
        port: int,
        env: dict[str, str],
        health_path: str = "/healthz",
        start_timeout: float = START_TIMEOUT_SECONDS,
    ) -> None:
        self.name = name
        self.port = port
        self.log_path = OUT / f"{name}.log"
        self._log = self.log_path.open("ab")
        self.started = time.monotonic()
        self.process = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=self._log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )
        self._wait_healthy(health_path, start_timeout)
        self.start_seconds = time.monotonic() - self.started

    @property
    def pid(self) -> int:
        return self.process.pid

    def _wait_healthy(self, health_path: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                self._log.close()
                raise RuntimeError(f"{self.name} exited at start; see {self.log_path.relative_to(ROOT)}")
            with (
                contextlib.suppress(OSError),
                urllib.request.urlopen(f"http://127.0.0.1:{self.port}{health_path}", timeout=1) as answer,
            ):
                if answer.status == 200:
                    return
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(
            f"{self.name} did not start within {timeout:g} s; see {self.log_path.relative_to(ROOT)}"
        )

    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/v1/realtime?model={MODEL}"

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        self._log.close()


@dataclass
class Subject:
    """What is measured against the direct path: a relay between the client and the upstream."""

    name: str  # results key: gateway, portkey, litellm, worker
    label: str  # for the report
    server: Server
    headers: dict[str, str] = field(default_factory=dict)
    created: bool = True  # does session.created reach the client?

    def target(self) -> str:
        return target_spec(self.name, self.server.url(), self.headers, self.created)


def target_spec(name: str, url: str, headers: dict[str, str] | None = None, created: bool = True) -> str:
    """A ``bench.client`` target (JSON)."""
    spec = {"name": name, "url": url, "headers": headers or {}, "created": created}
    return json.dumps(spec, separators=(",", ":"))


def _base_env() -> dict[str, str]:
    env = {name: value for name, value in os.environ.items() if not name.endswith("_API_KEY")}
    env["PYTHONPATH"] = str(ROOT)
    return env


def _foreign_env() -> dict[str, str]:
    """The environment for a peer: none of the project's Python settings."""
    env = _base_env()
    for name in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME"):
        env.pop(name, None)
    env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep) if p != str(BIN))
    return env


def start_upstream(name: str = "upstream") -> Server:
    port = free_port()
    return Server(name, [sys.executable, "-m", "bench.upstream", "--port", str(port)], port, _base_env())


def start_forwarder(upstream: Server) -> Subject:
    """Figure 1's floor: ``bench/forwarder.py``, bytes forwarded to the upstream and nothing else."""
    port = free_port()
    command = [sys.executable, "-m", "bench.forwarder", "--port", str(port), "--to", str(upstream.port)]
    return Subject("floor", "TCP forwarder", Server("forwarder", command, port, _base_env()))


# -- the gateway ---------------------------------------------------------------------------------

# The gateway's code is copied here when the run starts and every gateway process runs from the
# copy, so that edits made to the working tree while the benchmark runs do not change what it measures.
SNAPSHOT = OUT / "gateway-src"
GATEWAY_PACKAGES = ("shared", "standalone")
# The Worker's bundle (worker/build_bundle.py's layout), built here for the same reason and so as
# not to rebuild build/worker under a test run that may be using it.
WORKER_BUNDLE = OUT / "worker-bundle"


def _git(*args: str) -> str:
    answer = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=False)
    return answer.stdout.strip()


def snapshot_gateway() -> dict[str, str]:
    """Copy the gateway's packages to :data:`SNAPSHOT`; say which revision they are."""
    shutil.rmtree(SNAPSHOT, ignore_errors=True)
    digest = hashlib.sha256()
    for package in GATEWAY_PACKAGES:
        shutil.copytree(ROOT / package, SNAPSHOT / package, ignore=shutil.ignore_patterns("__pycache__"))
        for path in sorted((SNAPSHOT / package).rglob("*.py")):
            digest.update(path.relative_to(SNAPSHOT).as_posix().encode() + b"\0" + path.read_bytes())
    changed = _git("status", "--porcelain", "--", *GATEWAY_PACKAGES)
    return {
        "commit": _git("rev-parse", "--short", "HEAD") or "unknown",
        "uncommitted": "yes" if changed else "no",
        "sources_sha256": digest.hexdigest()[:12],
    }


def start_gateway(
    upstream: Server, name: str = "gateway", extra_env: dict[str, str] | None = None, workers: int = 1
) -> Subject:
    """The gateway on the upstream; with ``workers`` > 1, ``serve --workers`` (the subject "workers")."""
    port = free_port()
    env = {
        **_base_env(),
        # The snapshot comes first on the path (before the editable install's finder).
        "PYTHONPATH": f"{SNAPSHOT}{os.pathsep}{ROOT}",
        "OPENAI_REALTIME_URL": f"ws://127.0.0.1:{upstream.port}/v1/realtime",
        "OPENAI_API_KEY": API_KEY,
        "DEFAULT_PROVIDER": "openai",
        # Accounting on, as deployed: the usage ledger (and /metrics, always on) in bench/out.
        "USAGE_DB": str(OUT / f"{name}.usage.sqlite3"),
        **(extra_env or {}),
    }
    command = [str(BIN / "realtime-gateway"), "serve", "--host", "127.0.0.1", "--port", str(port)]
    if workers > 1:
        command += ["--workers", str(workers)]
        return Subject("workers", f"gateway --workers {workers}", Server(name, command, port, env))
    return Subject("gateway", "gateway", Server(name, command, port, env))


# -- the peers -----------------------------------------------------------------------------------


def _run_install(command: list[str], log_name: str, what: str) -> None:
    log = OUT / log_name
    say(f"  installing {what} (log: {log.relative_to(ROOT)})")
    started = time.monotonic()
    with log.open("wb") as out:
        try:
            code = subprocess.run(
                command, cwd=ROOT, env=_foreign_env(), stdout=out, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, timeout=INSTALL_TIMEOUT_SECONDS, check=False,
            ).returncode  # fmt: skip
        except (OSError, subprocess.TimeoutExpired) as error:
            raise Unavailable(f"installing {what} failed: {error}") from None
    if code != 0:
        raise Unavailable(f"installing {what} failed (exit {code}; see bench/out/{log_name})")
    say(f"  installed {what} in {time.monotonic() - started:.0f} s")


def _node() -> str:
    node = shutil.which("node")
    if node is None:
        raise Unavailable("no `node` on PATH")
    return node


def install_portkey() -> Path:
    """Portkey's start script, installing the pinned version first if needed."""
    package = PORTKEY_DIR / "node_modules" / "@portkey-ai" / "gateway"
    script = package / "build" / "start-server.js"
    with contextlib.suppress(OSError, ValueError):
        if (
            json.loads((package / "package.json").read_text())["version"] == PORTKEY_VERSION
            and script.exists()
        ):
            return script
    npm = shutil.which("npm")
    if npm is None:
        raise Unavailable("no `npm` on PATH")
    _node()
    PORTKEY_DIR.mkdir(parents=True, exist_ok=True)
    # --no-save: no package.json of our own in the cache directory. Its postinstall (patch-package)
    # is not run by npm 11 without an approval; the published package ships no patches to apply.
    command = [npm, "install", "--prefix", str(PORTKEY_DIR), "--no-audit", "--no-fund", "--no-save"]
    _run_install([*command, f"@portkey-ai/gateway@{PORTKEY_VERSION}"], "portkey-install.log", "Portkey")
    if not script.exists():
        raise Unavailable(f"npm installed no {script.relative_to(ROOT)}")
    return script


def portkey_headers(upstream: Server) -> dict[str, str]:
    """How Portkey is pointed at the upstream.

    Its realtime route (``GET /v1/realtime``, Node) builds the upstream URL as the provider's
    ``getBaseURL() + getEndpoint("realtime")`` from options parsed out of the headers. Provider
    ``openai`` always uses ``https://api.openai.com/v1`` there (the ``x-portkey-custom-host``
    header is not among the options that route reads). The generic provider ``milvus`` takes its
    base URL from ``custom_host`` and adds no endpoint, so the custom host is the whole upstream URL;
    it must be given in ``x-portkey-config`` (with ``provider`` and ``api_key``, else the config
    fails validation) and be ``http://`` (``ws://`` is refused as an invalid custom host): the ``ws``
    library Portkey uses opens ``http://`` URLs as WebSockets. 127.0.0.1 is among its default
    trusted custom hosts.
    """
    config = {
        "provider": "milvus",
        "api_key": API_KEY,
        "custom_host": f"http://127.0.0.1:{upstream.port}/v1/realtime?model={MODEL}",
    }
    return {"x-portkey-provider": "milvus", "x-portkey-config": json.dumps(config, separators=(",", ":"))}


def start_portkey(upstream: Server, name: str = "portkey") -> Subject:
    script = install_portkey()
    port = free_port()
    command = [_node(), "--import", LOOPBACK_SHIM.as_uri(), str(script), f"--port={port}", "--headless"]
    try:
        server = Server(name, command, port, _foreign_env(), "/", PEER_START_TIMEOUT_SECONDS)
    except RuntimeError as error:
        raise Unavailable(str(error)) from None
    # Portkey forwards an upstream event only once the client's socket is attached, after the
    # handshake, and the upstream sends session.created before that: it never reaches the client.
    return Subject("portkey", "Portkey", server, portkey_headers(upstream), created=False)


def install_litellm() -> Path:
    """LiteLLM's ``litellm`` command in its own venv, installing the pinned version first if needed."""
    litellm = LITELLM_VENV / "bin" / "litellm"
    marker = LITELLM_VENV / f".installed-litellm-{LITELLM_VERSION}"
    if marker.exists() and litellm.exists():
        return litellm
    CACHE.mkdir(parents=True, exist_ok=True)
    _run_install([sys.executable, "-m", "venv", "--clear", str(LITELLM_VENV)], "litellm-venv.log", "a venv")
    pip = [str(LITELLM_VENV / "bin" / "python"), "-m", "pip", "install", "--disable-pip-version-check"]
    _run_install([*pip, f"litellm[proxy]=={LITELLM_VERSION}"], "litellm-install.log", "LiteLLM")
    if not litellm.exists():
        raise Unavailable(f"pip installed no {litellm.relative_to(ROOT)}")
    marker.touch()
    return litellm


LITELLM_MASTER_KEY = API_KEY  # the clients' bearer token; LiteLLM wants master keys to start "sk-"


def litellm_config(upstream: Server) -> str:
    return "\n".join(
        [
            "model_list:",
            f"  - model_name: {MODEL}",
            "    litellm_params:",
            f"      model: openai/{MODEL}",
            f"      api_base: http://127.0.0.1:{upstream.port}",  # -> ws://.../v1/realtime?model=...
            "      api_key: sk-bench-upstream-key",
            "general_settings:",
            f"  master_key: {LITELLM_MASTER_KEY}",
            "",
        ]
    )


def start_litellm(upstream: Server, name: str = "litellm") -> Subject:
    litellm = install_litellm()
    port = free_port()
    config = OUT / f"{name}.yaml"
    config.write_text(litellm_config(upstream))
    # Offline: the model cost map ships with the package (no fetch at start-up).
    env = {**_foreign_env(), "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
    command = [str(litellm), "--config", str(config), "--host", "127.0.0.1", "--port", str(port)]
    try:
        server = Server(name, command, port, env, "/health/liveliness", PEER_START_TIMEOUT_SECONDS)
    except RuntimeError as error:
        raise Unavailable(str(error)) from None
    return Subject("litellm", "LiteLLM", server)


PEERS = {"portkey": ("Portkey", start_portkey), "litellm": ("LiteLLM", start_litellm)}


def peer_versions() -> dict[str, str]:
    """What ran: the pinned peers and the runtimes under them."""
    versions = {"portkey": f"@portkey-ai/gateway {PORTKEY_VERSION}", "litellm": f"litellm {LITELLM_VERSION}"}
    with contextlib.suppress(OSError, Unavailable):
        node = subprocess.run([_node(), "--version"], capture_output=True, text=True, check=False)
        versions["node"] = node.stdout.strip()
    with contextlib.suppress(OSError):
        python = subprocess.run(
            [str(LITELLM_VENV / "bin" / "python"), "--version"], capture_output=True, text=True, check=False
        )
        versions["litellm_python"] = python.stdout.strip()
    return versions


# -- the Worker on the local Pyodide host --------------------------------------------------------


def build_worker_bundle() -> Path:
    """``worker/build_bundle.py``'s bundle (entry.py, shared/, worker/), built into bench/out."""
    from worker.build_bundle import build

    return build(WORKER_BUNDLE)


def start_worker(upstream: Server, name: str = "worker", extra_env: dict[str, str] | None = None) -> Subject:
    """The Worker bundle under ``tests/worker_host/host.mjs`` (Pyodide in Node), set up like the gateway."""
    for needed in ("node_modules/pyodide", "python_modules/workers", "tests/worker_host/host.mjs"):
        if not (ROOT / needed).exists():
            raise Unavailable(f"{needed} is missing (`make worker-deps` installs it)")
    if not (WORKER_BUNDLE / "entry.py").exists():
        raise Unavailable("the Worker bundle was not built")
    sys.path.insert(0, str(ROOT / "tests"))
    from worker_host.wrangler_options import host_options

    port = free_port()
    env = {
        **_base_env(),
        "OPENAI_REALTIME_URL": f"ws://127.0.0.1:{upstream.port}/v1/realtime",
        "OPENAI_API_KEY": API_KEY,
        "DEFAULT_PROVIDER": "openai",
        **(extra_env or {}),
    }
    command = [
        _node(),
        str(ROOT / "tests" / "worker_host" / "host.mjs"),
        *("--entry", str(WORKER_BUNDLE / "entry.py"), "--root", str(WORKER_BUNDLE)),
        *("--python-modules", str(ROOT / "python_modules")),
        *("--cache-dir", str(ROOT / "node_modules" / ".cache" / "worker-host")),
        *("--host", "127.0.0.1", "--port", str(port)),
        *host_options(),  # wrangler.toml's Durable Objects and assets, as deployed
    ]
    try:
        server = Server(name, command, port, env, "/healthz", PEER_START_TIMEOUT_SECONDS)
    except RuntimeError as error:
        raise Unavailable(str(error)) from None
    return Subject("worker", "Worker (Pyodide host)", server)
