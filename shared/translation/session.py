"""The translation one session needs, chosen from its plan: none, beta <-> GA, a provider's quirks
normalised, or both in a row. The relay sees one object with one interface, whatever it holds."""

from __future__ import annotations

import json
from typing import Any, Protocol

from ..registry import ProviderSpec
from .gemini import Frames, GeminiTranslator
from .xai import XaiNormalizer


class SessionTranslation(Protocol):
    """What the relay calls: client events towards the provider, provider frames towards the client."""

    def to_upstream(self, event: dict[str, Any], raw: str | None = None) -> tuple[list[str], list[str]]:
        """A validated client event -> (frames for the provider, frames for the client now)."""
        ...

    def to_client(self, frame: str) -> list[str]:
        """A provider frame -> frames for the client."""
        ...


class Normalized:
    """A provider that speaks OpenAI's GA events with deviations (xAI): its normaliser, behind the
    beta <-> GA translation when the client speaks beta."""

    def __init__(self, normalizer: XaiNormalizer, front: SessionTranslation | None) -> None:
        self._normalizer = normalizer
        self._front = front

    def to_upstream(self, event: dict[str, Any], raw: str | None = None) -> tuple[list[str], list[str]]:
        if self._front is None:
            return [self._normalizer.to_provider(event, raw)], []
        frames, notices = self._front.to_upstream(event, raw)
        out = []
        for frame in frames:
            ga_event = event if frame is raw else json.loads(frame)
            out.append(self._normalizer.to_provider(ga_event, frame))
        return out, notices

    def to_client(self, frame: str) -> list[str]:
        frames = self._normalizer.to_client(frame)
        if self._front is None:
            return frames
        return [out for ga in frames for out in self._front.to_client(ga)]


class GeminiSession:
    """A Gemini Live session as the relay drives it: :class:`GeminiTranslator`, behind the beta <-> GA
    translation when the client speaks beta. Every call returns :class:`Frames` whose client frames
    are in the client's protocol."""

    def __init__(self, translator: GeminiTranslator, front: SessionTranslation | None) -> None:
        self.translator = translator
        self._front = front

    def opened(self) -> Frames:
        return self._for_client(self.translator.opened())

    def resume(self) -> Frames:
        return self._for_client(self.translator.resume())

    def to_provider(self, event: dict[str, Any], raw: str | None = None) -> Frames:
        if self._front is None:
            return self.translator.to_provider(event)
        frames, notices = self._front.to_upstream(event, raw)
        out = Frames(client=list(notices))
        for frame in frames:
            step = self._for_client(self.translator.to_provider(event if frame is raw else json.loads(frame)))
            out.provider += step.provider
            out.client += step.client
            out.reconnect = step.reconnect or out.reconnect
        return out

    def to_client(self, frame: str | bytes) -> Frames:
        return self._for_client(self.translator.to_client(frame))

    def _for_client(self, out: Frames) -> Frames:
        if self._front is not None:
            out.client = [translated for frame in out.client for translated in self._front.to_client(frame)]
        return out


def gemini_session(
    client: str, requested_model: str, model: str, input_rate: int, max_held: tuple[int, int]
) -> GeminiSession:
    """The translation of a session with Gemini Live (which speaks neither OpenAI protocol)."""
    from . import Translator  # the package imports this module

    front = Translator(client, "ga") if client != "ga" else None  # type: ignore[arg-type]
    translator = GeminiTranslator(
        model,
        requested_model=requested_model,
        input_rate=input_rate,
        max_held_frames=max_held[0],
        max_held_bytes=max_held[1],
    )
    return GeminiSession(translator, front)


def session_translation(
    client: str, upstream: str, spec: ProviderSpec | None, model: str
) -> SessionTranslation | None:
    """What a session between a ``client`` and ``upstream`` protocol, with ``spec``'s quirks, needs;
    None when frames go through as they are."""
    from . import Translator  # the package imports this module

    front: SessionTranslation | None = None
    if client != upstream:
        front = Translator(client, upstream)  # type: ignore[arg-type]
    if spec is not None and "xai" in spec.quirks:
        return Normalized(XaiNormalizer(model), front)
    return front


__all__ = ["GeminiSession", "Normalized", "SessionTranslation", "gemini_session", "session_translation"]
