"""The benchmark's client: one process, one mode, results as JSON in ``--out``.

A target is a JSON object ``{"name", "url", "headers", "created"}``: where to connect, the extra
handshake headers (a peer's routing headers), and whether ``session.created`` reaches the client
(``false`` for Portkey, which drops what the upstream sends before the client's socket is attached:
then the client sends a ping at once and takes its pong as the session's first event).

Modes (``python -m bench.client MODE ...``):

- ``ping``: sequential small-event round trips on one connection to each target (``--target``,
  repeated; the first is the baseline), after a warm-up, in rounds that rotate the targets' order.
- ``connect``: time from starting the TCP connect to the first event (``session.created``, or the
  pong above), sequential fresh connections to each target, in rotating rounds.
- ``audio``: ``--sessions`` concurrent sessions to one target. Prints ``connected`` once they are
  all open, waits for ``go`` on stdin, then each session streams ``input_audio_buffer.append``
  (100 ms of audio every 100 ms, stamped ``a<seq>_<send ns>``) while the upstream streams deltas
  back; prints ``streamed`` when every session has its ``bench.end``, then closes them.
- ``idle``: ``--sessions`` sessions to one target opened and left idle; prints ``connected``,
  waits for ``close``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import random
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from .common import (
    API_KEY,
    APPEND_HEAD,
    APPEND_TAIL,
    CHUNK_SECONDS,
    DELTA_HEAD,
    PING_FORMAT,
    PONG_FORMAT,
    START_AUDIO,
    STOP_AUDIO,
    parse_stamp,
    percentile,
    raise_fd_limit,
    stamp_of,
    tree_cpu_times,
)

HEADERS = {"Authorization": f"Bearer {API_KEY}"}
CONNECT_CONCURRENCY = 50
RECEIVE_TIMEOUT_SECONDS = 30.0
SYNC_SEQ = -1  # the ping that opens a session on a target that sends no session.created
_SYNC_PONG = PONG_FORMAT % SYNC_SEQ


@dataclass(frozen=True)
class Target:
    name: str
    url: str
    headers: dict[str, str]
    created: bool

    @classmethod
    def parse(cls, spec: str) -> Target:
        data = json.loads(spec)
        headers = {**HEADERS, **data.get("headers", {})}
        return cls(data["name"], data["url"], headers, data.get("created", True))


async def _open(http: aiohttp.ClientSession, target: Target) -> aiohttp.ClientWebSocketResponse:
    """Open a session and read its first event: ``session.created``, or (on a target that drops it)
    the pong of a ping sent at once, skipping a ``session.created`` that does come first."""
    ws = await http.ws_connect(target.url, headers=target.headers, compress=0, max_msg_size=0, autoping=True)
    if not target.created:
        await ws.send_str(PING_FORMAT % (SYNC_SEQ, SYNC_SEQ))
    while True:
        message = await ws.receive(timeout=RECEIVE_TIMEOUT_SECONDS)
        if message.type is not aiohttp.WSMsgType.TEXT:
            await ws.close()
            raise RuntimeError(f"{target.name}: no first event: {message.type} {message.data!r}")
        data: str = message.data
        if target.created:
            if '"session.created"' in data[:64]:
                return ws
        elif data == _SYNC_PONG or json.loads(data) == {"type": "bench.pong", "seq": SYNC_SEQ}:
            return ws
        elif '"session.created"' in data[:64]:
            continue
        await ws.close()
        raise RuntimeError(f"{target.name}: unexpected first event {data[:200]}")


def _http() -> aiohttp.ClientSession:
    return aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0, force_close=True))


async def _readline() -> str:
    return (await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)).strip()


def _say(line: str) -> None:
    print(line, flush=True)


# -- ping ----------------------------------------------------------------------------------------


async def _pings(ws: aiohttp.ClientWebSocketResponse, first: int, count: int) -> list[float]:
    rtts: list[float] = []
    clock = time.perf_counter_ns
    for seq in range(first, first + count):
        frame = PING_FORMAT % (seq, seq)
        start = clock()
        await ws.send_str(frame)
        message = await ws.receive(timeout=RECEIVE_TIMEOUT_SECONDS)
        end = clock()
        if message.type is not aiohttp.WSMsgType.TEXT or json.loads(message.data).get("seq") != seq:
            raise RuntimeError(f"ping {seq}: unexpected answer {message.type} {str(message.data)[:200]}")
        rtts.append((end - start) / 1000)
    return rtts


class _CpuMeter:
    """CPU seconds, [user, system], the watched process trees (``--watch name=pid``) spend in each
    block of each target."""

    def __init__(self, watch: list[str], targets: list[Target]) -> None:
        self.pids = {name: int(pid) for name, _, pid in (item.partition("=") for item in watch)}
        self.seconds: dict[str, dict[str, list[list[float]]]] = {target.name: {} for target in targets}

    @contextlib.contextmanager
    def block(self, path: str) -> Iterator[None]:
        before = {name: tree_cpu_times(pid) for name, pid in self.pids.items()}
        yield
        for name, pid in self.pids.items():
            user, system = tree_cpu_times(pid)
            spent = [user - before[name][0], system - before[name][1]]
            self.seconds[path].setdefault(name, []).append(spent)


def _rotation(targets: list[Target], round_number: int) -> list[Target]:
    """The targets' order in a round: rotated by one each round, so each takes each place in turn."""
    shift = round_number % len(targets)
    return targets[shift:] + targets[:shift]


async def run_ping(args: argparse.Namespace) -> dict[str, Any]:
    targets: list[Target] = args.target
    results: dict[str, Any] = {target.name: [] for target in targets}
    meter = _CpuMeter(args.watch, targets)
    async with _http() as http:
        sockets = {target.name: await _open(http, target) for target in targets}
        seq = 0
        for ws in sockets.values():
            await _pings(ws, seq, args.warmup)
            seq += args.warmup
        for round_number in range(args.rounds):
            for target in _rotation(targets, round_number):
                with meter.block(target.name):
                    results[target.name].append(await _pings(sockets[target.name], seq, args.n))
                seq += args.n
            _say(f"ping round {round_number + 1}/{args.rounds} done")
        for ws in sockets.values():
            await ws.close()
    results["cpu_s"] = meter.seconds
    return results


# -- connect -------------------------------------------------------------------------------------


async def run_connect(args: argparse.Namespace) -> dict[str, Any]:
    targets: list[Target] = args.target
    results: dict[str, Any] = {target.name: [] for target in targets}
    meter = _CpuMeter(args.watch, targets)
    async with _http() as http:
        for target in targets:  # warm-up: imports, first-connection costs
            for _ in range(5):
                await (await _open(http, target)).close()
        for round_number in range(args.rounds):
            for target in _rotation(targets, round_number):
                times: list[float] = []
                with meter.block(target.name):
                    for _ in range(args.n):
                        start = time.perf_counter_ns()
                        ws = await _open(http, target)
                        times.append((time.perf_counter_ns() - start) / 1000)
                        await ws.close()
                        await asyncio.sleep(0.005)  # let both ends finish the close before the next
                results[target.name].append(times)
            _say(f"connect round {round_number + 1}/{args.rounds} done")
    results["cpu_s"] = meter.seconds
    return results


# -- audio ---------------------------------------------------------------------------------------


@dataclass
class _AudioSession:
    ws: aiohttp.ClientWebSocketResponse
    appends_sent: int = 0
    lag_ms: list[float] = field(default_factory=list)
    delta_seqs: list[int] = field(default_factory=list)
    delta_latency_us: list[float] = field(default_factory=list)
    end: dict[str, Any] | None = None
    errors: list[str] = field(default_factory=list)


async def _send_audio(session: _AudioSession, frames: int, offset: float) -> None:
    loop = asyncio.get_running_loop()
    ws = session.ws
    await asyncio.sleep(offset)  # spread the sessions over one chunk period
    await ws.send_str(START_AUDIO)
    start = loop.time()
    for seq in range(frames):
        target = start + seq * CHUNK_SECONDS
        delay = target - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        session.lag_ms.append(max(0.0, loop.time() - target) * 1000)
        await ws.send_str(f"{APPEND_HEAD}{seq}_{time.monotonic_ns()}{APPEND_TAIL}")
        session.appends_sent = seq + 1
    await ws.send_str(STOP_AUDIO)


async def _receive_audio(session: _AudioSession) -> None:
    ws = session.ws
    head_len = len(DELTA_HEAD)
    clock = time.monotonic_ns
    while True:
        message = await ws.receive(timeout=RECEIVE_TIMEOUT_SECONDS)
        if message.type is not aiohttp.WSMsgType.TEXT:
            session.errors.append(f"socket ended: {message.type} {message.data!r}")
            return
        data: str = message.data
        if data.startswith(DELTA_HEAD):
            received = clock()
            seq, sent = parse_stamp(data, head_len)
            session.delta_seqs.append(seq)
            session.delta_latency_us.append((received - sent) / 1000)
            continue
        received = clock()
        event = json.loads(data)
        if event.get("type") == "response.output_audio.delta":  # re-serialised by the relay
            seq, sent = stamp_of(event["event_id"])
            session.delta_seqs.append(seq)
            session.delta_latency_us.append((received - sent) / 1000)
            continue
        if event.get("type") == "bench.end":
            session.end = event
            return
        session.errors.append(data[:300])


def _sequence_check(seqs: list[int], sent: int) -> dict[str, int]:
    """Lost, duplicated and out-of-order frames, given the received sequence and how many were sent."""
    distinct = set(seqs)
    return {
        "lost": sent - len(distinct & set(range(sent))),
        "duplicated": len(seqs) - len(distinct),
        "reordered": sum(1 for before, after in itertools.pairwise(seqs) if after < before),
        "unexpected": len(distinct - set(range(sent))),
    }


def _by_round(
    seqs: list[int], values: list[float], warm: int, per_round: int, rounds: int
) -> list[list[float]]:
    out: list[list[float]] = [[] for _ in range(rounds)]
    for seq, value in zip(seqs, values, strict=True):
        index = (seq - warm) // per_round
        if seq >= warm and index < rounds:
            out[index].append(value)
    return out


async def _connect_all(
    http: aiohttp.ClientSession, target: Target, count: int
) -> tuple[list[Any], list[str]]:
    gate = asyncio.Semaphore(CONNECT_CONCURRENCY)

    async def one() -> Any:
        async with gate:
            return await _open(http, target)

    outcomes = await asyncio.gather(*(one() for _ in range(count)), return_exceptions=True)
    sockets = [ws for ws in outcomes if not isinstance(ws, BaseException)]
    failures = [repr(exc)[:200] for exc in outcomes if isinstance(exc, BaseException)]
    return sockets, failures


async def _close_all(sockets: list[aiohttp.ClientWebSocketResponse]) -> None:
    async def close(ws: aiohttp.ClientWebSocketResponse) -> None:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(ws.close(), 10)

    await asyncio.gather(*(close(ws) for ws in sockets))


async def run_audio(args: argparse.Namespace) -> dict[str, Any]:
    frames = round(args.seconds / CHUNK_SECONDS)
    per_round = (frames - args.warm_frames) // args.rounds
    async with _http() as http:
        sockets, failures = await _connect_all(http, args.target, args.sessions)
        _say(f"connected {len(sockets)} {len(failures)}")
        if await _readline() != "go":
            raise SystemExit("expected go")
        sessions = [_AudioSession(ws) for ws in sockets]
        rng = random.Random(args.seed)
        tasks = []
        for session in sessions:
            tasks.append(asyncio.create_task(_receive_audio(session)))
            tasks.append(asyncio.create_task(_send_audio(session, frames, rng.uniform(0, CHUNK_SECONDS))))
        outcomes = await asyncio.gather(*tasks, return_exceptions=True)
        task_errors = [repr(exc)[:200] for exc in outcomes if isinstance(exc, BaseException)]
        _say("streamed")
        await _close_all(sockets)

    up_rounds: list[list[float]] = [[] for _ in range(args.rounds)]
    down_rounds: list[list[float]] = [[] for _ in range(args.rounds)]
    totals = {"lost": 0, "duplicated": 0, "reordered": 0, "unexpected": 0}
    checks = {"up": dict(totals), "down": dict(totals)}
    lags: list[float] = []
    appends_sent = deltas_received = ended = 0
    errors: list[str] = []
    for session in sessions:
        lags += session.lag_ms
        appends_sent += session.appends_sent
        deltas_received += len(session.delta_seqs)
        errors += session.errors
        down = _by_round(
            session.delta_seqs, session.delta_latency_us, args.warm_frames, per_round, args.rounds
        )
        for index, values in enumerate(down):
            down_rounds[index] += values
        sent = session.end["deltas_sent"] if session.end else len(session.delta_seqs)
        for name, value in _sequence_check(session.delta_seqs, sent).items():
            checks["down"][name] += value
        if session.end is None:
            checks["up"]["lost"] += session.appends_sent
            continue
        ended += 1
        up_seqs = session.end["append_seqs"]
        up = _by_round(up_seqs, session.end["append_latency_us"], args.warm_frames, per_round, args.rounds)
        for index, values in enumerate(up):
            up_rounds[index] += values
        for name, value in _sequence_check(up_seqs, session.appends_sent).items():
            checks["up"][name] += value
    return {
        "sessions": args.sessions,
        "connected": len(sockets),
        "connect_failures": failures[:5],
        "connect_failure_count": len(failures),
        "ended": ended,
        "appends_sent": appends_sent,
        "deltas_received": deltas_received,
        "checks": checks,
        "errors": (errors + task_errors)[:10],
        "error_count": len(errors) + len(task_errors),
        "send_lag_ms": {
            "p50": percentile(lags, 50),
            "p99": percentile(lags, 99),
            "max": max(lags, default=0),
        },
        "up_rounds_us": up_rounds,
        "down_rounds_us": down_rounds,
    }


# -- idle ----------------------------------------------------------------------------------------


async def run_idle(args: argparse.Namespace) -> dict[str, Any]:
    async with _http() as http:
        sockets, failures = await _connect_all(http, args.target, args.sessions)
        _say(f"connected {len(sockets)} {len(failures)}")
        line = await _readline()
        await _close_all(sockets)
    return {"connected": len(sockets), "failures": failures[:5], "command": line}


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.client", description=__doc__)
    modes = parser.add_subparsers(dest="mode", required=True)
    for name in ("ping", "connect"):
        mode = modes.add_parser(name)
        mode.add_argument("--target", type=Target.parse, action="append", required=True, help="JSON")
        mode.add_argument("--n", type=int, required=True)
        mode.add_argument("--rounds", type=int, required=True)
        mode.add_argument("--warmup", type=int, default=200)
        mode.add_argument("--watch", action="append", default=[], help="name=pid: CPU to measure")
    audio = modes.add_parser("audio")
    audio.add_argument("--sessions", type=int, required=True)
    audio.add_argument("--seconds", type=float, required=True)
    audio.add_argument("--warm-frames", type=int, default=10)
    audio.add_argument("--rounds", type=int, default=3)
    audio.add_argument("--seed", type=int, default=1)
    idle = modes.add_parser("idle")
    idle.add_argument("--sessions", type=int, required=True)
    for name in ("audio", "idle"):
        modes.choices[name].add_argument("--target", type=Target.parse, required=True, help="JSON")
    for mode in modes.choices.values():
        mode.add_argument("--out", required=True)
    args = parser.parse_args()
    raise_fd_limit()
    runner = {"ping": run_ping, "connect": run_connect, "audio": run_audio, "idle": run_idle}[args.mode]
    result = asyncio.run(runner(args))
    with open(args.out, "w") as out:
        json.dump(result, out)


if __name__ == "__main__":
    main()
