"""The relay's hot path in WebSocket framing: whole frames out of the byte stream, text frames built.

python-websockets parses a frame in Python generators (~10 µs a frame, ~5 to build one, and a
``getrandom`` system call for each masking key), which was a third of the relay's own CPU. Nearly
every frame a realtime session carries is a complete, unfragmented text frame, so
:class:`standalone.websocket.PeerSocket` splits the stream into whole frames here, reads those
text frames itself (:func:`text_payload`), and hands websockets every other frame (control
frames, fragments, anything unusual) whole, so its parser always starts at a frame boundary and
keeps the protocol's state, checks and errors. Outgoing text frames are built by
:func:`text_frame`. What this relies on in websockets beyond its documented API is in
:mod:`standalone.internals`.
"""

from __future__ import annotations

import os
import struct

from .internals import apply_mask

# The first byte of a text frame that is a whole message: FIN set, no reserved bits, opcode 1.
WHOLE_TEXT = 0x81
_MASKED = 0x80
_LENGTH_16 = 126
_LENGTH_64 = 127
_HEAD_16 = struct.Struct("!BBH")
_HEAD_64 = struct.Struct("!BBQ")


def frame_size(buffer: bytes, start: int) -> tuple[int, int] | None:
    """The header and payload lengths of the frame at ``start``, or None while its header is short.

    The payload may not all be there yet: the caller compares with the bytes it has.
    """
    available = len(buffer) - start
    if available < 2:
        return None
    second = buffer[start + 1]
    length = second & 0x7F
    header = 6 if second & _MASKED else 2
    if length == _LENGTH_16:
        if available < 4:
            return None
        return header + 2, int.from_bytes(buffer[start + 2 : start + 4], "big")
    if length == _LENGTH_64:
        if available < 10:
            return None
        return header + 8, int.from_bytes(buffer[start + 2 : start + 10], "big")
    return header, length


def text_payload(buffer: bytes, start: int, header: int, end: int, *, masked: bool) -> bytes | None:
    """The payload of the whole text frame ``buffer[start:end]``, unmasked; None if it is not one
    (another opcode, a fragment, reserved bits, or masking other than ``masked`` says it must be)."""
    if buffer[start] != WHOLE_TEXT or bool(buffer[start + 1] & _MASKED) is not masked:
        return None
    if not masked:
        return buffer[start + header : end]
    view = memoryview(buffer)
    return apply_mask(view[start + header : end], view[start + header - 4 : start + header])


def text_frame(payload: bytes, *, mask: bool) -> bytes:
    """One unfragmented text frame; masked with a fresh key when sent by a client."""
    length = len(payload)
    mask_bit = _MASKED if mask else 0
    if length < _LENGTH_16:
        head = bytes((WHOLE_TEXT, mask_bit | length))
    elif length < 1 << 16:
        head = _HEAD_16.pack(WHOLE_TEXT, mask_bit | _LENGTH_16, length)
    else:
        head = _HEAD_64.pack(WHOLE_TEXT, mask_bit | _LENGTH_64, length)
    if not mask:
        return head + payload
    key = _mask_keys.next()
    return b"".join((head, key, apply_mask(payload, key)))


class MaskKeys:
    """Masking keys from the operating system's CSPRNG, drawn a page at a time.

    RFC 6455 5.3 asks for a fresh, unpredictable key per frame; websockets draws each with its own
    system call. A page of ``os.urandom`` gives 1,024 keys that are just as unpredictable.
    """

    PAGE_BYTES = 4096

    def __init__(self) -> None:
        self._page = b""
        self._offset = 0

    def next(self) -> bytes:
        offset = self._offset
        if offset >= len(self._page):
            self._page, offset = os.urandom(self.PAGE_BYTES), 0
        self._offset = offset + 4
        return self._page[offset : offset + 4]


_mask_keys = MaskKeys()
