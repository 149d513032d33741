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
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

import aiohttp

from .common import (
    API_KEY,
    CHUNK_SECONDS,
    PING_FORMAT,
    PONG_FORMAT,
    START_AUDIO,
    STOP_AUDIO,
    percentile,
    raise_fd_limit,
    stamp_of,
    tree_cpu_times,
)
from .wire import APPEND_FRAME, DELTA_FRAME, ClientConnection, connect, run

T = TypeVar("T")

HEADERS = {"Authorization": f"Bearer {API_KEY}"}
CONNECT_CONCURRENCY = 50
RECEIVE_TIMEOUT_SECONDS = 30.0
CLOSE_TIMEOUT_SECONDS = 10.0
SYNC_SEQ = -1  # the ping that opens a session on a target that sends no session.created
_SYNC_PING = PING_FORMAT % (SYNC_SEQ, SYNC_SEQ)
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


def _is_first_event(target: Target, data: str) -> bool:
    """Whether ``data`` is the event that opens a session on ``target``: ``session.created``, or
    (on a target that drops it) the pong of the ping sent at once, before which a ``session.created``
    that does come is skipped. Raises on anything else."""
    if target.created:
        if '"session.created"' in data[:64]:
            return True
    elif data == _SYNC_PONG or json.loads(data) == {"type": "bench.pong", "seq": SYNC_SEQ}:
        return True
    elif '"session.created"' in data[:64]:
        return False
    raise RuntimeError(f"{target.name}: unexpected first event {data[:200]}")


async def _open(http: aiohttp.ClientSession, target: Target) -> aiohttp.ClientWebSocketResponse:
    """Open a session on aiohttp and read its first event (:func:`_is_first_event`)."""
    ws = await http.ws_connect(target.url, headers=target.headers, compress=0, max_msg_size=0, autoping=True)
    if not target.created:
        await ws.send_str(_SYNC_PING)
    try:
        while True:
            message = await ws.receive(timeout=RECEIVE_TIMEOUT_SECONDS)
            if message.type is not aiohttp.WSMsgType.TEXT:
                raise RuntimeError(f"{target.name}: no first event: {message.type} {message.data!r}")
            if _is_first_event(target, message.data):
                return ws
    except BaseException:
        await ws.close()
        raise


async def _connect_all(open_one: Callable[[], Awaitable[T]], count: int) -> tuple[list[T], list[str]]:
    """``count`` sessions opened by ``open_one``, at most CONNECT_CONCURRENCY at a time; the
    sessions that opened and why the others did not."""
    gate = asyncio.Semaphore(CONNECT_CONCURRENCY)

    async def one() -> T:
        async with gate:
            return await open_one()

    outcomes = await asyncio.gather(*(one() for _ in range(count)), return_exceptions=True)
    sessions = [outcome for outcome in outcomes if not isinstance(outcome, BaseException)]
    failures = [repr(outcome)[:200] for outcome in outcomes if isinstance(outcome, BaseException)]
    return sessions, failures


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


def _resolve(future: asyncio.Future[None], error: BaseException | None = None) -> None:
    if not future.done():
        if error is None:
            future.set_result(None)
        else:
            future.set_exception(error)


class _AudioSession(ClientConnection):
    """One audio session, driven by its transport's callbacks and its own send timer (no task)."""

    def __init__(self, target: Target) -> None:
        super().__init__(target.url, target.headers, receives=DELTA_FRAME)
        self.target = target
        self.opened: asyncio.Future[None] = self.loop.create_future()  # its first event came
        self.finished: asyncio.Future[None] = self.loop.create_future()  # bench.end came, or the end
        self.closed: asyncio.Future[None] = self.loop.create_future()  # the TCP connection ended
        self.appends_sent = 0
        self.lag_ms: list[float] = []
        self.delta_seqs: list[int] = []
        self.delta_latency_us: list[float] = []
        self.end: dict[str, Any] | None = None
        self.errors: list[str] = []
        self._appends_to_send = 0
        self._start = 0.0

    # -- opening -------------------------------------------------------------------------------------

    def on_open(self) -> None:
        if not self.target.created:
            self.send_text(_SYNC_PING)

    def on_refused(self, error: Exception) -> None:
        _resolve(self.opened, RuntimeError(f"{self.target.name}: handshake failed: {error}"))

    def _opening(self, data: str | bytes) -> None:
        try:
            if not isinstance(data, str):
                raise RuntimeError(f"{self.target.name}: a binary first event")
            if _is_first_event(self.target, data):
                _resolve(self.opened)
        except (RuntimeError, ValueError) as error:
            _resolve(self.opened, error)

    # -- streaming -----------------------------------------------------------------------------------

    def stream(self, frames: int, offset: float) -> None:
        """Send ``frames`` appends, one per chunk period, the first ``offset`` s from now."""
        self._appends_to_send = frames
        self.loop.call_later(offset, self._begin)

    def _begin(self) -> None:
        self.send_text(START_AUDIO)
        self._start = time.monotonic()
        self._send_append()

    def _send_append(self) -> None:
        seq = self.appends_sent
        due = self._start + seq * CHUNK_SECONDS
        # uvloop's timers have 1 ms resolution and may fire up to 1 ms early: early is on time.
        self.lag_ms.append(max(0.0, time.monotonic() - due) * 1000)
        if not self.send_frame(APPEND_FRAME.build(seq, time.monotonic_ns())):
            return  # the connection is closing: on_lost tells
        self.appends_sent = seq + 1
        if self.appends_sent < self._appends_to_send:
            delay = due + CHUNK_SECONDS - time.monotonic()
            self.loop.call_later(delay, self._send_append)
        else:
            self.send_text(STOP_AUDIO)

    # -- receiving -----------------------------------------------------------------------------------

    def on_hot(self, seq: int, sent_ns: int, received_ns: int) -> None:
        self.delta_seqs.append(seq)
        self.delta_latency_us.append((received_ns - sent_ns) / 1000)

    def on_message(self, data: str | bytes, received_ns: int) -> None:
        if not self.opened.done():
            self._opening(data)
        elif not self._expected(data, received_ns):
            self.errors.append(str(data[:300]))

    def _expected(self, data: str | bytes, received_ns: int) -> bool:
        """Take a delta that is not a hot frame (a relay re-serialised it: LiteLLM) or ``bench.end``;
        False for anything else."""
        if not isinstance(data, str):
            return False
        try:
            event = json.loads(data)
            if event["type"] == "response.output_audio.delta":
                self.on_hot(*stamp_of(event["event_id"]), received_ns)
            elif event["type"] == "bench.end":
                self.end = event
                _resolve(self.finished)
            else:
                return False
        except (ValueError, KeyError, TypeError):
            return False
        return True

    def on_lost(self) -> None:
        _resolve(self.opened, RuntimeError(f"{self.target.name}: connection ended before the first event"))
        if not self.finished.done():
            self.errors.append(f"socket ended: close code {self.ws.close_code}")
            _resolve(self.finished)
        _resolve(self.closed)


async def _open_audio(target: Target) -> _AudioSession:
    session = _AudioSession(target)
    await connect(session)
    try:
        await asyncio.wait_for(session.opened, RECEIVE_TIMEOUT_SECONDS)
    except BaseException:
        session.transport.abort()
        raise
    return session


async def _stream_all(sessions: list[_AudioSession], frames: int, seed: int) -> None:
    """Stream from every session, each starting at a random offset within one chunk period (so that
    their frames spread over it), until each has its ``bench.end`` or gives up waiting."""
    rng = random.Random(seed)
    for session in sessions:
        session.stream(frames, rng.uniform(0, CHUNK_SECONDS))
    patience = (frames + 1) * CHUNK_SECONDS + RECEIVE_TIMEOUT_SECONDS
    if sessions:
        await asyncio.wait([session.finished for session in sessions], timeout=patience)
    for session in sessions:
        if not session.finished.done():
            session.errors.append(f"no bench.end within {patience:g} s")


async def _close_audio(sessions: list[_AudioSession]) -> None:
    """The closing handshake of every session; a peer that does not finish it in time is dropped."""
    for session in sessions:
        session.close()
    if sessions:
        await asyncio.wait([session.closed for session in sessions], timeout=CLOSE_TIMEOUT_SECONDS)
    for session in sessions:
        if not session.closed.done():
            session.transport.abort()


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


async def run_audio(args: argparse.Namespace) -> dict[str, Any]:
    frames = round(args.seconds / CHUNK_SECONDS)
    sessions, failures = await _connect_all(lambda: _open_audio(args.target), args.sessions)
    _say(f"connected {len(sessions)} {len(failures)}")
    if await _readline() != "go":
        raise SystemExit("expected go")
    await _stream_all(sessions, frames, args.seed)
    _say("streamed")
    await _close_audio(sessions)
    return {
        "sessions": args.sessions,
        "connected": len(sessions),
        "connect_failures": failures[:5],
        "connect_failure_count": len(failures),
        **_audio_summary(sessions, frames, args.warm_frames, args.rounds),
    }


def _audio_summary(sessions: list[_AudioSession], frames: int, warm: int, rounds: int) -> dict[str, Any]:
    """Both directions' latencies by round (after ``warm`` frames), their sequence checks, the
    clients' send lag."""
    per_round = (frames - warm) // rounds
    up_rounds: list[list[float]] = [[] for _ in range(rounds)]
    down_rounds: list[list[float]] = [[] for _ in range(rounds)]
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
        down = _by_round(session.delta_seqs, session.delta_latency_us, warm, per_round, rounds)
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
        up = _by_round(up_seqs, session.end["append_latency_us"], warm, per_round, rounds)
        for index, values in enumerate(up):
            up_rounds[index] += values
        for name, value in _sequence_check(up_seqs, session.appends_sent).items():
            checks["up"][name] += value
    return {
        "ended": ended,
        "appends_sent": appends_sent,
        "deltas_received": deltas_received,
        "checks": checks,
        "errors": errors[:10],
        "error_count": len(errors),
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
        sockets, failures = await _connect_all(lambda: _open(http, args.target), args.sessions)
        _say(f"connected {len(sockets)} {len(failures)}")
        line = await _readline()
        await _close_all(sockets)
    return {"connected": len(sockets), "failures": failures[:5], "command": line}


async def _close_all(sockets: list[aiohttp.ClientWebSocketResponse]) -> None:
    async def close(ws: aiohttp.ClientWebSocketResponse) -> None:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(ws.close(), CLOSE_TIMEOUT_SECONDS)

    await asyncio.gather(*(close(ws) for ws in sockets))


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
    # Only the audio mode must be cheap per frame (the lean layer, on uvloop); the others keep the
    # aiohttp client on asyncio that figures 1, 2 and 4 have always been measured with.
    result = (run if args.mode == "audio" else asyncio.run)(runner(args))
    with open(args.out, "w") as out:
        json.dump(result, out)


if __name__ == "__main__":
    main()
