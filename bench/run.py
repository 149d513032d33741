"""``make bench``: the gateway against a client talking to the same upstream directly.

Every figure is measured through the gateway (a ``realtime-gateway serve`` subprocess whose
``OPENAI_REALTIME_URL`` points at the benchmark upstream) and directly against that upstream, in the
same run, by the same client code; the figures are medians of repeated rounds. Three kinds of
process, all on 127.0.0.1: the upstream (``bench/upstream.py``), the gateway, and the clients
(``bench/client.py``). Writes ``bench/RESULTS.md`` and ``bench/latency.png``; raw data goes to
``bench/out/`` (ignored by git).

``python -m bench.run --quick`` is a short smoke run (its results are written to bench/out only).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime
import hashlib
import itertools
import json
import os
import platform
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from .common import (
    API_KEY,
    cpu_times,
    free_port,
    machine_cpu_seconds,
    median,
    percentile,
    raise_fd_limit,
    rss_bytes,
)

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "bench"
OUT = BENCH / "out"
BIN = Path(sys.executable).parent
MODEL = "gpt-realtime"
START_TIMEOUT_SECONDS = 30.0

# The targets the figures are read against (reported, not enforced).
TARGET_ADDED_MEDIAN_RATIO = 0.3
TARGET_P99_RATIO = 2.0
TARGET_CONNECT_RATIO = 1.5
TARGET_SESSIONS = 500
TARGET_RSS_KIB = 64
AUDIO_ADDED_P99_LIMIT_MS = 10.0
# A failed audio level is measured again when other processes used more than this (% of a core).
NOISY_NEIGHBOUR_PERCENT = 10.0
MAX_ATTEMPTS = 3  # per level, while the whole run is younger than:
RETRY_BUDGET_SECONDS = 420.0
# A level is only valid while the clients keep their 100 ms schedule: p99 lateness under this.
HARNESS_LAG_LIMIT_MS = 10.0

_started = time.monotonic()


def say(message: str) -> None:
    print(f"[bench {time.monotonic() - _started:6.1f}s] {message}", flush=True)


# -- processes -----------------------------------------------------------------------------------


class Server:
    """A long-lived server subprocess (the upstream or the gateway) on 127.0.0.1."""

    def __init__(self, name: str, command: list[str], port: int, env: dict[str, str]) -> None:
        self.name = name
        self.port = port
        self.log_path = OUT / f"{name}.log"
        self._log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=self._log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )
        self._wait_healthy()

    @property
    def pid(self) -> int:
        return self.process.pid

    def _wait_healthy(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited at start; see {self.log_path}")
            with (
                contextlib.suppress(OSError),
                urllib.request.urlopen(f"http://127.0.0.1:{self.port}/healthz", timeout=1) as answer,
            ):
                if answer.status == 200:
                    return
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"{self.name} did not start within {START_TIMEOUT_SECONDS} s; see {self.log_path}")

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


def _base_env() -> dict[str, str]:
    env = {name: value for name, value in os.environ.items() if not name.endswith("_API_KEY")}
    env["PYTHONPATH"] = str(ROOT)
    return env


def start_upstream(name: str = "upstream") -> Server:
    port = free_port()
    return Server(name, [sys.executable, "-m", "bench.upstream", "--port", str(port)], port, _base_env())


# The gateway's code is copied here when the run starts and every gateway process runs from the
# copy, so that edits made to the working tree while the benchmark runs do not change what it measures.
SNAPSHOT = OUT / "gateway-src"
GATEWAY_PACKAGES = ("shared", "standalone")


def snapshot_gateway() -> dict[str, str]:
    """Copy the gateway's packages to :data:`SNAPSHOT`; say which revision they are."""
    shutil.rmtree(SNAPSHOT, ignore_errors=True)
    digest = hashlib.sha256()
    for package in GATEWAY_PACKAGES:
        shutil.copytree(ROOT / package, SNAPSHOT / package, ignore=shutil.ignore_patterns("__pycache__"))
        for path in sorted((SNAPSHOT / package).rglob("*.py")):
            digest.update(path.relative_to(SNAPSHOT).as_posix().encode() + b"\0" + path.read_bytes())

    def git(*args: str) -> str:
        answer = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=False)
        return answer.stdout.strip()

    changed = git("status", "--porcelain", "--", *GATEWAY_PACKAGES)
    return {
        "commit": git("rev-parse", "--short", "HEAD") or "unknown",
        "uncommitted": "yes" if changed else "no",
        "sources_sha256": digest.hexdigest()[:12],
    }


def start_gateway(upstream: Server, name: str = "gateway") -> Server:
    port = free_port()
    env = {
        **_base_env(),
        # The snapshot comes first on the path (before the editable install's finder).
        "PYTHONPATH": f"{SNAPSHOT}{os.pathsep}{ROOT}",
        "OPENAI_REALTIME_URL": f"ws://127.0.0.1:{upstream.port}/v1/realtime",
        "OPENAI_API_KEY": API_KEY,
        "DEFAULT_PROVIDER": "openai",
    }
    command = [str(BIN / "realtime-gateway"), "serve", "--host", "127.0.0.1", "--port", str(port)]
    return Server(name, command, port, env)


class Client:
    """One ``bench.client`` process; talks over stdin/stdout lines; leaves its result in a file."""

    def __init__(self, process: asyncio.subprocess.Process, out: Path) -> None:
        self.process = process
        self.out = out

    @classmethod
    async def start(cls, tag: str, *args: str) -> Client:
        out = OUT / f"client-{tag}.json"
        out.unlink(missing_ok=True)
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bench.client",
            *args,
            "--out",
            str(out),
            cwd=ROOT,
            env=_base_env(),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        return cls(process, out)

    async def expect(self, prefix: str, seconds: float) -> str:
        """The next stdout line starting with ``prefix`` (other lines are progress: printed)."""
        assert self.process.stdout is not None
        deadline = time.monotonic() + seconds
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"client: no {prefix!r} within {seconds} s")
            line = (await asyncio.wait_for(self.process.stdout.readline(), remaining)).decode()
            if not line:
                raise RuntimeError(f"client exited before {prefix!r} (code {await self.process.wait()})")
            if line.startswith(prefix):
                return line.strip()
            say("  " + line.strip())

    def tell(self, line: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(line.encode() + b"\n")

    async def result(self, seconds: float) -> dict[str, Any]:
        assert self.process.stdout is not None
        with contextlib.suppress(TimeoutError):
            while line := (await asyncio.wait_for(self.process.stdout.readline(), seconds)).decode():
                say("  " + line.strip())
        code = await asyncio.wait_for(self.process.wait(), seconds)
        if code != 0:
            raise RuntimeError(f"client exited with {code}")
        return json.loads(self.out.read_text())


class OtherLoad:
    """CPU that processes other than the benchmark's use while it measures, in % of one core.

    The benchmark's processes: the servers named (read from /proc), this process and its reaped
    children, that is the client processes once they have exited (``os.times``).
    """

    def __init__(self, *servers: Server) -> None:
        self.pids = [server.pid for server in servers]
        self._start = self._read()

    def _read(self) -> tuple[float, float, float]:
        own = os.times()
        ours = own.user + own.system + own.children_user + own.children_system
        ours += sum(sum(cpu_times(pid)) for pid in self.pids)
        return time.monotonic(), machine_cpu_seconds()[1], ours

    def percent(self) -> float:
        end = self._read()
        wall, machine, ours = (after - before for after, before in zip(end, self._start, strict=True))
        return 100 * max(0.0, machine - ours) / wall


# -- figure 1: round trip ------------------------------------------------------------------------


async def figure_rtt(upstream: Server, gateway: Server, n: int, rounds: int) -> dict[str, Any]:
    await quiet()
    say(f"figure 1: ping->pong round trip, sequential, {rounds} rounds x {n} per path (after warm-up)")
    others = OtherLoad(upstream, gateway)
    client = await Client.start(
        "ping",
        "ping",
        f"--direct={upstream.url()}",
        f"--gateway={gateway.url()}",
        f"--n={n}",
        f"--rounds={rounds}",
        "--warmup=500",
        f"--watch=gateway={gateway.pid}",
        f"--watch=upstream={upstream.pid}",
    )
    data = await client.result(seconds=300)
    figure: dict[str, Any] = {"n": n, "rounds": rounds, "samples_us": data, "cpu": _cpu_per_op(data, n)}
    figure["other_load_percent"] = others.percent()
    for path in ("direct", "gateway"):
        figure[path] = {
            "median_us": median([median(r) for r in data[path]]),
            "p99_us": median([percentile(r, 99) for r in data[path]]),
            "round_medians_us": [median(r) for r in data[path]],
            "round_p99s_us": [percentile(r, 99) for r in data[path]],
        }
    direct, via = figure["direct"], figure["gateway"]
    figure["added_median_us"] = median(
        [g - d for g, d in zip(via["round_medians_us"], direct["round_medians_us"], strict=True)]
    )
    say(
        f"figure 1: gateway CPU {figure['cpu']['gateway']['gateway']:.0f} us per relayed ping; "
        f"median {via['median_us']:.0f} us via gateway vs {direct['median_us']:.0f} us direct; "
        f"p99 {via['p99_us']:.0f} vs {direct['p99_us']:.0f} us; "
        f"added median {figure['added_median_us']:.0f} us"
    )
    return figure


def _cpu_per_op(data: dict[str, Any], n: int) -> dict[str, dict[str, float]]:
    """µs of CPU per operation, per path and process (also split: ``<name>_user``, ``<name>_system``),
    each the median over rounds."""
    cpu = data.pop("cpu_s")
    out: dict[str, dict[str, float]] = {}
    for path, processes in cpu.items():
        out[path] = {}
        for name, rounds in processes.items():
            out[path][name] = 1e6 * median([user + system for user, system in rounds]) / n
            out[path][f"{name}_user"] = 1e6 * median([user for user, _ in rounds]) / n
            out[path][f"{name}_system"] = 1e6 * median([system for _, system in rounds]) / n
    return out


# -- figure 2: connect to session.created --------------------------------------------------------


async def figure_connect(upstream: Server, gateway: Server, n: int, rounds: int) -> dict[str, Any]:
    await quiet()
    say(f"figure 2: TCP connect -> session.created, {rounds} rounds x {n} connections per path")
    others = OtherLoad(upstream, gateway)
    client = await Client.start(
        "connect",
        "connect",
        f"--direct={upstream.url()}",
        f"--gateway={gateway.url()}",
        f"--n={n}",
        f"--rounds={rounds}",
        f"--watch=gateway={gateway.pid}",
        f"--watch=upstream={upstream.pid}",
    )
    data = await client.result(seconds=300)
    figure: dict[str, Any] = {"n": n, "rounds": rounds, "samples_us": data, "cpu": _cpu_per_op(data, n)}
    figure["other_load_percent"] = others.percent()
    for path in ("direct", "gateway"):
        everything = [value for r in data[path] for value in r]
        figure[path] = {
            "median_us": median(everything),
            "p99_us": percentile(everything, 99),
            "round_medians_us": [median(r) for r in data[path]],
        }
    say(
        f"figure 2: median {figure['gateway']['median_us'] / 1000:.2f} ms via gateway vs "
        f"{figure['direct']['median_us'] / 1000:.2f} ms direct"
    )
    return figure


# -- figure 3: concurrent audio sessions ---------------------------------------------------------


def _concat(lists: Iterable[list[Any]]) -> list[Any]:
    return [item for part in lists for item in part]


def _latency_summary(rounds_us: list[list[float]]) -> dict[str, float]:
    usable = [r for r in rounds_us if r]
    return {
        "p50_ms": median([median(r) for r in usable]) / 1000 if usable else float("nan"),
        "p99_ms": median([percentile(r, 99) for r in usable]) / 1000 if usable else float("nan"),
        "max_ms": max((max(r) for r in usable), default=float("nan")) / 1000,
        "samples": sum(len(r) for r in usable),
    }


async def audio_level(
    url: str,
    sessions: int,
    seconds: float,
    watch: dict[str, int],
    tag: str,
    profile_pid: int | None = None,
) -> dict[str, Any]:
    """``sessions`` concurrent audio sessions to ``url`` for ``seconds``; CPU of ``watch`` processes.

    With ``profile_pid``, py-spy samples that process while the sessions stream.
    """
    processes = 1 if sessions <= 100 else 2
    shares = [sessions // processes + (1 if i < sessions % processes else 0) for i in range(processes)]
    clients = [
        await Client.start(
            f"audio-{tag}-{i}",
            "audio",
            f"--url={url}",
            f"--sessions={share}",
            f"--seconds={seconds}",
            f"--seed={i + 1}",
        )
        for i, share in enumerate(shares)
    ]
    connected = failed = 0
    for client in clients:
        _, ok, bad = (await client.expect("connected", seconds=180)).split()
        connected, failed = connected + int(ok), failed + int(bad)
    watch = {**watch, **{f"client{i}": c.process.pid for i, c in enumerate(clients)}}
    cpu_before = {name: cpu_times(pid) for name, pid in watch.items()}
    machine_before = machine_cpu_seconds()
    wall_before = time.monotonic()
    for client in clients:
        client.tell("go")
    profiler = _start_profiler(profile_pid, seconds, tag) if profile_pid is not None else None
    for client in clients:
        await client.expect("streamed", seconds=seconds + 120)
    wall = time.monotonic() - wall_before
    if profiler is not None:
        await asyncio.to_thread(profiler.wait, 120)
    cpu_after = {name: cpu_times(pid) for name, pid in watch.items()}
    machine_after = machine_cpu_seconds()
    cpu_user = {name: cpu_after[name][0] - cpu_before[name][0] for name in watch}
    cpu_system = {name: cpu_after[name][1] - cpu_before[name][1] for name in watch}
    cpu = {name: cpu_user[name] + cpu_system[name] for name in watch}
    results = [await client.result(seconds=120) for client in clients]

    up_rounds = [
        _concat(r["up_rounds_us"][i] for r in results) for i in range(len(results[0]["up_rounds_us"]))
    ]
    down_rounds = [
        _concat(r["down_rounds_us"][i] for r in results) for i in range(len(results[0]["down_rounds_us"]))
    ]
    both_rounds = [u + d for u, d in zip(up_rounds, down_rounds, strict=True)]
    checks: dict[str, dict[str, int]] = {}
    for direction in ("up", "down"):
        checks[direction] = {
            name: sum(r["checks"][direction][name] for r in results)
            for name in results[0]["checks"][direction]
        }
    frames = sum(r["appends_sent"] + r["deltas_received"] for r in results)
    busy = machine_after[0] - machine_before[0]
    in_processes = machine_after[1] - machine_before[1]
    level = {
        "sessions": sessions,
        "client_processes": processes,
        "connected": connected,
        "connect_failures": failed,
        "ended": sum(r["ended"] for r in results),
        "errors": sum(r["error_count"] for r in results),
        "error_examples": _concat(r["errors"][:3] + r["connect_failures"][:3] for r in results)[:6],
        "checks": checks,
        "frames": frames,
        "wall_s": wall,
        "cpu_s": cpu,
        "machine_busy_percent": 100 * busy / max(1e-9, machine_after[2] - machine_before[2]),
        # CPU used on the machine by processes other than the benchmark's own (other users' jobs,
        # kernel threads), in % of one core: a noisy neighbour shows here.
        "other_load_percent": 100 * max(0.0, in_processes - sum(cpu.values())) / wall,
        "cpu_user_s": cpu_user,
        "cpu_system_s": cpu_system,
        "cpu_percent": {name: 100 * value / wall for name, value in cpu.items()},
        "send_lag_p99_ms": max(r["send_lag_ms"]["p99"] for r in results),
        "up": _latency_summary(up_rounds),
        "down": _latency_summary(down_rounds),
        "both": _latency_summary(both_rounds),
    }
    level["intact"] = (
        connected == sessions
        and level["ended"] == sessions
        and level["errors"] == 0
        and all(value == 0 for direction in checks.values() for value in direction.values())
    )
    return level


async def _audio_pair(
    upstream: Server, gateway: Server, sessions: int, seconds: float, profile: int | None
) -> dict[str, Any]:
    """One level of the ramp: K sessions direct, then K sessions through the gateway."""
    await quiet()
    direct = await audio_level(upstream.url(), sessions, seconds, {"upstream": upstream.pid}, f"d{sessions}")
    await quiet()
    via = await audio_level(
        gateway.url(),
        sessions,
        seconds,
        {"upstream": upstream.pid, "gateway": gateway.pid},
        f"g{sessions}",
        gateway.pid if profile == sessions else None,
    )
    direct["upstream_us_per_frame"] = 1e6 * direct["cpu_s"]["upstream"] / max(1, direct["frames"])
    added_p99 = via["both"]["p99_ms"] - direct["both"]["p50_ms"]
    via["added_p99_ms"] = added_p99
    via["cpu_us_per_frame"] = 1e6 * via["cpu_s"]["gateway"] / via["frames"] if via["frames"] else float("nan")
    reasons = []
    if not via["intact"]:
        reasons.append("frames or sessions lost")
    if added_p99 >= AUDIO_ADDED_P99_LIMIT_MS:
        reasons.append("added p99")
    if via["send_lag_p99_ms"] >= HARNESS_LAG_LIMIT_MS:
        reasons.append("clients lagging")
    passed = not reasons
    machine = sum(via["cpu_percent"].values())
    say(
        f"  K={sessions}: one-way p50/p99 direct "
        f"{direct['both']['p50_ms']:.2f}/{direct['both']['p99_ms']:.2f} ms, "
        f"gateway {via['both']['p50_ms']:.2f}/{via['both']['p99_ms']:.2f} ms, "
        f"added p99 {added_p99:.2f} ms; intact direct={direct['intact']} gateway={via['intact']}; "
        f"gateway CPU {via['cpu_percent']['gateway']:.0f}% ({via['cpu_us_per_frame']:.0f} us/frame), "
        f"benchmark processes {machine:.0f}%, other processes {via['other_load_percent']:.0f}%, "
        f"client send lag p99 {via['send_lag_p99_ms']:.1f} ms; "
        f"{'PASS' if passed else 'FAIL (' + ', '.join(reasons) + ')'}"
    )
    return {"sessions": sessions, "direct": direct, "gateway": via, "passed": passed, "reasons": reasons}


async def quiet(limit_percent: float = 10.0, patience: float = 60.0) -> None:
    """Wait (up to ``patience`` s) until the machine is nearly idle: other users' jobs skew figures."""
    started = time.monotonic()
    told = False
    while True:
        before = machine_cpu_seconds()
        await asyncio.sleep(0.5)
        after = machine_cpu_seconds()
        busy = 100 * (after[0] - before[0]) / max(1e-9, after[2] - before[2])
        if busy < limit_percent:
            return
        if time.monotonic() - started > patience:
            say(f"  (the machine is still {busy:.0f}% busy after {patience:g} s: measuring anyway)")
            return
        if not told:
            say(f"  (waiting for the machine to quiet down: {busy:.0f}% busy)")
            told = True


async def figure_audio(
    upstream: Server, gateway: Server, ramp: list[int], seconds: float, profile: int | None
) -> dict[str, Any]:
    say(f"figure 3: concurrent audio sessions, ramp {ramp}, {seconds:g} s of streaming per level and path")
    levels = []
    failures_in_a_row = 0
    for sessions in ramp:
        level = await _audio_pair(upstream, gateway, sessions, seconds, profile)
        attempts = [level]
        while (
            not level["passed"]
            and level["gateway"]["other_load_percent"] > NOISY_NEIGHBOUR_PERCENT
            and len(attempts) < MAX_ATTEMPTS
            and time.monotonic() - _started < RETRY_BUDGET_SECONDS
        ):
            say(
                f"  K={sessions} failed while other processes used "
                f"{level['gateway']['other_load_percent']:.0f}% of a core: measuring it again"
            )
            level = await _audio_pair(upstream, gateway, sessions, seconds, None)
            attempts.append(level)
        level["earlier_attempts"] = attempts[:-1]
        levels.append(level)
        passed = level["passed"]
        failures_in_a_row = 0 if passed else failures_in_a_row + 1
        if failures_in_a_row >= 2:
            break
    # The largest K that passed with every smaller K passing too.
    passing = [level["sessions"] for level in itertools.takewhile(lambda lv: lv["passed"], levels)]
    direct_ok = [
        level["sessions"]
        for level in levels
        if level["direct"]["intact"]
        and level["direct"]["both"]["p99_ms"] - level["direct"]["both"]["p50_ms"] < AUDIO_ADDED_P99_LIMIT_MS
        and level["direct"]["send_lag_p99_ms"] < HARNESS_LAG_LIMIT_MS
    ]
    return {
        "seconds": seconds,
        "levels": levels,
        "largest_passing": max(passing, default=0),
        "largest_direct_ok": max(direct_ok, default=0),
    }


def _start_profiler(pid: int, seconds: float, tag: str) -> subprocess.Popen[bytes] | None:
    """py-spy on the gateway for the streaming part of one level (if py-spy is installed)."""
    py_spy = shutil.which("py-spy") or shutil.which("py-spy", path=str(BIN))
    if py_spy is None:
        say("  (--profile: py-spy is not on PATH nor in the venv; skipping)")
        return None
    duration = max(1, int(seconds) - 2)
    # --gil: samples only while the gateway runs Python (system-call time shows in the CPU split);
    # --nonblocking: the gateway is not paused to take a sample.
    command = [
        *(str(py_spy), "record", "--pid", str(pid), "--duration", str(duration), "--rate", "250"),
        *("--gil", "--nonblocking"),
    ]
    say(f"  profiling the gateway with py-spy for {duration} s -> bench/out/profile-{tag}.txt")
    output = str(OUT / f"profile-{tag}.txt")
    return subprocess.Popen([*command, "--format", "raw", "--output", output], cwd=ROOT)


# -- figure 4: memory per idle session -----------------------------------------------------------


async def _rss_per_session(server: Server, url: str, sessions: int, tag: str) -> dict[str, float]:
    await quiet()
    warm = await Client.start(f"idle-warm-{tag}", "idle", f"--url={url}", "--sessions=50")
    await warm.expect("connected", seconds=60)
    warm.tell("close")
    await warm.result(seconds=60)
    await asyncio.sleep(1.0)
    before = median([await _rss_after(server.pid, 0.2) for _ in range(3)])
    idle = await Client.start(f"idle-{tag}", "idle", f"--url={url}", f"--sessions={sessions}")
    _, ok, bad = (await idle.expect("connected", seconds=180)).split()
    await asyncio.sleep(2.0)
    after = median([await _rss_after(server.pid, 0.2) for _ in range(3)])
    idle.tell("close")
    await idle.result(seconds=120)
    if int(ok) != sessions:
        raise RuntimeError(f"only {ok} of {sessions} idle sessions opened ({bad} failed)")
    return {"before": before, "after": after, "per_session": (after - before) / sessions}


async def _rss_after(pid: int, delay: float) -> float:
    await asyncio.sleep(delay)
    return rss_bytes(pid)


async def figure_memory(sessions: int, rounds: int) -> dict[str, Any]:
    say(f"figure 4: RSS per open idle session, {sessions} sessions, {rounds} rounds (fresh processes each)")
    figure: dict[str, Any] = {"sessions": sessions, "rounds": rounds, "gateway": [], "direct": []}
    for round_number in range(rounds):
        upstream = start_upstream(f"upstream-mem{round_number}")
        try:
            # Direct: what the upstream (a plain aiohttp WebSocket server) holds per session.
            figure["direct"].append(
                await _rss_per_session(upstream, upstream.url(), sessions, f"d{round_number}")
            )
            gateway = start_gateway(upstream, f"gateway-mem{round_number}")
            try:
                figure["gateway"].append(
                    await _rss_per_session(gateway, gateway.url(), sessions, f"g{round_number}")
                )
            finally:
                gateway.stop()
        finally:
            upstream.stop()
        say(
            f"  round {round_number + 1}: "
            f"gateway {figure['gateway'][-1]['per_session'] / 1024:.1f} KiB/session, "
            f"upstream (direct) {figure['direct'][-1]['per_session'] / 1024:.1f} KiB/session"
        )
    for path in ("gateway", "direct"):
        figure[f"{path}_kib"] = median([r["per_session"] for r in figure[path]]) / 1024
    return figure


# -- report --------------------------------------------------------------------------------------


def machine_info() -> dict[str, str]:
    cpu = "unknown"
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as info:
        for line in info:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    memory = "unknown"
    with contextlib.suppress(OSError), open("/proc/meminfo") as info:
        for line in info:
            if line.startswith("MemTotal:"):
                memory = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
                break
    import aiohttp

    return {
        "nproc": str(os.cpu_count()),
        "cpu": cpu,
        "memory": memory,
        "python": platform.python_version(),
        "kernel": platform.release(),
        "aiohttp": aiohttp.__version__,
        "load_before": " ".join(Path("/proc/loadavg").read_text().split()[:3]),
    }


def _ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}x" if b else "n/a"


def _met(ok: bool) -> str:
    return "yes" if ok else "**no**"


def write_markdown(results: dict[str, Any], path: Path) -> None:
    machine = results["machine"]
    rtt, conn, audio, memory = results["rtt"], results["connect"], results["audio"], results["memory"]
    cores = int(machine["nproc"])
    lines = [
        "# Benchmark results",
        "",
        "Written by `make bench` (`bench/run.py`); rerun it rather than editing this file.",
        "",
        f"- date: {results['date']}",
        f"- machine: nproc {machine['nproc']}, {machine['cpu']}, {machine['memory']} RAM, "
        f"Linux {machine['kernel']}; load average before the run {machine['load_before']}",
        f"- software: Python {machine['python']}, aiohttp {machine['aiohttp']} "
        "(gateway, upstream and clients alike)",
        f"- command: `{results['command']}` (took {results['duration_s']:.0f} s)",
        f"- gateway code: commit {results['gateway_code']['commit']}, uncommitted changes in `shared/` "
        f"or `standalone/`: {results['gateway_code']['uncommitted']} (their `*.py` sha256 "
        f"{results['gateway_code']['sources_sha256']}); copied when the run started, so edits made "
        "during the run are not measured",
        "",
        "Baseline (**direct**): the client talking to the benchmark upstream (`bench/upstream.py`) itself. "
        "Subject (**gateway**): the same client code through a `realtime-gateway serve` process whose "
        "`OPENAI_REALTIME_URL` points at that upstream. Upstream, gateway and clients are separate "
        f"processes on 127.0.0.1 sharing the machine's {cores} cores. Each figure is a median over "
        "repeated rounds; direct and gateway rounds alternate within the same run.",
        "",
        "| figure | gateway | direct | ratio gateway/direct | target | met |",
        "|---|---|---|---|---|---|",
    ]
    g, d = rtt["gateway"], rtt["direct"]
    added = rtt["added_median_us"]
    lines += [
        f"| 1. small-event round trip, median | {g['median_us']:.0f} µs | {d['median_us']:.0f} µs "
        f"| {_ratio(g['median_us'], d['median_us'])} | | |",
        f"| 1. small-event round trip, p99 | {g['p99_us']:.0f} µs | {d['p99_us']:.0f} µs "
        f"| {_ratio(g['p99_us'], d['p99_us'])} | ≤ {TARGET_P99_RATIO:g}x "
        f"| {_met(g['p99_us'] <= TARGET_P99_RATIO * d['p99_us'])} |",
        f"| 1. added median round trip (gateway - direct) | +{added:.0f} µs | {d['median_us']:.0f} µs "
        f"| {added / d['median_us']:.2f}x of direct | ≤ {TARGET_ADDED_MEDIAN_RATIO:g}x "
        f"| {_met(added <= TARGET_ADDED_MEDIAN_RATIO * d['median_us'])} |",
    ]
    g, d = conn["gateway"], conn["direct"]
    lines.append(
        f"| 2. TCP connect → `session.created`, median | {g['median_us'] / 1000:.2f} ms "
        f"| {d['median_us'] / 1000:.2f} ms | {_ratio(g['median_us'], d['median_us'])} "
        f"| ≤ {TARGET_CONNECT_RATIO:g}x | {_met(g['median_us'] <= TARGET_CONNECT_RATIO * d['median_us'])} |"
    )
    largest = audio["largest_passing"]
    tested = max(level["sessions"] for level in audio["levels"])
    lines.append(
        f"| 3. concurrent audio sessions: largest K with p99 added latency < "
        f"{AUDIO_ADDED_P99_LIMIT_MS:g} ms and nothing lost (ramp tried up to {tested}) | {largest} "
        f"| {audio['largest_direct_ok']} (direct p99 - p50 < {AUDIO_ADDED_P99_LIMIT_MS:g} ms, intact) "
        f"| {_ratio(largest, audio['largest_direct_ok'])} | ≥ {TARGET_SESSIONS} "
        f"| {_met(largest >= TARGET_SESSIONS)} |"
    )
    best = next((level for level in audio["levels"] if level["sessions"] == largest), None)
    if best is not None:
        per_frame = best["gateway"]["cpu_us_per_frame"]
        lines.append(
            f"| 3. gateway CPU per relayed audio frame (at K={largest}) | {per_frame:.0f} µs | | "
            f"| (one core: ~{1e6 / per_frame / 20:.0f} sessions) | |"
        )
    mem_g, mem_d = memory["gateway_kib"], memory["direct_kib"]
    lines += [
        f"| 4. RSS per open idle session ({memory['sessions']} sessions) | {mem_g:.1f} KiB "
        f"| {mem_d:.1f} KiB (the upstream: a bare aiohttp WebSocket server) | {_ratio(mem_g, mem_d)} "
        f"| ≤ {TARGET_RSS_KIB} KiB | {_met(mem_g <= TARGET_RSS_KIB)} |",
        "",
        "## 1. Round trip of a small event",
        "",
        f"One connection per path, {rtt['n']} sequential pings per round after 500 warm-up pings, "
        f"{rtt['rounds']} rounds alternating direct and gateway; per-round median and p99, then the "
        "median over rounds. The ping is `input_audio_buffer.commit` carrying the extra fields "
        '`"bench":"ping","seq":N` (a literal `"type":"bench.ping"` is answered by the gateway with '
        "`unknown_event_type` and not relayed); the upstream answers "
        '`{"type":"bench.pong","seq":N}`. Distribution: `bench/latency.png`.',
        "",
        "CPU per round trip (median over rounds; /proc utime+stime, 10 ms ticks over each round): "
        f"gateway process {_split(rtt['cpu']['gateway'], 'gateway')} per ping relayed (two frames: "
        f"client → upstream, upstream → client); upstream {_split(rtt['cpu']['direct'], 'upstream')} "
        "per ping answered (direct). Processes other than the benchmark's used "
        f"{rtt['other_load_percent']:.0f}% of a core meanwhile.",
        "",
        "| round | direct median | direct p99 | gateway median | gateway p99 |",
        "|---|---|---|---|---|",
    ]
    for index in range(rtt["rounds"]):
        cells = [
            rtt["direct"]["round_medians_us"][index],
            rtt["direct"]["round_p99s_us"][index],
            rtt["gateway"]["round_medians_us"][index],
            rtt["gateway"]["round_p99s_us"][index],
        ]
        lines.append(f"| {index + 1} | " + " | ".join(f"{value:.0f} µs" for value in cells) + " |")
    g_rounds = ", ".join(f"{v / 1000:.2f}" for v in conn["gateway"]["round_medians_us"])
    d_rounds = ", ".join(f"{v / 1000:.2f}" for v in conn["direct"]["round_medians_us"])
    lines += [
        "",
        "## 2. Connect to `session.created`",
        "",
        f"{conn['rounds']} rounds x {conn['n']} sequential fresh connections per path (after 5 warm-up "
        "connections each), timed from just before the client's `ws_connect` (which starts the TCP "
        "connect) to the arrival of `session.created`; the median is over all connections of a path. "
        f"p99: gateway {conn['gateway']['p99_us'] / 1000:.2f} ms, "
        f"direct {conn['direct']['p99_us'] / 1000:.2f} ms. "
        f"Round medians (ms): gateway {g_rounds}; direct {d_rounds}. CPU per connection (median over "
        f"rounds): gateway process {_split(conn['cpu']['gateway'], 'gateway')}; upstream "
        f"{_split(conn['cpu']['direct'], 'upstream')} (direct). Processes other than the benchmark's "
        f"used {conn['other_load_percent']:.0f}% of a core meanwhile.",
        "",
        "## 3. Concurrent audio sessions",
        "",
        "K sessions (over two client processes above K=100), each sending a 100 ms PCM16 24 kHz chunk "
        "(6,400 base64 characters) every 100 ms for "
        f"{audio['seconds']:g} s while the upstream streams a 100 ms `response.output_audio.delta` back "
        "every 100 ms. Every frame carries its sequence number and its CLOCK_MONOTONIC send time; the "
        "receiver (the upstream for appends, the client for deltas) takes the one-way latency. The first "
        "second is warm-up, the rest is cut into 3 rounds; p50 and p99 are medians over the rounds, both "
        "directions pooled. **Added p99** = gateway one-way p99 - direct one-way p50 at the same K: "
        "everything in the gateway path's tail beyond the direct path's typical latency. A level passes "
        f"when added p99 < {AUDIO_ADDED_P99_LIMIT_MS:g} ms, every session connected and ended with no "
        "frame lost, duplicated or reordered in either direction, and the clients kept their schedule "
        f"(p99 of how late their 100 ms timers fired < {HARNESS_LAG_LIMIT_MS:g} ms; beyond that the "
        "offered load falls short of real time and latencies would be understated). The figure is the "
        "largest K that passed with every smaller K passing too. CPU is utime+stime from /proc over the "
        "streaming period, in % of one core; 'benchmark processes' sums gateway, upstream and clients; "
        "'machine busy' is the whole machine from /proc/stat, interrupt time (loopback TCP) included "
        f"(the machine has {cores * 100}%). 'Other processes' is CPU used meanwhile by processes that "
        "are not the benchmark's (/proc/stat minus the benchmark's processes): other users of the "
        f"machine. A level that fails while they use over {NOISY_NEIGHBOUR_PERCENT:g}% of a core is "
        f"measured again (up to {MAX_ATTEMPTS} attempts, while the run is under "
        f"{RETRY_BUDGET_SECONDS:g} s old) and the last attempt counts; before each measurement the run waits "
        "(up to 60 s) for the machine to be nearly idle. Reference for the µs per frame: the "
        "upstream, which handles each frame once (receive or send) where the gateway handles it "
        "twice (receive and send), spends "
        f"{median([lv['direct']['upstream_us_per_frame'] for lv in audio['levels']]):.0f} µs per frame in "
        "the direct runs (median over K). The ramp stops after two failed levels in a row.",
        "",
        "| K | direct p50 / p99 | gateway p50 / p99 | added p99 | intact (direct, gateway) "
        "| gateway CPU | gateway µs per frame (user + system) | upstream CPU | benchmark processes CPU "
        "| machine busy | other processes CPU | client send lag p99 | pass |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for level in audio["levels"]:
        d, g = level["direct"], level["gateway"]
        lines.append(
            f"| {level['sessions']}{_attempts(level)} "
            f"| {d['both']['p50_ms']:.2f} / {d['both']['p99_ms']:.2f} ms "
            f"| {g['both']['p50_ms']:.2f} / {g['both']['p99_ms']:.2f} ms | {g['added_p99_ms']:.2f} ms "
            f"| {_intact(d)}, {_intact(g)} | {g['cpu_percent']['gateway']:.0f}% "
            f"| {g['cpu_us_per_frame']:.0f} ({_per_frame(g, 'cpu_user_s'):.0f} + "
            f"{_per_frame(g, 'cpu_system_s'):.0f}) | {g['cpu_percent']['upstream']:.0f}% "
            f"| {sum(g['cpu_percent'].values()):.0f}% | {g['machine_busy_percent'] * cores:.0f}% "
            f"| {g['other_load_percent']:.0f}% "
            f"| {g['send_lag_p99_ms']:.1f} ms "
            f"| {'yes' if level['passed'] else '**no**: ' + ', '.join(level['reasons'])} |"
        )
    lines += [
        "",
        "## 4. Memory per idle session",
        "",
        "A fresh gateway (and a fresh upstream) per round, warmed with 50 sessions opened and closed; "
        f"then {memory['sessions']} sessions opened through it (each with its upstream connection) and "
        "left idle: (VmRSS with them open - VmRSS before) / sessions. The direct column is the same "
        "measurement on the upstream process, with the sessions opened directly against it.",
        "",
        "| round | gateway before → after | gateway per session | upstream per session (direct) |",
        "|---|---|---|---|",
    ]
    for index, (g, d) in enumerate(zip(memory["gateway"], memory["direct"], strict=True)):
        lines.append(
            f"| {index + 1} | {g['before'] / 2**20:.1f} → {g['after'] / 2**20:.1f} MiB "
            f"| {g['per_session'] / 1024:.1f} KiB | {d['per_session'] / 1024:.1f} KiB |"
        )
    lines.append("")
    path.write_text("\n".join(lines))


def _attempts(level: dict[str, Any]) -> str:
    notes = []
    if level["earlier_attempts"]:
        notes.append(f"attempt {len(level['earlier_attempts']) + 1}")
    if level["gateway"]["other_load_percent"] > NOISY_NEIGHBOUR_PERCENT:
        notes.append("other processes busy")
    return f" ({', '.join(notes)})" if notes else ""


def _per_frame(level: dict[str, Any], key: str) -> float:
    return 1e6 * level[key]["gateway"] / max(1, level["frames"])


def _split(cpu: dict[str, float], name: str) -> str:
    return f"{cpu[name]:.0f} µs (user {cpu[name + '_user']:.0f}, system {cpu[name + '_system']:.0f})"


def _intact(level: dict[str, Any]) -> str:
    if level["intact"]:
        return "yes"
    checks = level["checks"]
    problems = [
        f"{direction} {name} {value}" for direction, c in checks.items() for name, value in c.items() if value
    ]
    if level["connected"] != level["sessions"]:
        problems.append(f"connected {level['connected']}/{level['sessions']}")
    if level["ended"] != level["sessions"]:
        problems.append(f"ended {level['ended']}")
    if level["errors"]:
        problems.append(f"errors {level['errors']}")
    return "**no** (" + ", ".join(problems) + ")"


def plot_latency(rtt: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    samples = {name: [v for r in rtt["samples_us"][name] for v in r] for name in ("direct", "gateway")}
    upper = percentile(samples["gateway"], 99.9)
    figure, (histogram, cdf) = plt.subplots(1, 2, figsize=(12, 4.5))
    for name, colour in (("direct", "tab:blue"), ("gateway", "tab:orange")):
        values = samples[name]
        histogram.hist(
            [v for v in values if v <= upper],
            bins=120,
            range=(0, upper),
            alpha=0.6,
            color=colour,
            label=f"{name} (median {median(values):.0f} µs, p99 {percentile(values, 99):.0f} µs)",
        )
        ordered = sorted(values)
        cdf.plot(ordered, [i / len(ordered) for i in range(1, len(ordered) + 1)], color=colour, label=name)
    histogram.set_xlabel("round trip (µs)")
    histogram.set_ylabel("pings")
    histogram.set_title(f"ping→pong round trip, {len(samples['direct'])} per path (up to gateway p99.9)")
    histogram.legend()
    cdf.set_xscale("log")
    cdf.xaxis.set_major_locator(matplotlib.ticker.LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    cdf.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda value, _: f"{value:g}"))
    cdf.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    cdf.set_xlabel("round trip (µs, log)")
    cdf.set_ylabel("fraction ≤ x")
    cdf.set_title("cumulative distribution")
    cdf.grid(True, which="both", alpha=0.3)
    cdf.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


# -- main ----------------------------------------------------------------------------------------


async def run(args: argparse.Namespace) -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    for pattern in ("upstream*.log", "gateway*.log"):  # the servers append to their logs
        for log in OUT.glob(pattern):
            log.unlink()
    limit = raise_fd_limit()
    machine = machine_info()
    say(
        f"machine: nproc {machine['nproc']}, {machine['cpu']}, Python {machine['python']}, "
        f"open-file limit {limit}, load {machine['load_before']}"
    )
    results: dict[str, Any] = {
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": machine,
        "command": "make bench" if not args.quick else "python -m bench.run --quick",
    }
    results["gateway_code"] = code = snapshot_gateway()
    say(
        f"gateway code: commit {code['commit']}, uncommitted changes in shared/ standalone/: "
        f"{code['uncommitted']}, sources sha256 {code['sources_sha256']} (copied to {SNAPSHOT})"
    )
    upstream = start_upstream()
    gateway = start_gateway(upstream)
    say(f"upstream pid {upstream.pid} on :{upstream.port}, gateway pid {gateway.pid} on :{gateway.port}")
    figures = args.figures
    try:
        if "1" in figures:
            results["rtt"] = await figure_rtt(upstream, gateway, args.pings, args.ping_rounds)
        if "2" in figures:
            results["connect"] = await figure_connect(upstream, gateway, args.connects // 4, 4)
        if "3" in figures:
            results["audio"] = await figure_audio(upstream, gateway, args.ramp, args.seconds, args.profile)
    finally:
        gateway.stop()
        upstream.stop()
    if "4" in figures:
        results["memory"] = await figure_memory(args.idle_sessions, args.memory_rounds)
    results["duration_s"] = time.monotonic() - _started

    (OUT / "results.json").write_text(json.dumps(results, indent=1))
    if figures != "1234":
        say(f"only figures {figures}: raw data in {OUT / 'results.json'}; RESULTS.md not written")
        return
    target = OUT if args.quick else BENCH
    write_markdown(results, target / "RESULTS.md")
    plot_latency(results["rtt"], target / "latency.png")
    say(f"wrote {target / 'RESULTS.md'} and {target / 'latency.png'} (raw data in {OUT / 'results.json'})")
    print((target / "RESULTS.md").read_text())


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__)
    parser.add_argument(
        "--quick", action="store_true", help="a short smoke run; results go to bench/out only"
    )
    parser.add_argument("--pings", type=int, default=2000)
    parser.add_argument("--ping-rounds", type=int, default=5)
    parser.add_argument("--connects", type=int, default=200)
    parser.add_argument("--ramp", default="50,100,150,200,250,300,400,500,600,800,1000")
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--idle-sessions", type=int, default=1000)
    parser.add_argument("--memory-rounds", type=int, default=3)
    parser.add_argument(
        "--profile", type=int, default=None, help="py-spy the gateway at this K (needs py-spy)"
    )
    parser.add_argument("--figures", default="1234", help="which figures to measure (default: all)")
    args = parser.parse_args()
    if args.quick:
        args.pings, args.ping_rounds, args.connects = 300, 2, 40
        args.ramp, args.seconds, args.idle_sessions, args.memory_rounds = "20,40", 4.0, 100, 1
    args.ramp = [int(k) for k in args.ramp.split(",")]
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
