"""The translation one session needs, chosen from its plan: none, beta <-> GA, a provider's quirks
normalised, or both in a row. The relay sees one object with one interface, whatever it holds."""

from __future__ import annotations

import json
from typing import Any, Protocol

from ..registry import ProviderSpec
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


__all__ = ["Normalized", "SessionTranslation", "session_translation"]
