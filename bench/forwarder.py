"""The floor of figure 1: a TCP relay that forwards bytes and nothing else (``make bench`` runs it).

Each accepted connection gets a connection to the upstream; bytes are written on as they arrive,
in the transport callbacks, on uvloop where installed. No WebSocket parsing, no checks, no timers:
whatever a relay process adds beyond this on the same machine is its own work; this much is the
kernel's loopback, the scheduler and one event loop hop each way.
"""

from __future__ import annotations

import argparse
import asyncio
from typing import Any


class _Side(asyncio.Protocol):
    def __init__(self) -> None:
        self.transport: Any = None
        self.peer: _Side | None = None
        self.pending: list[bytes] = []

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        if self.peer is not None and self.peer.transport is not None:
            self.peer.transport.write(data)
        else:
            self.pending.append(data)  # the upstream connection is still being made

    def connection_lost(self, exc: Exception | None) -> None:
        if self.peer is not None and self.peer.transport is not None:
            self.peer.transport.close()


class _Accepted(_Side):
    def __init__(self, upstream_port: int) -> None:
        super().__init__()
        self._upstream_port = upstream_port

    def connection_made(self, transport: Any) -> None:
        super().connection_made(transport)
        asyncio.get_running_loop().create_task(self._connect())

    async def _connect(self) -> None:
        upstream = _Side()
        upstream.peer, self.peer = self, upstream
        loop = asyncio.get_running_loop()
        try:
            await loop.create_connection(lambda: upstream, "127.0.0.1", self._upstream_port)
        except OSError:
            self.transport.close()
            return
        for data in self.pending:
            upstream.transport.write(data)
        self.pending.clear()


async def _serve(port: int, upstream_port: int) -> None:
    loop = asyncio.get_running_loop()
    await loop.create_server(lambda: _Accepted(upstream_port), "127.0.0.1", port)
    await asyncio.Event().wait()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.forwarder", description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--to", type=int, required=True, help="the upstream's port on 127.0.0.1")
    args = parser.parse_args()
    try:
        import uvloop
    except ImportError:
        asyncio.run(_serve(args.port, args.to))
    else:
        uvloop.run(_serve(args.port, args.to))


if __name__ == "__main__":
    main()
