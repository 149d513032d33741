"""``make bench``: the gateway and its peers against a client talking to the same upstream directly.

Every figure is measured through each subject and directly against the benchmark upstream
(``bench/upstream.py``), in the same run, by the same client code; the figures are medians of
repeated rounds. The subjects, each pointed at that upstream (``bench/servers.py`` says how):

- the gateway: a ``realtime-gateway serve`` subprocess whose ``OPENAI_REALTIME_URL`` is the upstream;
  in figure 3 also ``serve --workers 2`` (``--workers N``; it joins the ramp at ``--workers-from``);
- the peers, side by side: the Portkey gateway (Node) and the LiteLLM proxy, installed on demand
  into ``bench/.cache/`` and skipped (the report says why) when they cannot be installed or started;
- in a section of its own, for its own trend: the Worker bundle on the local Pyodide host
  (``tests/worker_host/host.mjs``), figures 1 and 2 and audio at a few small K.

All processes are on 127.0.0.1: the upstream, the subjects, and the clients (``bench/client.py``).
Writes ``bench/RESULTS.md`` and ``bench/latency.png`` (``bench/report.py``); raw data goes to
``bench/out/`` (ignored by git).

``python -m bench.run --quick`` is a short smoke run (its results are written to bench/out only).
``--figures 3 --no-worker`` measures figure 3 alone (``--peers ''``: the gateway alone; ``--ramp
300,500``: chosen levels); a run of some figures only leaves its raw data in bench/out/results.json.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime
import importlib.metadata
import itertools
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path
from typing import Any

from .common import (
    machine_cpu_seconds,
    median,
    percentile,
    raise_fd_limit,
    tree_cpu_times,
    tree_rss_bytes,
)
from .report import plot_latency, write_markdown
from .servers import (
    BENCH,
    BIN,
    OUT,
    PEERS,
    ROOT,
    SNAPSHOT,
    Server,
    Subject,
    Unavailable,
    _base_env,
    build_worker_bundle,
    elapsed,
    install_litellm,
    install_portkey,
    peer_versions,
    say,
    snapshot_gateway,
    start_forwarder,
    start_gateway,
    start_upstream,
    start_worker,
    target_spec,
)

# The targets the figures are read against (reported, not enforced).
TARGET_ADDED_MEDIAN_RATIO = 0.3
TARGET_P99_RATIO = 2.0
TARGET_CONNECT_RATIO = 1.5
TARGET_SESSIONS = 500
TARGET_WORKERS_RATIO = 1.6  # figure 3 through `serve --workers 2`, against one worker, on 2 cores
TARGET_RSS_KIB = 64
AUDIO_ADDED_P99_LIMIT_MS = 10.0
PEAK_RSS_INTERVAL_SECONDS = 0.25  # how often figure 3 samples the relays' RSS for its peak
# A failed audio level is measured again when other processes used more than this (% of a core).
NOISY_NEIGHBOUR_PERCENT = 10.0
MAX_ATTEMPTS = 3  # per level, while the whole run is younger than:
RETRY_BUDGET_SECONDS = 480.0
# No new audio level starts once the run is this old, so that the whole run stays near 12 minutes.
RAMP_DEADLINE_SECONDS = 540.0
# A level is only valid while the clients keep their 100 ms schedule: p99 lateness under this.
HARNESS_LAG_LIMIT_MS = 10.0
DIRECT = "direct"
# Figure 2 on a subject that drops session.created (Portkey) is timed to the pong of a ping sent at
# once; the direct path is then measured that way too, under this name.
DIRECT_PING_FIRST = "direct_ping_first"


# -- clients -------------------------------------------------------------------------------------


class Client:
    """One ``bench.client`` process; talks over stdin/stdout lines; leaves its result in a file."""

    def __init__(self, process: asyncio.subprocess.Process, out: Path, err: Path) -> None:
        self.process = process
        self.out = out
        self.err = err

    @classmethod
    async def start(cls, tag: str, *args: str) -> Client:
        out = OUT / f"client-{tag}.json"
        err = OUT / f"client-{tag}.err"
        out.unlink(missing_ok=True)
        with err.open("wb") as stderr:
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
                stderr=stderr,
            )
        return cls(process, out, err)

    def _failure(self, what: str) -> RuntimeError:
        with contextlib.suppress(OSError):
            lines = self.err.read_text(errors="replace").strip().splitlines()
            if lines:
                what += f": {lines[-1][:300]}"
        return RuntimeError(what)

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
                code = await self.process.wait()
                raise self._failure(f"client exited before {prefix!r} (code {code})")
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
            raise self._failure(f"client exited with {code}")
        with contextlib.suppress(OSError):
            if not self.err.stat().st_size:
                self.err.unlink()
        return json.loads(self.out.read_text())

    def kill(self) -> None:
        if self.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.kill()


class OtherLoad:
    """CPU that processes other than the benchmark's use while it measures, in % of one core.

    The benchmark's processes: the servers named (their process trees, read from /proc), this
    process and its reaped children, that is the client processes once they have exited (``os.times``).
    """

    def __init__(self, *servers: Server) -> None:
        self.pids = [server.pid for server in servers]
        self._start = self._read()

    def _read(self) -> tuple[float, float, float]:
        own = os.times()
        ours = own.user + own.system + own.children_user + own.children_system
        ours += sum(sum(tree_cpu_times(pid)) for pid in self.pids)
        return time.monotonic(), machine_cpu_seconds()[1], ours

    def percent(self) -> float:
        end = self._read()
        wall, machine, ours = (after - before for after, before in zip(end, self._start, strict=True))
        return 100 * max(0.0, machine - ours) / wall


async def quiet(limit_percent: float = 10.0, patience: float = 60.0) -> None:
    """Wait (up to ``patience`` s) until the machine is nearly idle: other users' jobs skew figures.

    Once the run is past its ramp deadline the wait is cut to 10 s, to keep the run's length bounded.
    """
    if elapsed() > RAMP_DEADLINE_SECONDS:
        patience = min(patience, 10.0)
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


def _direct(upstream: Server, ping_first: bool = False) -> str:
    if ping_first:
        return target_spec(DIRECT_PING_FIRST, upstream.url(), created=False)
    return target_spec(DIRECT, upstream.url())


def _watch(upstream: Server, subjects: list[Subject]) -> list[str]:
    return [f"--watch=upstream={upstream.pid}", *(f"--watch={s.name}={s.server.pid}" for s in subjects)]


async def probe(subject: Subject) -> None:
    """A few sessions to ``subject`` (connect, first event, close); raises when they fail."""
    client = await Client.start(
        f"probe-{subject.name}", "connect", f"--target={subject.target()}", "--n=3", "--rounds=1"
    )
    await client.result(seconds=60)


# -- figure 1: round trip ------------------------------------------------------------------------


async def figure_rtt(
    upstream: Server, subjects: list[Subject], n: int, rounds: int, tag: str = "ping", warmup: int = 500
) -> dict[str, Any]:
    await quiet()
    paths = [DIRECT, *(s.name for s in subjects)]
    say(
        f"figure 1 ({', '.join(paths)}): ping->pong round trip, sequential, {rounds} rounds x {n} per "
        f"path (after {warmup} warm-up pings), the paths' order rotating each round"
    )
    others = OtherLoad(upstream, *(s.server for s in subjects))
    client = await Client.start(
        tag,
        "ping",
        f"--target={_direct(upstream)}",
        *(f"--target={s.target()}" for s in subjects),
        f"--n={n}",
        f"--rounds={rounds}",
        f"--warmup={warmup}",
        *_watch(upstream, subjects),
    )
    data = await client.result(seconds=300)
    figure: dict[str, Any] = {
        "n": n,
        "rounds": rounds,
        "warmup": warmup,
        "paths": paths,
        "samples_us": data,
        "cpu": _cpu_per_op(data, n),
    }
    figure["other_load_percent"] = others.percent()
    for path in paths:
        figure[path] = {
            "median_us": median([median(r) for r in data[path]]),
            "p99_us": median([percentile(r, 99) for r in data[path]]),
            "round_medians_us": [median(r) for r in data[path]],
            "round_p99s_us": [percentile(r, 99) for r in data[path]],
        }
    direct = figure[DIRECT]
    for subject in subjects:
        via = figure[subject.name]
        via["added_median_us"] = median(
            [v - d for v, d in zip(via["round_medians_us"], direct["round_medians_us"], strict=True)]
        )
        say(
            f"figure 1: {subject.name}: CPU {figure['cpu'][subject.name][subject.name]:.0f} us per relayed "
            f"ping; median {via['median_us']:.0f} us vs {direct['median_us']:.0f} us direct; "
            f"p99 {via['p99_us']:.0f} vs {direct['p99_us']:.0f} us; "
            f"added median {via['added_median_us']:.0f} us"
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


async def figure_connect(
    upstream: Server, subjects: list[Subject], n: int, rounds: int, tag: str = "connect"
) -> dict[str, Any]:
    await quiet()
    ping_first = any(not s.created for s in subjects)
    directs = [_direct(upstream), *([_direct(upstream, ping_first=True)] if ping_first else [])]
    paths = [DIRECT, *([DIRECT_PING_FIRST] if ping_first else []), *(s.name for s in subjects)]
    say(
        f"figure 2 ({', '.join(paths)}): TCP connect -> first event, {rounds} rounds x {n} "
        "connections per path"
    )
    others = OtherLoad(upstream, *(s.server for s in subjects))
    client = await Client.start(
        tag,
        "connect",
        *(f"--target={spec}" for spec in directs),
        *(f"--target={s.target()}" for s in subjects),
        f"--n={n}",
        f"--rounds={rounds}",
        *_watch(upstream, subjects),
    )
    data = await client.result(seconds=300)
    figure: dict[str, Any] = {
        "n": n,
        "rounds": rounds,
        "paths": paths,
        "samples_us": data,
        "cpu": _cpu_per_op(data, n),
    }
    figure["other_load_percent"] = others.percent()
    for path in paths:
        everything = [value for r in data[path] for value in r]
        figure[path] = {
            "median_us": median(everything),
            "p99_us": percentile(everything, 99),
            "round_medians_us": [median(r) for r in data[path]],
        }
    for subject in subjects:
        figure[subject.name]["baseline"] = DIRECT if subject.created else DIRECT_PING_FIRST
        figure[subject.name]["first_event"] = "session.created" if subject.created else "pong"
        baseline = figure[figure[subject.name]["baseline"]]
        say(
            f"figure 2: {subject.name}: median {figure[subject.name]['median_us'] / 1000:.2f} ms vs "
            f"{baseline['median_us'] / 1000:.2f} ms {figure[subject.name]['baseline']}"
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
    target: str,
    sessions: int,
    seconds: float,
    watch: dict[str, int],
    tag: str,
    profile_pid: int | None = None,
) -> dict[str, Any]:
    """``sessions`` concurrent audio sessions to ``target`` for ``seconds``; CPU of the ``watch``
    process trees. With ``profile_pid``, py-spy samples that process while the sessions stream."""
    processes = 1 if sessions <= 100 else 2
    shares = [sessions // processes + (1 if i < sessions % processes else 0) for i in range(processes)]
    clients = [
        await Client.start(
            f"audio-{tag}-{i}",
            "audio",
            f"--target={target}",
            f"--sessions={share}",
            f"--seconds={seconds}",
            f"--seed={i + 1}",
        )
        for i, share in enumerate(shares)
    ]
    try:
        return await _audio_level(clients, sessions, processes, seconds, watch, tag, profile_pid)
    finally:
        for client in clients:
            client.kill()


async def _audio_level(
    clients: list[Client],
    sessions: int,
    processes: int,
    seconds: float,
    watch: dict[str, int],
    tag: str,
    profile_pid: int | None,
) -> dict[str, Any]:
    connected = failed = 0
    for client in clients:
        _, ok, bad = (await client.expect("connected", seconds=180)).split()
        connected, failed = connected + int(ok), failed + int(bad)
    watch = {**watch, **{f"client{i}": c.process.pid for i, c in enumerate(clients)}}
    cpu_before = {name: tree_cpu_times(pid) for name, pid in watch.items()}
    machine_before = machine_cpu_seconds()
    wall_before = time.monotonic()
    for client in clients:
        client.tell("go")
    profiler = _start_profiler(profile_pid, seconds, tag) if profile_pid is not None else None
    servers = {name: pid for name, pid in watch.items() if not name.startswith("client")}
    peak_rss = {name: tree_rss_bytes(pid) for name, pid in servers.items()}
    sampling = asyncio.ensure_future(_sample_peak_rss(servers, peak_rss))
    try:
        for client in clients:
            await client.expect("streamed", seconds=seconds + 120)
    finally:
        sampling.cancel()
    wall = time.monotonic() - wall_before
    if profiler is not None:
        await asyncio.to_thread(profiler.wait, 120)
    cpu_after = {name: tree_cpu_times(pid) for name, pid in watch.items()}
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
        "peak_rss_mib": {name: value / 2**20 for name, value in peak_rss.items()},
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


async def _sample_peak_rss(pids: dict[str, int], peak: dict[str, int]) -> None:
    """Keep in ``peak`` the largest RSS of each process tree, sampled every PEAK_RSS_INTERVAL_SECONDS."""
    while True:
        await asyncio.sleep(PEAK_RSS_INTERVAL_SECONDS)
        for name, pid in pids.items():
            peak[name] = max(peak[name], tree_rss_bytes(pid))


def _failed_level(sessions: int, error: Exception) -> dict[str, Any]:
    """A level whose clients failed outright (a relay that broke down under the load)."""
    nan = float("nan")
    summary = {"p50_ms": nan, "p99_ms": nan, "max_ms": nan, "samples": 0}
    return {
        "sessions": sessions,
        "failed": f"{type(error).__name__}: {error}"[:300],
        "connected": 0,
        "ended": 0,
        "errors": 1,
        "error_examples": [str(error)[:300]],
        "checks": {},
        "frames": 0,
        "cpu_s": {},
        "cpu_user_s": {},
        "cpu_system_s": {},
        "cpu_percent": {},
        "machine_busy_percent": nan,
        "other_load_percent": 0.0,
        "send_lag_p99_ms": nan,
        "up": summary,
        "down": summary,
        "both": summary,
        "intact": False,
    }


async def _measure(
    target: str, sessions: int, seconds: float, watch: dict[str, int], tag: str, profile: int | None = None
) -> dict[str, Any]:
    await quiet()
    try:
        return await audio_level(target, sessions, seconds, watch, tag, profile)
    except (RuntimeError, TimeoutError, OSError, ValueError) as error:
        say(f"  {tag}: the level failed: {error}")
        return _failed_level(sessions, error)


def _judge(subject: Subject, sessions: int, direct: dict[str, Any], via: dict[str, Any]) -> dict[str, Any]:
    added_p99 = via["both"]["p99_ms"] - direct["both"]["p50_ms"]
    via["added_p99_ms"] = added_p99
    spent = via["cpu_s"].get(subject.name)
    via["cpu_us_per_frame"] = (
        1e6 * spent / via["frames"] if via["frames"] and spent is not None else float("nan")
    )
    reasons = []
    if not via["intact"]:
        reasons.append("frames or sessions lost")
    if not added_p99 < AUDIO_ADDED_P99_LIMIT_MS:  # NaN fails too
        reasons.append("added p99")
    if via["send_lag_p99_ms"] >= HARNESS_LAG_LIMIT_MS:
        reasons.append("clients lagging")
    passed = not reasons
    say(
        f"  K={sessions} {subject.name}: one-way p50/p99 direct "
        f"{direct['both']['p50_ms']:.2f}/{direct['both']['p99_ms']:.2f} ms, "
        f"{subject.name} {via['both']['p50_ms']:.2f}/{via['both']['p99_ms']:.2f} ms, "
        f"added p99 {added_p99:.2f} ms; intact {via['intact']}; "
        f"{subject.name} CPU {via['cpu_percent'].get(subject.name, float('nan')):.0f}% "
        f"({via['cpu_us_per_frame']:.0f} us/frame), other processes {via['other_load_percent']:.0f}%, "
        f"client send lag p99 {via['send_lag_p99_ms']:.1f} ms; "
        f"{'PASS' if passed else 'FAIL (' + ', '.join(reasons) + ')'}"
    )
    return {"sessions": sessions, "direct": direct, "via": via, "passed": passed, "reasons": reasons}


async def figure_audio(
    upstream: Server,
    subjects: list[Subject],
    ramp: list[int],
    seconds: float,
    profile: int | None,
    deadline: float = RAMP_DEADLINE_SECONDS,
    retry_budget: float = RETRY_BUDGET_SECONDS,
    joins: dict[str, int] | None = None,
) -> dict[str, Any]:
    """The ramp: at each K, K sessions direct, then through each subject still in the ramp (a
    subject leaves it after two failed levels in a row); the direct level is shared by the subjects.
    A subject in ``joins`` enters the ramp at that K (below it, it is not measured)."""
    joins = joins or {}
    say(
        f"figure 3 ({', '.join(s.name for s in subjects)}): concurrent audio sessions, ramp {ramp}, "
        f"{seconds:g} s of streaming per level and path"
    )
    watch = {"upstream": upstream.pid, **{s.name: s.server.pid for s in subjects}}
    direct_target = _direct(upstream)
    active = [s.name for s in subjects]
    failures = dict.fromkeys(active, 0)
    levels: list[dict[str, Any]] = []
    cut: int | None = None
    for sessions in ramp:
        if not active:
            break
        if elapsed() > deadline:
            cut = sessions
            say(f"  the run is {elapsed():.0f} s old: the ramp stops before K={sessions}")
            break
        direct = await _measure(direct_target, sessions, seconds, watch, f"d{sessions}")
        direct["upstream_us_per_frame"] = (
            1e6 * direct["cpu_s"].get("upstream", 0.0) / max(1, direct["frames"])
        )
        level: dict[str, Any] = {"sessions": sessions, "direct": direct, "subjects": {}}
        for subject in subjects:
            if subject.name not in active or sessions < joins.get(subject.name, 0):
                continue
            tag = f"{subject.name}{sessions}"
            profile_pid = subject.server.pid if profile == sessions and subject.name == "gateway" else None
            via = await _measure(subject.target(), sessions, seconds, watch, tag, profile_pid)
            entry = _judge(subject, sessions, direct, via)
            attempts = [entry]
            while (
                not entry["passed"]
                and entry["via"]["other_load_percent"] > NOISY_NEIGHBOUR_PERCENT
                and len(attempts) < MAX_ATTEMPTS
                and elapsed() < retry_budget
            ):
                say(
                    f"  K={sessions} {subject.name} failed while other processes used "
                    f"{entry['via']['other_load_percent']:.0f}% of a core: measuring it again (with direct)"
                )
                again = await _measure(direct_target, sessions, seconds, watch, f"d{sessions}")
                again["upstream_us_per_frame"] = (
                    1e6 * again["cpu_s"].get("upstream", 0.0) / max(1, again["frames"])
                )
                via = await _measure(subject.target(), sessions, seconds, watch, tag)
                entry = _judge(subject, sessions, again, via)
                attempts.append(entry)
            entry["earlier_attempts"] = attempts[:-1]
            level["subjects"][subject.name] = entry
            failures[subject.name] = 0 if entry["passed"] else failures[subject.name] + 1
            if failures[subject.name] >= 2:
                active.remove(subject.name)
                say(f"  {subject.name} leaves the ramp after two failed levels in a row")
        levels.append(level)
    largest: dict[str, int] = {}
    for subject in subjects:
        entries = [lv["subjects"][subject.name] for lv in levels if subject.name in lv["subjects"]]
        passing = [entry["sessions"] for entry in itertools.takewhile(lambda e: e["passed"], entries)]
        largest[subject.name] = max(passing, default=0)
    direct_ok = [
        level["sessions"]
        for level in levels
        if level["direct"]["intact"]
        and level["direct"]["both"]["p99_ms"] - level["direct"]["both"]["p50_ms"] < AUDIO_ADDED_P99_LIMIT_MS
        and level["direct"]["send_lag_p99_ms"] < HARNESS_LAG_LIMIT_MS
    ]
    return {
        "seconds": seconds,
        "ramp": ramp,
        "subjects": [s.name for s in subjects],
        "levels": levels,
        "largest_passing": largest,
        "largest_direct_ok": max(direct_ok, default=0),
        "cut_by_time_at": cut,
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


async def _rss_per_session(server: Server, target: str, sessions: int, tag: str) -> dict[str, float]:
    """(RSS of ``server``'s process tree with ``sessions`` idle sessions open - before) / sessions.

    RSS does not depend on what else the machine runs, so the wait for an idle machine is short.
    """
    await quiet(patience=5.0)
    warm = await Client.start(f"idle-warm-{tag}", "idle", f"--target={target}", "--sessions=50")
    await warm.expect("connected", seconds=60)
    warm.tell("close")
    await warm.result(seconds=60)
    await asyncio.sleep(1.0)
    before = median([await _rss_after(server.pid, 0.2) for _ in range(3)])
    idle = await Client.start(f"idle-{tag}", "idle", f"--target={target}", f"--sessions={sessions}")
    try:
        _, ok, bad = (await idle.expect("connected", seconds=180)).split()
        await asyncio.sleep(2.0)
        after = median([await _rss_after(server.pid, 0.2) for _ in range(3)])
        idle.tell("close")
        await idle.result(seconds=120)
    finally:
        idle.kill()
    if int(ok) != sessions:
        raise RuntimeError(f"only {ok} of {sessions} idle sessions opened ({bad} failed)")
    return {"before": before, "after": after, "per_session": (after - before) / sessions}


async def _rss_after(pid: int, delay: float) -> float:
    await asyncio.sleep(delay)
    return tree_rss_bytes(pid)


Starter = Callable[[Server, str], Subject]


async def figure_memory(sessions: int, rounds: int, starters: dict[str, Starter]) -> dict[str, Any]:
    say(
        f"figure 4 (direct, {', '.join(starters)}): RSS per open idle session, {sessions} sessions, "
        f"{rounds} rounds (fresh processes each)"
    )
    figure: dict[str, Any] = {
        "sessions": sessions,
        "rounds": rounds,
        DIRECT: [],
        "failures": {},
        **{name: [] for name in starters},
    }
    for round_number in range(rounds):
        upstream = start_upstream(f"upstream-mem{round_number}")
        try:
            # Direct: what the upstream (bench/wire.py's lean server) holds per session.
            figure[DIRECT].append(
                await _rss_per_session(upstream, _direct(upstream), sessions, f"d{round_number}")
            )
            for name, start in starters.items():
                if name in figure["failures"]:
                    continue
                try:
                    subject = await asyncio.to_thread(start, upstream, f"{name}-mem{round_number}")
                except (Unavailable, RuntimeError) as error:
                    figure["failures"][name] = f"did not start: {error}"
                    continue
                try:
                    figure[name].append(
                        await _rss_per_session(
                            subject.server, subject.target(), sessions, f"{name}{round_number}"
                        )
                    )
                except (RuntimeError, TimeoutError, OSError, ValueError) as error:
                    figure["failures"][name] = f"{type(error).__name__}: {error}"[:300]
                finally:
                    subject.server.stop()
        finally:
            upstream.stop()
        say(
            f"  round {round_number + 1}: "
            + ", ".join(
                f"{name} {figure[name][-1]['per_session'] / 1024:.1f} KiB/session"
                for name in [DIRECT, *starters]
                if len(figure[name]) == round_number + 1
            )
        )
    for name in [DIRECT, *starters]:
        if figure[name]:
            figure[f"{name}_kib"] = median([r["per_session"] for r in figure[name]]) / 1024
    return figure


# -- the Worker on the local Pyodide host --------------------------------------------------------


async def section_worker(upstream: Server, args: argparse.Namespace) -> dict[str, Any]:
    say("Worker (Pyodide host): starting")
    try:
        worker = await asyncio.to_thread(start_worker, upstream)
    except Unavailable as error:
        say(f"  the Worker host is skipped: {error}")
        return {"skipped": str(error)}
    section: dict[str, Any] = {"start_seconds": worker.server.start_seconds}
    try:
        section["rtt"] = await figure_rtt(
            upstream, [worker], args.worker_pings, args.worker_ping_rounds, tag="worker-ping", warmup=200
        )
        section["connect"] = await figure_connect(
            upstream, [worker], args.worker_connects // 4, 4, tag="worker-connect"
        )
        if args.worker_ramp:
            # Its few levels come late in the run: they may be measured again while the run is
            # under the ramp's deadline + 2 minutes.
            section["audio"] = await figure_audio(
                upstream,
                [worker],
                args.worker_ramp,
                args.seconds,
                None,
                deadline=float("inf"),
                retry_budget=RAMP_DEADLINE_SECONDS + 120,
            )
    except (RuntimeError, TimeoutError, OSError) as error:
        say(f"  the Worker host failed: {error}")
        section["failed"] = str(error)[:300]
    finally:
        worker.server.stop()
    return section


# -- main ----------------------------------------------------------------------------------------


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
    return {
        "nproc": str(os.cpu_count()),
        "cpu": cpu,
        "memory": memory,
        "python": platform.python_version(),
        "kernel": platform.release(),
        **{package: _version(package) for package in ("aiohttp", "websockets", "uvloop")},
        "load_before": " ".join(Path("/proc/loadavg").read_text().split()[:3]),
    }


def _version(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


INSTALLERS = {"portkey": install_portkey, "litellm": install_litellm}


async def _install_peers(names: list[str]) -> dict[str, str]:
    """Install the peers (in parallel; cached in bench/.cache); the reasons of those that failed."""

    async def one(name: str) -> str | None:
        try:
            await asyncio.to_thread(INSTALLERS[name])
        except Unavailable as error:
            return str(error)
        return None

    reasons = await asyncio.gather(*(one(name) for name in names))
    return {name: reason for name, reason in zip(names, reasons, strict=True) if reason}


async def _start_peers(upstream: Server, names: list[str], peers: dict[str, dict[str, Any]]) -> list[Subject]:
    started = []
    for name in names:
        if peers[name]["status"] != "ok":
            continue
        try:
            subject = await asyncio.to_thread(PEERS[name][1], upstream)
        except Unavailable as error:
            peers[name].update(status="skipped", reason=f"did not start: {error}")
            say(f"  {name} is skipped: {error}")
            continue
        try:
            await probe(subject)
        except (RuntimeError, TimeoutError) as error:
            subject.server.stop()
            peers[name].update(status="skipped", reason=f"started, but a first session failed: {error}")
            say(f"  {name} is skipped: {error}")
            continue
        peers[name]["start_seconds"] = subject.server.start_seconds
        say(
            f"  {name} pid {subject.server.pid} on :{subject.server.port} "
            f"(ready in {subject.server.start_seconds:.1f} s)"
        )
        started.append(subject)
    return started


async def _without_failing_peers(
    what: str,
    measure: Callable[[list[Subject]], Awaitable[dict[str, Any]]],
    subjects: list[Subject],
    peers: dict[str, dict[str, Any]],
) -> dict[str, Any]:
    """``measure(subjects)``; if its client fails with peers among them, the gateway alone again
    (a peer that breaks down must not cost the gateway's figure); the peers are told why."""
    try:
        return await measure(subjects)
    except (RuntimeError, TimeoutError) as error:
        if len(subjects) == 1:
            raise
        say(f"  {what} failed with the peers in it ({error}): measuring the gateway alone")
        for subject in subjects[1:]:
            peers[subject.name].setdefault("failures", []).append(f"{what} (the run failed: {error})")
        return await measure(subjects[:1])


async def run(args: argparse.Namespace) -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    for pattern in (
        "upstream*.log",
        "gateway*.log",
        "portkey*.log",
        "litellm*.log",
        "worker*.log",
        "client-*",
    ):
        for stale in OUT.glob(pattern):  # the servers append to their logs
            stale.unlink()
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
    if args.worker:
        build_worker_bundle()
    peers: dict[str, dict[str, Any]] = {name: {"label": PEERS[name][0], "status": "ok"} for name in PEERS}
    for name in PEERS:
        if name not in args.peers:
            peers[name].update(status="skipped", reason="not asked for (--peers)")
    wanted = [name for name in PEERS if name in args.peers]
    for name, reason in (await _install_peers(wanted)).items():
        peers[name].update(status="skipped", reason=reason)
        say(f"  {name} is skipped: {reason}")
    results["peers"] = peers
    results["versions"] = peer_versions()

    upstream = start_upstream()
    subjects = [start_gateway(upstream)]
    say(
        f"upstream pid {upstream.pid} on :{upstream.port}, "
        f"gateway pid {subjects[0].server.pid} on :{subjects[0].server.port}"
    )
    figures = args.figures
    try:
        subjects += await _start_peers(upstream, wanted, peers)
        if "1" in figures:
            floor = start_forwarder(upstream)
            try:
                results["rtt"] = await _without_failing_peers(
                    "figure 1",
                    lambda chosen: figure_rtt(upstream, [*chosen, floor], args.pings, args.ping_rounds),
                    subjects,
                    peers,
                )
            finally:
                floor.server.stop()
        if "2" in figures:
            results["connect"] = await _without_failing_peers(
                "figure 2",
                lambda chosen: figure_connect(upstream, chosen, args.connects // 4, 4),
                subjects,
                peers,
            )
        if "3" in figures:
            # Figure 3 again with `serve --workers N` beside the one-worker gateway: every core.
            # It joins the ramp at --workers-from (below that, one worker passes already).
            audio_subjects, joins = list(subjects), {}
            if args.workers > 1:
                workers = start_gateway(upstream, "gateway-workers", workers=args.workers)
                audio_subjects.append(workers)
                subjects.append(workers)  # stopped with the others
                joins["workers"] = args.workers_from
            results["audio"] = await figure_audio(
                upstream, audio_subjects, args.ramp, args.seconds, args.profile, joins=joins
            )
            results["audio"]["workers"] = args.workers
        for subject in subjects:
            subject.server.stop()
        if args.worker:
            results["worker"] = await section_worker(upstream, args)
    finally:
        for subject in subjects:
            subject.server.stop()
        upstream.stop()
    if "4" in figures:
        starters: dict[str, Starter] = {"gateway": start_gateway}
        starters |= {s.name: PEERS[s.name][1] for s in subjects if s.name in PEERS}
        results["memory"] = await figure_memory(args.idle_sessions, args.memory_rounds, starters)
    results["duration_s"] = elapsed()

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
    parser.add_argument("--ramp", default="50,100,150,200,250,300,400,500,600,800,1000,1200,1600")
    parser.add_argument(
        "--workers", type=int, default=2, help="figure 3 also with `serve --workers N` (1: not)"
    )
    parser.add_argument(
        "--workers-from", type=int, default=500, help="the K at which `--workers N` joins figure 3's ramp"
    )
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--idle-sessions", type=int, default=1000)
    parser.add_argument("--memory-rounds", type=int, default=3)
    parser.add_argument("--peers", default="portkey,litellm", help="which peers to run beside the gateway")
    parser.add_argument(
        "--no-worker", dest="worker", action="store_false", help="skip the Worker host section"
    )
    parser.add_argument("--worker-pings", type=int, default=1000)
    parser.add_argument("--worker-ping-rounds", type=int, default=4)
    parser.add_argument("--worker-connects", type=int, default=100)
    parser.add_argument(
        "--worker-ramp", default="10,20", help="audio levels for the Worker host ('' for none)"
    )
    parser.add_argument(
        "--profile", type=int, default=None, help="py-spy the gateway at this K (needs py-spy)"
    )
    parser.add_argument("--figures", default="1234", help="which figures to measure (default: all)")
    args = parser.parse_args()
    if args.quick:
        args.pings, args.ping_rounds, args.connects = 300, 2, 40
        args.ramp, args.seconds, args.idle_sessions, args.memory_rounds = "20,40", 4.0, 100, 1
        args.workers_from = 0
        args.worker_pings, args.worker_ping_rounds, args.worker_connects, args.worker_ramp = 200, 2, 20, "5"
    args.ramp = [int(k) for k in args.ramp.split(",")]
    args.worker_ramp = [int(k) for k in args.worker_ramp.split(",") if k.strip()]
    args.peers = [name.strip() for name in args.peers.split(",") if name.strip()]
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
