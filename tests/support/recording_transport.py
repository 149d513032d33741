"""A stand-in for an asyncio transport that keeps what is written to it, for sans-I/O tests."""

from __future__ import annotations


class RecordingTransport:
    """What a protocol writes, and whether it closed (or aborted) the connection."""

    def __init__(self) -> None:
        self.written = bytearray()
        self.closed = False

    def write(self, data: bytes) -> None:
        self.written += data

    def close(self) -> None:
        self.closed = True

    abort = close

    def pause_reading(self) -> None: ...

    def resume_reading(self) -> None: ...
