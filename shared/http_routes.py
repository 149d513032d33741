"""The HTTP endpoints the gateway relays to OpenAI, described once: path, SDK call, what each body holds.

Each :class:`HttpEndpoint` is served at OpenAI's own path under ``/v1`` (and, where Azure OpenAI
documents the same endpoint, under Azure's ``/openai/v1``). Adapters find a request's endpoint
with :func:`match_http_endpoint` and hand it to :mod:`shared.http_relay`; nothing else about an
endpoint is decided outside this table and that module. The README's endpoint table is generated
from it (:func:`readme_rows`), and a test checks each row's SDK call against the SDK's own
``api.md``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum

OPENAI_PREFIX = "/v1"
AZURE_PREFIX = "/openai/v1"
# Ids are the provider's opaque names (``rtc_…``, ``sess_…``): one path segment of plain characters,
# never a dot segment, so a relayed path cannot climb out of its endpoint.
_ID = r"(?!\.{1,2}/)[A-Za-z0-9_.~:-]{1,256}"


class ModelField(Enum):
    """Where a request body names the model its session will run (checked against a gateway token)."""

    NONE = "none"  # the request opens no session of its own (call control, a recording)
    SESSION = "session.model"  # JSON ``session.model`` (a transcription session: its transcription model)
    TOP = "model"  # JSON ``model`` (accepting a SIP call)
    CALL = "call"  # raw SDP (none named) or multipart: the ``session`` part's ``model``


class Body(Enum):
    """What the request body is, as far as the gateway needs to read it."""

    NONE = "none"  # nothing to read: relayed as sent
    JSON = "json"  # a JSON object
    SDP = "sdp"  # raw ``application/sdp`` or ``multipart/form-data`` with ``sdp`` and ``session``


@dataclass(frozen=True, slots=True)
class HttpEndpoint:
    """One relayed endpoint. ``path`` is OpenAI's, under ``/v1``, with ``{id}`` for a call or session."""

    name: str
    method: str
    path: str
    sdk_call: str  # the official Python SDK's method, as ``client.…``
    purpose: str
    body: Body
    model_field: ModelField
    starts_session: bool  # counted against SESSIONS_PER_MINUTE_PER_SUBJECT
    mints: bool = False  # a client secret: its lifetime is capped at the gateway token's
    azure: bool = False  # Azure OpenAI documents it under /openai/v1
    simulator: bool = False  # the simulator answers it (the others need a real provider)

    @property
    def pattern(self) -> re.Pattern[str]:
        return _PATTERNS[self.name]

    def upstream_path(self, endpoint_id: str | None) -> str:
        """The path under the provider's base (``/realtime/calls/rtc_1/accept``)."""
        return self.path.replace("{id}", endpoint_id) if endpoint_id is not None else self.path


HTTP_ENDPOINTS: tuple[HttpEndpoint, ...] = (
    HttpEndpoint(
        "realtime.client_secrets.create",
        "POST",
        "/realtime/client_secrets",
        "client.realtime.client_secrets.create",
        "mints an ephemeral `ek_…` key for a Realtime session",
        Body.JSON,
        ModelField.SESSION,
        starts_session=True,
        mints=True,
        azure=True,
        simulator=True,
    ),
    HttpEndpoint(
        "realtime.translations.client_secrets.create",
        "POST",
        "/realtime/translations/client_secrets",
        "client.realtime.translations.client_secrets.create",
        "mints an ephemeral key for a Realtime translation session",
        Body.JSON,
        ModelField.SESSION,
        starts_session=True,
        mints=True,
    ),
    HttpEndpoint(
        "realtime.calls.create",
        "POST",
        "/realtime/calls",
        "client.realtime.calls.create",
        "WebRTC: the SDP offer in, the SDP answer out, the call id in `Location`",
        Body.SDP,
        ModelField.CALL,
        starts_session=True,
        azure=True,
    ),
    HttpEndpoint(
        "realtime.calls.accept",
        "POST",
        "/realtime/calls/{id}/accept",
        "client.realtime.calls.accept",
        "accepts an incoming SIP call with its session",
        Body.JSON,
        ModelField.TOP,
        starts_session=True,
        azure=True,
    ),
    HttpEndpoint(
        "realtime.calls.hangup",
        "POST",
        "/realtime/calls/{id}/hangup",
        "client.realtime.calls.hangup",
        "ends a call (WebRTC or SIP)",
        Body.NONE,
        ModelField.NONE,
        starts_session=False,
        azure=True,
    ),
    HttpEndpoint(
        "realtime.calls.refer",
        "POST",
        "/realtime/calls/{id}/refer",
        "client.realtime.calls.refer",
        "transfers a SIP call (SIP REFER)",
        Body.NONE,
        ModelField.NONE,
        starts_session=False,
        azure=True,
    ),
    HttpEndpoint(
        "realtime.calls.reject",
        "POST",
        "/realtime/calls/{id}/reject",
        "client.realtime.calls.reject",
        "declines an incoming SIP call",
        Body.NONE,
        ModelField.NONE,
        starts_session=False,
        azure=True,
    ),
    HttpEndpoint(
        "live.create",
        "POST",
        "/live/sessions",
        "client.live.create",
        "creates a Live WebRTC session: SDP offer in, session id and SDP answer out",
        Body.JSON,
        ModelField.SESSION,
        starts_session=True,
    ),
    HttpEndpoint(
        "live.sessions.accept",
        "POST",
        "/live/sessions/{id}/accept",
        "client.live.sessions.accept",
        "accepts an incoming Live SIP session",
        Body.JSON,
        ModelField.SESSION,
        starts_session=True,
    ),
    HttpEndpoint(
        "live.sessions.fork",
        "POST",
        "/live/sessions/{id}/fork",
        "client.live.sessions.fork",
        "forks a stored Live session into a new WebRTC session",
        Body.NONE,
        ModelField.NONE,
        starts_session=True,
    ),
    HttpEndpoint(
        "live.sessions.hangup",
        "POST",
        "/live/sessions/{id}/hangup",
        "client.live.sessions.hangup",
        "ends a Live session",
        Body.NONE,
        ModelField.NONE,
        starts_session=False,
    ),
    HttpEndpoint(
        "live.sessions.refer",
        "POST",
        "/live/sessions/{id}/refer",
        "client.live.sessions.refer",
        "transfers a Live SIP session",
        Body.NONE,
        ModelField.NONE,
        starts_session=False,
    ),
    HttpEndpoint(
        "live.sessions.reject",
        "POST",
        "/live/sessions/{id}/reject",
        "client.live.sessions.reject",
        "declines an incoming Live SIP session",
        Body.NONE,
        ModelField.NONE,
        starts_session=False,
    ),
    HttpEndpoint(
        "live.sessions.download_recording",
        "GET",
        "/live/sessions/{id}/content",
        "client.live.sessions.download_recording",
        "downloads a stored Live session's recording (streamed through)",
        Body.NONE,
        ModelField.NONE,
        starts_session=False,
    ),
)

_PATTERNS = {
    endpoint.name: re.compile(re.escape(endpoint.path).replace(re.escape("{id}"), f"({_ID})") + "$")
    for endpoint in HTTP_ENDPOINTS
}


@dataclass(frozen=True, slots=True)
class HttpRoute:
    """A request path matched to its endpoint: which one, the id in the path, whether it came by Azure's."""

    endpoint: HttpEndpoint
    endpoint_id: str | None
    azure_path: bool  # under /openai/v1: the Azure SDK's spelling, Azure is the default provider


def match_http_endpoint(raw_path: str) -> tuple[HttpRoute, ...]:
    """The endpoints (one per method) a raw (still percent-encoded) request path names; () if none."""
    if raw_path.startswith(AZURE_PREFIX + "/"):
        rest, azure_path = raw_path[len(AZURE_PREFIX) :], True
    elif raw_path.startswith(OPENAI_PREFIX + "/"):
        rest, azure_path = raw_path[len(OPENAI_PREFIX) :], False
    else:
        return ()
    routes = []
    for endpoint in HTTP_ENDPOINTS:
        if azure_path and not endpoint.azure:
            continue
        found = endpoint.pattern.match(rest)
        if found is not None:
            routes.append(HttpRoute(endpoint, found.group(1) if found.groups() else None, azure_path))
    return tuple(routes)


def readme_rows() -> list[str]:
    """The README endpoint table's rows for the HTTP endpoints (a test checks each is in the README)."""
    rows = []
    for endpoint in HTTP_ENDPOINTS:
        providers = "OpenAI, Azure" if endpoint.azure else "OpenAI"
        if endpoint.simulator:
            providers += ", simulator"
        rows.append(
            f"| HTTP `{endpoint.method} {OPENAI_PREFIX}{endpoint.path}` | `{endpoint.sdk_call}` | "
            f"{endpoint.purpose} | {providers} |"
        )
    return rows
