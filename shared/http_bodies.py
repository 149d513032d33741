"""What the gateway reads in a relayed HTTP request's body, and the few changes it may make to it.

A body is relayed byte for byte unless the gateway has to change it, and then only that is changed:
a model renamed by MODEL_ALIASES, or a client secret's ``expires_after`` capped at the gateway
token's remaining life. JSON bodies are re-serialised then; in a ``multipart/form-data`` body (an
SDP offer with its session, ``client.realtime.calls.create``) only the ``session`` part is replaced
and every other byte stays as sent.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from .http_routes import Body, ModelField

# OpenAI's bounds for a client secret's lifetime (ClientSecretCreateParams.ExpiresAfter).
SECRET_DEFAULT_SECONDS = 600
SECRET_MIN_SECONDS = 10
SECRET_MAX_SECONDS = 7200

_BOUNDARY = re.compile(r'boundary=(?:"([^"]{1,70})"|([^\s;,"]{1,70}))', re.IGNORECASE)
_PART_NAME = re.compile(rb'content-disposition:[^\r\n]*\bname="([^"\r\n]*)"', re.IGNORECASE)


class BodyError(Exception):
    """A body the gateway had to read and could not: 400, with OpenAI's error fields."""

    def __init__(self, code: str, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.code, self.message, self.param = code, message, param


# -- multipart/form-data (RFC 7578) --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Multipart:
    """A multipart body split at its delimiters, so that one part's content can be replaced alone.

    ``pieces`` are what lies between the delimiter lines ``CRLF--boundary``: the preamble first, each
    part (its header lines, a blank line, its content) next, and last the closing ``--`` and epilogue.
    """

    boundary: bytes
    pieces: tuple[bytes, ...]

    @classmethod
    def parse(cls, body: bytes, content_type: str) -> Multipart:
        found = _BOUNDARY.search(content_type)
        if found is None:
            raise BodyError("invalid_multipart", "The multipart body's Content-Type names no boundary.")
        boundary = (found.group(1) or found.group(2)).encode("latin-1")
        pieces = (b"\r\n" + body).split(b"\r\n--" + boundary)
        if len(pieces) < 3 or not pieces[-1].startswith(b"--"):
            raise BodyError("invalid_multipart", "The multipart body is not closed by its boundary.")
        for piece in pieces[1:-1]:
            if b"\r\n\r\n" not in piece:
                raise BodyError("invalid_multipart", "A part of the multipart body has no header end.")
        return cls(boundary, tuple(pieces))

    def find(self, name: str) -> int | None:
        """The index in ``pieces`` of the first part named ``name``."""
        for index, piece in enumerate(self.pieces[1:-1], start=1):
            head = piece.partition(b"\r\n\r\n")[0]
            found = _PART_NAME.search(head)
            if found is not None and found.group(1) == name.encode():
                return index
        return None

    def content(self, index: int) -> bytes:
        return self.pieces[index].partition(b"\r\n\r\n")[2]

    def replaced(self, index: int, content: bytes) -> bytes:
        """The whole body, with part ``index``'s content replaced and every other byte as it was."""
        head = self.pieces[index].partition(b"\r\n\r\n")[0]
        pieces = list(self.pieces)
        pieces[index] = head + b"\r\n\r\n" + content
        return (b"\r\n--" + self.boundary).join(pieces)[2:]


# -- the body as the gateway reads it --------------------------------------------------------------------


def _json_object(data: bytes, what: str) -> dict[str, Any]:
    try:
        document = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        raise BodyError("invalid_json", f"{what} is not valid JSON.") from None
    if not isinstance(document, dict):
        raise BodyError("invalid_json", f"{what} must be a JSON object.")
    return document


def _dump(document: dict[str, Any]) -> bytes:
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode()


@dataclass(slots=True)
class ReadBody:
    """A request body the gateway reads: its JSON document (if any), and how to write it back.

    ``document`` is the JSON object the model and the expiry live in (for a multipart body, its
    ``session`` part's); None when the body holds none (raw SDP, an empty body).
    """

    raw: bytes
    document: dict[str, Any] | None
    multipart: Multipart | None = None
    session_part: int | None = None
    changed: bool = False

    @classmethod
    def read(cls, kind: Body, raw: bytes, content_type: str) -> ReadBody:
        """Read ``raw`` as an endpoint of ``kind`` sends it; :class:`BodyError` if it cannot be."""
        media_type = content_type.partition(";")[0].strip().lower()
        if kind is Body.JSON:
            return cls(raw, _json_object(raw, "The request body"))
        if kind is Body.SDP and media_type == "multipart/form-data":
            multipart = Multipart.parse(raw, content_type)
            index = multipart.find("session")
            if index is None:
                return cls(raw, None, multipart)
            session = _json_object(multipart.content(index), "The multipart body's session part")
            return cls(raw, {"session": session}, multipart, index)
        return cls(raw, None)  # raw SDP, or a body the gateway does not read

    def body(self) -> bytes:
        """The body to relay: as sent, unless something was changed."""
        if not self.changed or self.document is None:
            return self.raw
        if self.multipart is not None and self.session_part is not None:
            return self.multipart.replaced(self.session_part, _dump(self.document["session"]))
        return _dump(self.document)

    # -- the model --------------------------------------------------------------------------------------

    def _model_path(self, field: ModelField) -> tuple[str, ...] | None:
        if self.document is None or field is ModelField.NONE:
            return None
        if field is ModelField.TOP:
            return ("model",)
        session = self.document.get("session")
        if isinstance(session, dict) and session.get("type") == "transcription":
            return ("session", "audio", "input", "transcription", "model")
        return ("session", "model")

    def model(self, field: ModelField) -> str | None:
        """The model the body names for its session (a string), else None."""
        path = self._model_path(field)
        value: Any = self.document
        for key in path or ():
            value = value.get(key) if isinstance(value, dict) else None
        return value if path and isinstance(value, str) else None

    def rename_model(self, field: ModelField, model: str) -> None:
        path = self._model_path(field)
        assert path is not None
        assert self.document is not None
        parent: Any = self.document
        for key in path[:-1]:
            parent = parent[key]
        parent[path[-1]] = model
        self.changed = True

    # -- a client secret's lifetime ------------------------------------------------------------------

    def secret_seconds(self) -> int:
        """The lifetime the body asks for (``expires_after.seconds``), else OpenAI's default."""
        assert self.document is not None
        expires_after = self.document.get("expires_after")
        if expires_after is None:
            return SECRET_DEFAULT_SECONDS
        if not isinstance(expires_after, dict):
            raise BodyError("invalid_type", "expires_after must be an object.", "expires_after")
        seconds = expires_after.get("seconds", SECRET_DEFAULT_SECONDS)
        if type(seconds) is not int:
            raise BodyError(
                "invalid_type", "expires_after.seconds must be an integer.", "expires_after.seconds"
            )
        return seconds

    def cap_secret_seconds(self, seconds: int) -> None:
        """Set ``expires_after.seconds`` (anchored at ``created_at``, the only anchor OpenAI has)."""
        assert self.document is not None
        expires_after = self.document.get("expires_after")
        anchor = (
            expires_after.get("anchor", "created_at") if isinstance(expires_after, dict) else "created_at"
        )
        self.document["expires_after"] = {"anchor": anchor, "seconds": seconds}
        self.changed = True
