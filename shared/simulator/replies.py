"""What the simulator says: short, deterministic replies that show what it received.

Not a model: it echoes the last thing it was given (text, audio length or a tool result) and says
how to reach a real one, or calls a session tool the user named, so tool clients can be exercised.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

_QUOTE_CHARS = 60
_WORD = re.compile(r"\s*\S+\s*")
_SPACES = re.compile(r"\s+")
_POINTER = (
    " This is the realtime gateway's simulator;"
    " connect with provider=openai and a key to talk to a real model."
)


@dataclass(frozen=True, slots=True)
class Heard:
    """The input a response answers: the latest user text or audio, or a function call's output."""

    kind: str  # "text", "audio" or "tool_output"
    text: str = ""
    audio_ms: float = 0.0


@dataclass(frozen=True, slots=True)
class Reply:
    """Either words to say (``text``) or a function to call (``tool``, with no arguments)."""

    text: str = ""
    tool: str | None = None


def _quote(text: str) -> str:
    text = _SPACES.sub(" ", text).strip()
    if len(text) > _QUOTE_CHARS:
        text = text[: _QUOTE_CHARS - 1].rstrip() + "…"
    return text


def _sentence(text: str) -> str:
    return text if text.endswith((".", "!", "?", "…")) else text + "."


def reply_text(heard: Heard | None) -> str:
    if heard is None:
        return "Hello! This is the realtime gateway's simulator: send a message or speak, and I will echo it."
    if heard.kind == "audio":
        return f"I heard {heard.audio_ms / 1000:.1f} seconds of audio."
    if heard.kind == "tool_output":
        return _sentence(f"The tool returned: {_quote(heard.text) or 'nothing'}")
    said = _quote(heard.text)
    if not said:
        return "You sent an empty message."
    return _sentence(f"You said: {said}") + _POINTER


def _function_names(tools: Any) -> list[str]:
    if not isinstance(tools, list):
        return []
    return [
        t["name"]
        for t in tools
        if isinstance(t, dict)
        and t.get("type", "function") == "function"
        and isinstance(t.get("name"), str)
        and t["name"]
    ]


def _mentions(text: str, name: str) -> bool:
    lowered = text.lower()
    name = name.lower()
    return name in lowered or name.replace("_", " ") in lowered


def pick_tool(heard: Heard | None, tools: Any, tool_choice: Any) -> str | None:
    """The function to call instead of speaking, honouring ``tool_choice``; None to speak."""
    names = _function_names(tools)
    if not names or tool_choice == "none":
        return None
    if isinstance(tool_choice, dict) and tool_choice.get("type") == "function":
        forced = tool_choice.get("name")
        return forced if forced in names else None
    if heard is not None and heard.kind == "text":
        for name in names:
            if _mentions(heard.text, name):
                return name
    return names[0] if tool_choice == "required" else None


def plan_reply(heard: Heard | None, tools: Any, tool_choice: Any) -> Reply:
    tool = pick_tool(heard, tools, tool_choice)
    return Reply(tool=tool) if tool else Reply(text=reply_text(heard))


def split_words(text: str) -> list[str]:
    """``text`` as word deltas (each with its surrounding spaces) that concatenate back to it."""
    return _WORD.findall(text) or ([text] if text else [])


def text_tokens(text: str) -> int:
    """A token estimate for ``text``: about four characters a token."""
    return (len(text) + 3) // 4
