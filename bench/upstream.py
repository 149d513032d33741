"""The benchmark's upstream: a fast stand-in for a realtime provider, in its own process.

``python -m bench.upstream --port N`` serves ws://127.0.0.1:N/v1/realtime (any path) and prints
``ready`` once listening. Per connection it:

- sends ``session.created`` at once;
- answers each client event tagged as a ping (``"type":"bench.ping"`` or ``"bench":"ping"``) with
  ``{"type":"bench.pong","seq":N}``;
- on ``response.create``: streams ``response.output_audio.delta`` events, 100 ms of PCM16 24 kHz
  audio each, at real time (one every 100 ms, on a drift-free schedule), each stamped with its
  sequence number and the monotonic send time;
- for each ``input_audio_buffer.append`` stamped by the client: notes the one-way latency (its
  receive time minus the client's send time; CLOCK_MONOTONIC is system-wide on Linux) and the
  sequence number (also when a relay re-serialised the event: then it is parsed as JSON);
- on ``response.cancel``: stops the stream and answers ``bench.end`` with how many deltas it sent
  and, in sequence order, the appends it saw and their latencies, so the client checks both
  directions for loss, duplication and reordering.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import time

from aiohttp import WSMsgType, web

from .common import (
    APPEND_HEAD,
    CHUNK_SECONDS,
    DELTA_HEAD,
    DELTA_TAIL,
    PONG_FORMAT,
    parse_stamp,
    raise_fd_limit,
    stamp_of,
)

SESSION_CREATED = json.dumps(
    {
        "type": "session.created",
        "event_id": "event_bench_created",
        "session": {
            "type": "realtime",
            "object": "realtime.session",
            "id": "sess_bench",
            "model": "gpt-realtime",
            "output_modalities": ["audio"],
            "instructions": "You are a benchmark upstream.",
            "tools": [],
            "tool_choice": "auto",
            "max_output_tokens": "inf",
            "tracing": None,
            "prompt": None,
            "expires_at": 0,
            "audio": {
                "input": {
                    "format": {"type": "audio/pcm", "rate": 24000},
                    "transcription": None,
                    "noise_reduction": None,
                    "turn_detection": {
                        "type": "server_vad",
                        "threshold": 0.5,
                        "prefix_padding_ms": 300,
                        "silence_duration_ms": 200,
                        "create_response": True,
                        "interrupt_response": True,
                    },
                },
                "output": {"format": {"type": "audio/pcm", "rate": 24000}, "voice": "alloy", "speed": 1.0},
            },
            "include": None,
        },
    },
    separators=(",", ":"),
)

_HEAD_LEN = len(APPEND_HEAD)


class _Session:
    __slots__ = ("append_latency_ns", "append_seqs", "deltas_sent", "stream")

    def __init__(self) -> None:
        self.append_seqs: list[int] = []
        self.append_latency_ns: list[int] = []
        self.deltas_sent = 0
        self.stream: asyncio.Task[None] | None = None


async def _stream(socket: web.WebSocketResponse, session: _Session) -> None:
    loop = asyncio.get_running_loop()
    start = loop.time()
    seq = 0
    while not socket.closed:
        await socket.send_str(f"{DELTA_HEAD}{seq}_{time.monotonic_ns()}{DELTA_TAIL}")
        seq += 1
        session.deltas_sent = seq
        delay = start + seq * CHUNK_SECONDS - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)


async def _stop(session: _Session) -> None:
    if session.stream is not None:
        session.stream.cancel()
        with contextlib.suppress(asyncio.CancelledError, ConnectionError):
            await session.stream
        session.stream = None


async def handle(request: web.Request) -> web.StreamResponse:
    if request.path == "/healthz":
        return web.Response(text="ok")
    socket = web.WebSocketResponse(compress=False, max_msg_size=64 * 1024 * 1024)
    await socket.prepare(request)
    session = _Session()
    try:
        await socket.send_str(SESSION_CREATED)
        async for message in socket:
            if message.type is not WSMsgType.TEXT:
                continue
            data: str = message.data
            if data.startswith(APPEND_HEAD):  # the hot path: no JSON parse
                received = time.monotonic_ns()
                seq, sent = parse_stamp(data, _HEAD_LEN)
                session.append_seqs.append(seq)
                session.append_latency_ns.append(received - sent)
                continue
            received = time.monotonic_ns()
            event = json.loads(data)
            kind = event.get("type")
            if kind == "input_audio_buffer.append":  # re-serialised by the relay (LiteLLM)
                seq, sent = stamp_of(event["event_id"])
                session.append_seqs.append(seq)
                session.append_latency_ns.append(received - sent)
            elif kind == "bench.ping" or event.get("bench") == "ping":
                await socket.send_str(PONG_FORMAT % event.get("seq", 0))
            elif kind == "response.create":
                if session.stream is None:
                    session.stream = asyncio.create_task(_stream(socket, session))
            elif kind == "response.cancel":
                await _stop(session)
                end = {
                    "type": "bench.end",
                    "deltas_sent": session.deltas_sent,
                    "append_seqs": session.append_seqs,
                    "append_latency_us": [round(ns / 1000, 1) for ns in session.append_latency_ns],
                }
                await socket.send_str(json.dumps(end, separators=(",", ":")))
    except ConnectionError:
        pass
    finally:
        await _stop(session)
    return socket


async def _serve(port: int) -> None:
    app = web.Application()
    app.router.add_route("GET", "/{tail:.*}", handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port, backlog=1024)
    await site.start()
    print("ready", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.upstream", description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    raise_fd_limit()
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(args.port))


if __name__ == "__main__":
    main()
