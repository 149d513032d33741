"""The benchmark's upstream: a fast stand-in for a realtime provider, in its own process.

``python -m bench.upstream --port N`` serves ws://127.0.0.1:N/v1/realtime (any path; ``/healthz``
answers 200) and prints ``ready`` once listening. It shares the machine with the relay it serves, so
it is built to spend little per frame: the lean layer of ``bench/wire.py`` (uvloop, a protocol
callback per read, pre-built delta frames, appends read by bytes). Per connection it:

- sends ``session.created`` at once;
- answers each client event tagged as a ping (``"type":"bench.ping"`` or ``"bench":"ping"``) with
  ``{"type":"bench.pong","seq":N}``;
- on ``response.create``: streams ``response.output_audio.delta`` events, 100 ms of PCM16 24 kHz
  audio each, at real time (one every 100 ms, on a drift-free timer), each stamped with its
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

from .common import CHUNK_SECONDS, PONG_FORMAT, raise_fd_limit, stamp_of
from .wire import APPEND_FRAME, DELTA_FRAME, ServerConnection, run

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


class _Session(ServerConnection):
    """One connection: receives the clients' appends, streams deltas on a timer, answers the rest."""

    def __init__(self) -> None:
        super().__init__(receives=APPEND_FRAME)
        self.append_seqs: list[int] = []
        self.append_latency_ns: list[int] = []
        self.deltas_sent = 0
        self._stream_start = 0.0
        self._stream: asyncio.TimerHandle | None = None

    def on_open(self) -> None:
        self.send_text(SESSION_CREATED)

    def on_hot(self, seq: int, sent_ns: int, received_ns: int) -> None:
        self.append_seqs.append(seq)
        self.append_latency_ns.append(received_ns - sent_ns)

    def on_message(self, data: str | bytes, received_ns: int) -> None:
        if not isinstance(data, str):
            return
        event = json.loads(data)
        kind = event.get("type")
        if kind == "input_audio_buffer.append":  # re-serialised by the relay (LiteLLM)
            self.on_hot(*stamp_of(event["event_id"]), received_ns)
        elif kind == "bench.ping" or event.get("bench") == "ping":
            self.send_text(PONG_FORMAT % event.get("seq", 0))
        elif kind == "response.create":
            if self._stream is None:
                self._stream_start = time.monotonic()
                self._send_delta()
        elif kind == "response.cancel":
            self._stop()
            end = {
                "type": "bench.end",
                "deltas_sent": self.deltas_sent,
                "append_seqs": self.append_seqs,
                "append_latency_us": [round(ns / 1000, 1) for ns in self.append_latency_ns],
            }
            self.send_text(json.dumps(end, separators=(",", ":")))

    def on_lost(self) -> None:
        self._stop()

    def _send_delta(self) -> None:
        """Send the next delta and set the timer for the one after (drift-free: from the start)."""
        seq = self.deltas_sent
        if not self.send_frame(DELTA_FRAME.build(seq, time.monotonic_ns())):
            self._stream = None
            return
        self.deltas_sent = seq + 1
        delay = self._stream_start + self.deltas_sent * CHUNK_SECONDS - time.monotonic()
        self._stream = self.loop.call_later(delay, self._send_delta)

    def _stop(self) -> None:
        if self._stream is not None:
            self._stream.cancel()
            self._stream = None


async def _serve(port: int) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(_Session, "127.0.0.1", port, backlog=1024)
    print("ready", flush=True)
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.upstream", description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    raise_fd_limit()
    with contextlib.suppress(KeyboardInterrupt):
        run(_serve(args.port))


if __name__ == "__main__":
    main()
