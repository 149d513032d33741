"""Builders of GA server event dicts, field for field as OpenAI sends them.

Each returns the event with ``type`` first and an empty ``event_id`` that the simulator stamps
when it sends the event, so ids follow send order and builders need no id source.
"""

from __future__ import annotations

from typing import Any

Event = dict[str, Any]
# Where a content stream lives: (response_id, item_id, output_index, content_index).
Location = tuple[str, str, int, int]


def _event(kind: str, **fields: Any) -> Event:
    return {"type": kind, "event_id": "", **fields}


def error(
    code: str,
    message: str,
    *,
    param: str | None = None,
    client_event_id: Any = None,
    kind: str = "invalid_request_error",
) -> Event:
    return _event(
        "error",
        error={
            "type": kind,
            "code": code,
            "message": message,
            "param": param,
            "event_id": client_event_id if isinstance(client_event_id, str) else None,
        },
    )


def session_created(session: dict[str, Any]) -> Event:
    return _event("session.created", session=session)


def session_updated(session: dict[str, Any]) -> Event:
    return _event("session.updated", session=session)


# -- conversation --------------------------------------------------------------------------------


def item_added(item: dict[str, Any], previous_item_id: str | None) -> Event:
    return _event("conversation.item.added", previous_item_id=previous_item_id, item=item)


def item_done(item: dict[str, Any], previous_item_id: str | None) -> Event:
    return _event("conversation.item.done", previous_item_id=previous_item_id, item=item)


def item_retrieved(item: dict[str, Any]) -> Event:
    return _event("conversation.item.retrieved", item=item)


def item_deleted(item_id: str) -> Event:
    return _event("conversation.item.deleted", item_id=item_id)


def item_truncated(item_id: str, content_index: int, audio_end_ms: int) -> Event:
    return _event(
        "conversation.item.truncated", item_id=item_id, content_index=content_index, audio_end_ms=audio_end_ms
    )


def transcription_delta(item_id: str, content_index: int, delta: str) -> Event:
    return _event(
        "conversation.item.input_audio_transcription.delta",
        item_id=item_id,
        content_index=content_index,
        delta=delta,
    )


def transcription_completed(
    item_id: str, content_index: int, transcript: str, usage: dict[str, Any]
) -> Event:
    return _event(
        "conversation.item.input_audio_transcription.completed",
        item_id=item_id,
        content_index=content_index,
        transcript=transcript,
        usage=usage,
    )


# -- input and output audio buffers --------------------------------------------------------------


def speech_started(audio_start_ms: int, item_id: str) -> Event:
    return _event("input_audio_buffer.speech_started", audio_start_ms=audio_start_ms, item_id=item_id)


def speech_stopped(audio_end_ms: int, item_id: str) -> Event:
    return _event("input_audio_buffer.speech_stopped", audio_end_ms=audio_end_ms, item_id=item_id)


def committed(item_id: str, previous_item_id: str | None) -> Event:
    return _event("input_audio_buffer.committed", previous_item_id=previous_item_id, item_id=item_id)


def cleared() -> Event:
    return _event("input_audio_buffer.cleared")


def output_audio_cleared(response_id: str) -> Event:
    return _event("output_audio_buffer.cleared", response_id=response_id)


# -- responses -----------------------------------------------------------------------------------


def response_created(response: dict[str, Any]) -> Event:
    return _event("response.created", response=response)


def response_done(response: dict[str, Any]) -> Event:
    return _event("response.done", response=response)


def output_item_added(response_id: str, output_index: int, item: dict[str, Any]) -> Event:
    return _event("response.output_item.added", response_id=response_id, output_index=output_index, item=item)


def output_item_done(response_id: str, output_index: int, item: dict[str, Any]) -> Event:
    return _event("response.output_item.done", response_id=response_id, output_index=output_index, item=item)


def content(kind: str, at: Location, **fields: Any) -> Event:
    """A content-stream event (``response.content_part.*``, ``response.output_audio.*``, ...)."""
    response_id, item_id, output_index, content_index = at
    return _event(
        kind,
        response_id=response_id,
        item_id=item_id,
        output_index=output_index,
        content_index=content_index,
        **fields,
    )


def arguments_delta(response_id: str, item_id: str, output_index: int, call_id: str, delta: str) -> Event:
    return _event(
        "response.function_call_arguments.delta",
        response_id=response_id,
        item_id=item_id,
        output_index=output_index,
        call_id=call_id,
        delta=delta,
    )


def arguments_done(
    response_id: str, item_id: str, output_index: int, call_id: str, name: str, arguments: str
) -> Event:
    return _event(
        "response.function_call_arguments.done",
        response_id=response_id,
        item_id=item_id,
        output_index=output_index,
        call_id=call_id,
        name=name,
        arguments=arguments,
    )
