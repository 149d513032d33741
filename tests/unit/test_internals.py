"""What the standalone server relies on beyond its libraries' documented API (standalone/internals.py):
the check holds on the releases installed here, and fails, naming the release, when one breaks."""

from __future__ import annotations

import importlib.metadata
from typing import Any

import pytest
from aiohttp import web_protocol
from websockets.frames import Frame, Opcode
from websockets.protocol import Protocol

from standalone import frames, internals
from standalone.internals import UnsupportedRelease, check


def test_the_installed_releases_do_what_the_gateway_relies_on() -> None:
    check()


def test_the_fast_path_masks_with_the_checked_routine() -> None:
    assert frames.apply_mask is internals.apply_mask


def test_a_mask_routine_that_does_not_xor_stops_the_gateway(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(internals, "apply_mask", lambda data, mask: bytes(data))
    with pytest.raises(UnsupportedRelease, match=f"websockets {importlib.metadata.version('websockets')}: "):
        check()


class _IgnoresItsSizeLimit(Protocol):
    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **{**kwargs, "max_size": None})  # type: ignore[arg-type]


def test_a_parser_that_reads_an_oversized_frame_stops_the_gateway(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(internals, "Protocol", _IgnoresItsSizeLimit)
    with pytest.raises(UnsupportedRelease, match="an oversized frame is not refused by its header"):
        check()


class _AssemblesMessages(Protocol):
    """A parser that passes a fragmented message on whole, once its last fragment is in."""

    def events_received(self) -> list[Any]:
        events, held = [], getattr(self, "held", [])
        for event in super().events_received():
            if isinstance(event, Frame) and (held or (event.opcode is Opcode.TEXT and not event.fin)):
                held.append(event)
                if event.fin:
                    events.append(Frame(Opcode.TEXT, b"".join(frame.data for frame in held)))
                    held = []
            else:
                events.append(event)
        self.held = held
        return events


def test_a_parser_that_assembles_messages_stops_the_gateway(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(internals, "Protocol", _AssemblesMessages)
    with pytest.raises(UnsupportedRelease, match="its parser does not pass each frame on as it is"):
        check()


def test_an_aiohttp_whose_handler_cannot_be_taken_over_stops_the_gateway(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delattr(web_protocol.RequestHandler, "set_parser")
    with pytest.raises(UnsupportedRelease, match=f"aiohttp {importlib.metadata.version('aiohttp')}: "):
        check()
