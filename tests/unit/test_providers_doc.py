"""docs/providers.md is kept complete: every voice mapping, every field Gemini cannot carry, the models."""

from __future__ import annotations

from pathlib import Path

import pytest

from shared.translation import xai
from shared.translation.gemini import DEFAULT_MODEL, MODEL_ALIASES, OPENAI_VOICES
from shared.translation.gemini.setup import DROPPED

DOC = (Path(__file__).parents[2] / "docs" / "providers.md").read_text()


@pytest.mark.parametrize(("openai", "gemini"), OPENAI_VOICES.items())
def test_gemini_voice_mapping_is_documented(openai: str, gemini: str) -> None:
    assert f"`{openai}` -> {gemini}" in DOC


@pytest.mark.parametrize(("openai", "grok"), xai.OPENAI_VOICES.items())
def test_xai_voice_mapping_is_documented(openai: str, grok: str) -> None:
    assert f"`{openai}` -> {grok}" in DOC


@pytest.mark.parametrize("param", DROPPED)
def test_every_field_gemini_cannot_carry_is_documented(param: str) -> None:
    name = "MCP tools" if param == "session.tools.mcp" else f"`{param.removeprefix('session.')}`"
    assert name in DOC


def test_models_are_documented() -> None:
    assert f"`{DEFAULT_MODEL}` by default" in DOC
    for alias in ("gpt-realtime", "gpt-realtime-mini"):
        assert alias in MODEL_ALIASES
        assert f"`{alias}`" in DOC
