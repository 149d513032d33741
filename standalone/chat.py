"""A small terminal client: each line typed becomes a user message; the reply streams back.

It speaks GA and understands the beta event names too, so it works against any provider.
"""

from __future__ import annotations

import asyncio
import base64
import json
import sys
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import websockets
from websockets.asyncio.client import connect

TEXT_DELTAS = frozenset(
    {
        "response.output_text.delta",
        "response.text.delta",
        "response.output_audio_transcript.delta",
        "response.audio_transcript.delta",
    }
)
AUDIO_DELTAS = frozenset({"response.output_audio.delta", "response.audio.delta"})
PCM16_BYTES_PER_SECOND = 24_000 * 2


def session_url(url: str, provider: str, model: str | None) -> str:
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query))
    query.setdefault("provider", provider)
    if model:
        query.setdefault("model", model)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(query), ""))


async def _lines(messages: list[str] | None) -> AsyncIterator[str]:
    if messages:
        for message in messages:
            yield message
        return
    loop = asyncio.get_running_loop()
    while True:
        if sys.stdin.isatty():
            print("you> ", end="", flush=True)
        line = await loop.run_in_executor(None, sys.stdin.readline)
        if not line:
            return
        if line.strip():
            yield line.strip()


async def run_chat(
    url: str,
    provider: str,
    model: str | None,
    api_key: str | None,
    audio: bool,
    messages: list[str] | None,
) -> int:
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    try:
        # websockets' asyncio client (websockets.connect is the legacy one before websockets 14).
        connection = await connect(session_url(url, provider, model), additional_headers=headers)
    except (OSError, websockets.InvalidHandshake) as exc:
        print(f"could not connect to {url}: {exc}", file=sys.stderr)
        return 1
    async with connection as socket:
        created = json.loads(await socket.recv())
        if created.get("type") == "error":
            print(f"error: {created['error']['message']}", file=sys.stderr)
            return 1
        model_used = created.get("session", {}).get("model", "?")
        print(f"connected: {created.get('type')} (model {model_used})", file=sys.stderr)
        modalities = ["audio"] if audio else ["text"]
        await socket.send(
            json.dumps(
                {
                    "type": "session.update",
                    "session": {"type": "realtime", "output_modalities": modalities},
                }
            )
        )
        async for line in _lines(messages):
            item = {
                "type": "message",
                "role": "user",
                "content": [{"type": "input_text", "text": line}],
            }
            await socket.send(json.dumps({"type": "conversation.item.create", "item": item}))
            await socket.send(json.dumps({"type": "response.create"}))
            if not await _print_reply(socket):
                return 1
    return 0


async def _print_reply(socket: Any) -> bool:
    """Print one streamed reply; False if the session ended or failed."""
    audio_bytes = 0
    print("assistant> ", end="", flush=True)
    try:
        async for frame in socket:
            event = json.loads(frame)
            kind = event.get("type")
            if kind in TEXT_DELTAS:
                print(event.get("delta", ""), end="", flush=True)
            elif kind in AUDIO_DELTAS:
                audio_bytes += len(base64.b64decode(event.get("delta", "")))
            elif kind == "error":
                print(f"\nerror: {event['error'].get('message')}", file=sys.stderr)
            elif kind == "response.done":
                if audio_bytes:
                    print(f"  [{audio_bytes / PCM16_BYTES_PER_SECOND:.1f} s of audio]", end="")
                print(flush=True)
                return True
    except websockets.ConnectionClosed as closed:
        print(f"\nconnection closed: {closed}", file=sys.stderr)
        return False
    print("\nconnection closed", file=sys.stderr)
    return False
