"""A fake of OpenAI's realtime HTTP endpoints on 127.0.0.1, as strict as the SDK's types, that records
what the gateway sends it.

It runs an aiohttp server on its own thread and event loop (like :mod:`support.fake_upstream`), and
serves, under ``/v1`` (OpenAI) and, for what Azure OpenAI documents, ``/openai/v1`` (Azure):

- ``POST /realtime/client_secrets`` and ``/realtime/translations/client_secrets``: the body must be
  what ``ClientSecretCreateParams`` allows (an unknown field at any depth: 400 ``unknown_parameter``
  naming it; a missing ``session.type`` or translation ``session.model``: 400
  ``missing_required_parameter``; ``expires_after.seconds`` outside 10..7200 or an anchor other than
  ``created_at``: 400 ``invalid_value``). The answer is OpenAI's: ``{"value": "ek_…", "expires_at",
  "session"}``; the ``ek_`` key is remembered (it opens calls here until it expires).
- ``POST /realtime/calls``: ``application/sdp`` (the offer alone) or ``multipart/form-data`` with an
  ``sdp`` part and a JSON ``session`` part (checked as above); an offer that is not SDP: 400. The
  answer: 201, ``application/sdp`` (an answer to the offer, good enough for a browser's
  ``setRemoteDescription``), ``Location: /v1/realtime/calls/rtc_…`` (Azure: an absolute URL).
- ``POST /realtime/calls/{id}/accept|hangup|refer|reject`` and the Live ``/live/sessions…``
  endpoints, in the order the API documents: ``accept`` and ``reject`` only an incoming SIP call
  (:meth:`FakeOpenAIHttp.incoming_call`), ``refer`` only an active SIP call, ``hangup`` only an
  active call; a Live session may be forked, and its recording downloaded once it has ended, only if
  it was created with ``store: true``. Otherwise 400 ``invalid_call_state``; an unknown id, 404.

Keys: a request must carry one (``Authorization: Bearer`` or ``api-key``) that the fake accepts
(``keys`` given at start, or an ``ek_`` it minted and that has not expired), else 401 with OpenAI's
message.

Faults, for the gateway's failure paths, by the model a body names or by the id in the path:
``fault-401`` (a 401 whose message quotes the key received, worse than OpenAI's masked one),
``fault-403``, ``fault-429`` (with ``Retry-After``), ``fault-500``, ``fault-503``, ``fault-html``
(a 502 with an HTML body, as a load balancer sends), ``fault-drop`` (the connection closed with no
answer), ``fault-hang`` (no answer for a minute), and, for a recording, ``fault-cut`` (the body stops
halfway and the connection drops).

``requests`` has an :class:`HttpRequest` per request, in order.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import itertools
import json
import re
import threading
import time
from dataclasses import dataclass
from typing import Any

from aiohttp import web

# {name: None (any value) | a nested schema}; REQUIRED lists the dotted names that must be present.
Schema = dict[str, Any]

_AUDIO_INPUT: Schema = dict.fromkeys(("format", "noise_reduction", "transcription", "turn_detection"))
_REALTIME_SESSION: Schema = {
    **dict.fromkeys(
        [
            "type",
            "include",
            "instructions",
            "max_output_tokens",
            "model",
            "output_modalities",
            "parallel_tool_calls",
            "prompt",
            "reasoning",
            "tool_choice",
            "tools",
            "tracing",
            "truncation",
        ]
    ),
    "audio": {"input": _AUDIO_INPUT, "output": dict.fromkeys(("format", "speed", "voice"))},
}
_TRANSCRIPTION_SESSION: Schema = {"type": None, "include": None, "audio": {"input": _AUDIO_INPUT}}
_TRANSLATION_SESSION: Schema = {
    "model": None,
    "audio": {"input": dict.fromkeys(("noise_reduction", "transcription")), "output": {"language": None}},
}
_EXPIRES_AFTER: Schema = {"anchor": None, "seconds": None}
_TRANSPORT: Schema = {"sdp": None, "type": None}
_LIVE_SESSION: Schema = dict.fromkeys(
    [
        "model",
        "audio",
        "client",
        "delegation",
        "idle_timeout_s",
        "input",
        "instructions",
        "safety_identifier",
        "store",
        "triggers",
        "wake_policy",
    ]
)
_LIVE_ACCEPT_SESSION: Schema = dict.fromkeys(
    [
        "model",
        "type",
        "audio",
        "delegation",
        "input",
        "instructions",
        "safety_identifier",
        "store",
        "triggers",
    ]
)
_LIVE_FORK_SESSION: Schema = dict.fromkeys(("client", "delegation", "store"))

RECORDING_BYTES = 3 * 1024 * 1024  # larger than the gateway's MAX_HTTP_BODY_BYTES: it must stream it
HANG_SECONDS = 60.0
FAULT = re.compile(r"fault-(\d{3}|html|drop|hang|cut)$")


class Refusal(Exception):
    """An error answer in OpenAI's shape."""

    def __init__(self, status: int, message: str, code: str | None = None, param: str | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.code, self.param = status, message, code, param

    def response(self) -> web.Response:
        error = {
            "message": self.message,
            "type": "invalid_request_error",
            "param": self.param,
            "code": self.code,
        }
        return web.json_response({"error": error}, status=self.status)


def _check(document: Any, schema: Schema, prefix: str, required: tuple[str, ...] = ()) -> None:
    """Refuse the first field ``schema`` does not name (at any depth), then a missing required one."""
    if not isinstance(document, dict):
        raise Refusal(
            400, f"Invalid type for '{prefix or 'body'}': expected an object.", "invalid_type", prefix
        )
    for key, value in document.items():
        name = f"{prefix}.{key}" if prefix else key
        if key not in schema:
            raise Refusal(400, f"Unknown parameter: '{name}'.", "unknown_parameter", name)
        if isinstance(schema[key], dict) and value is not None:
            _check(value, schema[key], name)
    for name in required:
        value: Any = document
        for key in name.split("."):
            value = value.get(key) if isinstance(value, dict) else None
        if value is None:
            full = f"{prefix}.{name}" if prefix else name
            raise Refusal(400, f"Missing required parameter: '{full}'.", "missing_required_parameter", full)


def _one_of(value: Any, allowed: tuple[Any, ...], param: str) -> None:
    if value not in allowed:
        raise Refusal(
            400, f"Invalid value: {value!r}. Supported values are: {allowed!r}.", "invalid_value", param
        )


def sdp_answer(offer: str, seed: str) -> str:
    """An SDP answer to ``offer``: one section per offered one, the same mids, a fresh ICE identity and
    a DTLS fingerprint (no media will flow: nothing listens)."""
    digest = hashlib.sha256(seed.encode()).hexdigest().upper()
    fingerprint = ":".join(digest[i : i + 2] for i in range(0, 64, 2))
    sections = offer.replace("\r\n", "\n").split("\nm=")[1:]
    mids, media = [], []
    for number, section in enumerate(sections):
        lines = ("m=" + section).strip().split("\n")
        kind = lines[0].split()[0][2:]
        mid = next((line[6:] for line in lines if line.startswith("a=mid:")), str(number))
        mids.append(mid)
        if kind == "application":
            body = ["m=application 9 UDP/DTLS/SCTP webrtc-datachannel", "a=sctp-port:5000"]
        else:
            codec = next(
                (line for line in lines if line.startswith("a=rtpmap:")), "a=rtpmap:111 opus/48000/2"
            )
            payload = codec.split()[0].split(":")[1]
            fmtp = [line for line in lines if line.startswith(f"a=fmtp:{payload} ")]
            body = [f"m={kind} 9 UDP/TLS/RTP/SAVPF {payload}", codec, *fmtp[:1], "a=sendrecv", "a=rtcp-mux"]
        media.extend(
            [
                *body[:1],
                "c=IN IP4 0.0.0.0",
                f"a=mid:{mid}",
                f"a=ice-ufrag:{digest[:8].lower()}",
                f"a=ice-pwd:{digest[8:32].lower()}",
                f"a=fingerprint:sha-256 {fingerprint}",
                "a=setup:active",
                *body[1:],
            ]
        )
    head = ["v=0", f"o=- {int(digest[:12], 16)} 2 IN IP4 127.0.0.1", "s=-", "t=0 0"]
    if mids:
        head.append("a=group:BUNDLE " + " ".join(mids))
    return "\r\n".join([*head, "a=msid-semantic: WMS", *media]) + "\r\n"


@dataclass
class HttpRequest:
    """One request as the fake received it."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]  # lower-case names
    body: bytes
    status: int = 0  # what the fake answered (0: no answer, a fault)

    @property
    def key(self) -> str | None:
        """The key it carried: ``Authorization: Bearer`` or ``api-key``."""
        scheme, _, value = self.headers.get("authorization", "").partition(" ")
        if scheme.lower() == "bearer" and value:
            return value
        return self.headers.get("api-key")

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Call:
    """A call (``rtc_…``) or a Live session (``sess_…``) and where it is in its life."""

    id: str
    sip: bool
    state: str  # "incoming" -> "active" -> "ended" ("rejected")
    store: bool = False
    key: str | None = None  # the key that created it


class FakeOpenAIHttp:
    """Start with :meth:`start`; ``base`` is its OpenAI API base (``…/v1``), ``origin`` its Azure endpoint."""

    def __init__(self, keys: tuple[str, ...]) -> None:
        self.keys = set(keys)
        self.requests: list[HttpRequest] = []
        self.minted: dict[str, int] = {}  # ek_ key -> expires_at
        self.calls: dict[str, Call] = {}
        self._ids = itertools.count(1)
        self._changed = threading.Condition()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._runner: web.AppRunner | None = None
        self._stopping = asyncio.Event()
        self.port = 0

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def base(self) -> str:
        return f"{self.origin}/v1"

    def start(self) -> FakeOpenAIHttp:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)
        return self

    def stop(self) -> None:
        self._loop.call_soon_threadsafe(self._stopping.set)
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def mark(self) -> int:
        return len(self.requests)

    def requests_after(self, mark: int) -> list[HttpRequest]:
        return self.requests[mark:]

    def wait_for(self, predicate: Any, timeout: float = 10.0) -> Any:
        with self._changed:
            result = self._changed.wait_for(lambda: predicate(self.requests), timeout)
        if not result:
            raise AssertionError(f"fake OpenAI HTTP: condition not met within {timeout} s")
        return result

    def incoming_call(self, live: bool = False, store: bool = False) -> str:
        """An incoming SIP call (``live``: a Live SIP session) waiting to be accepted or rejected."""
        call = Call(self._id("sess_live" if live else "rtc_sip"), sip=True, state="incoming", store=store)
        self.calls[call.id] = call
        return call.id

    def _id(self, prefix: str) -> str:
        return f"{prefix}_fake{next(self._ids)}"

    async def _start(self) -> None:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        for prefix in ("/v1", "/openai/v1"):
            router = app.router
            router.add_post(prefix + "/realtime/client_secrets", self._client_secret)
            router.add_post(prefix + "/realtime/translations/client_secrets", self._translation_secret)
            router.add_post(prefix + "/realtime/calls", self._create_call)
            router.add_post(prefix + "/realtime/calls/{id}/{command}", self._call_command)
            router.add_post(prefix + "/live/sessions", self._create_live)
            router.add_post(prefix + "/live/sessions/{id}/{command}", self._live_command)
            router.add_get(prefix + "/live/sessions/{id}/content", self._recording)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    # -- the common part of every request ------------------------------------------------------------

    async def _record(self, request: web.Request) -> HttpRequest:
        seen = HttpRequest(
            request.method,
            request.path,
            dict(request.query),
            {name.lower(): value for name, value in request.headers.items()},
            await request.read(),
        )
        self.requests.append(seen)
        with self._changed:
            self._changed.notify_all()
        return seen

    def _authorize(self, seen: HttpRequest) -> str:
        key = seen.key
        if key is None:
            raise Refusal(401, "You didn't provide an API key.", "missing_api_key")
        if key in self.keys or self.minted.get(key, 0) > time.time():
            return key
        masked = key[:3] + "*" * 4 + key[-4:]
        raise Refusal(401, f"Incorrect API key provided: {masked}.", "invalid_api_key")

    async def _fault(self, request: web.Request, seen: HttpRequest, name: Any) -> web.StreamResponse | None:
        """The scripted fault ``name`` names, or None to go on."""
        found = FAULT.match(name) if isinstance(name, str) else None
        if found is None:
            return None
        kind = found.group(1)
        if kind == "drop":
            assert request.transport is not None
            request.transport.abort()
            return web.Response()
        if kind == "hang":  # until the gateway gives up (or the fake stops)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), HANG_SECONDS)
            return web.Response()
        if kind == "html":
            seen.status = 502
            return web.Response(
                status=502, text="<html><body>502 Bad Gateway</body></html>", content_type="text/html"
            )
        if kind == "cut":
            return None  # a recording's own fault
        status = int(kind)
        seen.status = status
        if status == 401:  # quotes the key received whole: the gateway must not pass that on
            return Refusal(401, f"Incorrect API key provided: {seen.key}.", "invalid_api_key").response()
        response = Refusal(status, f"Scripted {status}.", "scripted").response()
        if status == 429:
            response.headers["Retry-After"] = "7"
        return response

    async def _handle(self, request: web.Request, work: Any) -> web.StreamResponse:
        seen = await self._record(request)
        try:
            response = await work(request, seen)
        except Refusal as refusal:
            response = refusal.response()
        if not seen.status and isinstance(response, web.Response):
            seen.status = response.status
        return response

    def _json(self, seen: HttpRequest) -> Any:
        try:
            return json.loads(seen.body)
        except ValueError:
            raise Refusal(
                400,
                "We could not parse the JSON body of your request. (HINT: This likely means you aren't using "
                "your HTTP library correctly.)",
            ) from None

    # -- client secrets ----------------------------------------------------------------------------

    def _expiry(self, document: dict[str, Any]) -> int:
        expires_after = document.get("expires_after") or {}
        _one_of(expires_after.get("anchor", "created_at"), ("created_at",), "expires_after.anchor")
        seconds = expires_after.get("seconds", 600)
        if type(seconds) is not int or not 10 <= seconds <= 7200:
            raise Refusal(
                400,
                f"Invalid 'expires_after.seconds': {seconds!r}. Expected a value between 10 and 7200.",
                "invalid_value",
                "expires_after.seconds",
            )
        return int(time.time()) + seconds

    def _mint(self, expires_at: int, session: dict[str, Any]) -> web.Response:
        value = self._id("ek")
        self.minted[value] = expires_at
        return web.json_response({"value": value, "expires_at": expires_at, "session": session})

    async def _client_secret(self, request: web.Request) -> web.StreamResponse:
        async def work(request: web.Request, seen: HttpRequest) -> web.StreamResponse:
            self._authorize(seen)
            document = self._json(seen)
            _check(document, {"expires_after": _EXPIRES_AFTER, "session": None}, "")
            session = document.get("session") or {"type": "realtime"}
            kind = session.get("type") if isinstance(session, dict) else None
            schema = _TRANSCRIPTION_SESSION if kind == "transcription" else _REALTIME_SESSION
            _check(session, schema, "session", ("type",))
            _one_of(kind, ("realtime", "transcription"), "session.type")
            fault = await self._fault(request, seen, session.get("model"))
            if fault is not None:
                return fault
            expires_at = self._expiry(document)
            created = {"object": f"realtime.{'transcription_' if kind == 'transcription' else ''}session"}
            created.update(id=self._id("sess"), expires_at=0, **session)
            if kind == "realtime":
                created.setdefault("model", "gpt-realtime")
            return self._mint(expires_at, created)

        return await self._handle(request, work)

    async def _translation_secret(self, request: web.Request) -> web.StreamResponse:
        async def work(request: web.Request, seen: HttpRequest) -> web.StreamResponse:
            self._authorize(seen)
            document = self._json(seen)
            _check(
                document, {"expires_after": _EXPIRES_AFTER, "session": _TRANSLATION_SESSION}, "", ("session",)
            )
            _check(document["session"], _TRANSLATION_SESSION, "session", ("model",))
            fault = await self._fault(request, seen, document["session"]["model"])
            if fault is not None:
                return fault
            expires_at = self._expiry(document)
            session = {
                "id": self._id("sess_tr"),
                "type": "translation",
                "expires_at": expires_at,
                "audio": {},
            }
            return self._mint(expires_at, {**session, **document["session"]})

        return await self._handle(request, work)

    # -- calls ------------------------------------------------------------------------------------------

    async def _create_call(self, request: web.Request) -> web.StreamResponse:
        async def work(request: web.Request, seen: HttpRequest) -> web.StreamResponse:
            key = self._authorize(seen)
            media_type = seen.headers.get("content-type", "").partition(";")[0].strip()
            session: dict[str, Any] = {}
            if media_type == "application/sdp":
                offer = seen.body.decode()
            elif media_type == "multipart/form-data":
                parts = _multipart(seen.body, seen.headers["content-type"])
                if "sdp" not in parts:
                    raise Refusal(
                        400, "Missing required parameter: 'sdp'.", "missing_required_parameter", "sdp"
                    )
                offer = parts.pop("sdp").decode()
                for name in parts:
                    if name != "session":
                        raise Refusal(400, f"Unknown parameter: '{name}'.", "unknown_parameter", name)
                if "session" in parts:
                    session = json.loads(parts["session"])
                    _check(session, _REALTIME_SESSION, "session", ("type",))
                    _one_of(session["type"], ("realtime",), "session.type")
            else:
                raise Refusal(400, f"Unsupported content type: {media_type!r}.", "unsupported_content_type")
            fault = await self._fault(request, seen, session.get("model") or seen.query.get("model"))
            if fault is not None:
                return fault
            if not offer.startswith("v=0") or "\nm=" not in offer.replace("\r\n", "\n"):
                raise Refusal(400, "Invalid SDP offer.", "invalid_offer", "sdp")
            call = Call(self._id("rtc"), sip=False, state="active", key=key)
            self.calls[call.id] = call
            location = f"{request.path}/{call.id}"
            if request.path.startswith("/openai/"):  # Azure's is absolute
                location = f"{self.origin}{location}"
            return web.Response(
                status=201,
                body=sdp_answer(offer, call.id).encode(),
                content_type="application/sdp",
                headers={"Location": location},
            )

        return await self._handle(request, work)

    async def _call_command(self, request: web.Request) -> web.StreamResponse:
        async def work(request: web.Request, seen: HttpRequest) -> web.StreamResponse:
            self._authorize(seen)
            call_id, command = request.match_info["id"], request.match_info["command"]
            fault = await self._fault(request, seen, call_id)
            if fault is not None:
                return fault
            call = self._call(call_id, "rtc")
            document = self._json(seen) if seen.body else {}
            if command == "accept":
                _check(document, _REALTIME_SESSION, "", ("type",))
                _one_of(document["type"], ("realtime",), "type")
                self._move(call, "incoming", "active", "accepted")
            elif command == "reject":
                _check(document, {"status_code": None}, "")
                self._move(call, "incoming", "rejected", "rejected")
            elif command == "refer":
                _check(document, {"target_uri": None}, "", ("target_uri",))
                if not call.sip:
                    raise Refusal(400, "Only a SIP call can be referred.", "invalid_call_state")
                self._move(call, "active", "active", "referred")
            elif command == "hangup":
                _check(document, {}, "")
                self._move(call, "active", "ended", "hung up")
            else:
                raise Refusal(404, f"Invalid URL (POST {request.path})")
            return web.Response(status=200)

        return await self._handle(request, work)

    # -- Live sessions ------------------------------------------------------------------------------------

    async def _create_live(self, request: web.Request) -> web.StreamResponse:
        async def work(request: web.Request, seen: HttpRequest) -> web.StreamResponse:
            key = self._authorize(seen)
            document = self._json(seen)
            _check(
                document, {"session": _LIVE_SESSION, "transport": _TRANSPORT}, "", ("session", "transport")
            )
            _check(document["session"], _LIVE_SESSION, "session", ("model",))
            _check(document["transport"], _TRANSPORT, "transport", ("sdp", "type"))
            _one_of(document["transport"]["type"], ("webrtc",), "transport.type")
            fault = await self._fault(request, seen, document["session"]["model"])
            if fault is not None:
                return fault
            session = Call(self._id("sess_live"), sip=False, state="active", key=key)
            session.store = document["session"].get("store") is True
            self.calls[session.id] = session
            answer = sdp_answer(document["transport"]["sdp"], session.id)
            return web.json_response(
                {"session": {"id": session.id}, "transport": {"type": "webrtc", "sdp": answer}}
            )

        return await self._handle(request, work)

    async def _live_command(self, request: web.Request) -> web.StreamResponse:
        async def work(request: web.Request, seen: HttpRequest) -> web.StreamResponse:
            self._authorize(seen)
            session_id, command = request.match_info["id"], request.match_info["command"]
            fault = await self._fault(request, seen, session_id)
            if fault is not None:
                return fault
            session = self._call(session_id, "sess")
            document = self._json(seen) if seen.body else {}
            if command == "accept":
                _check(document, {"session": _LIVE_ACCEPT_SESSION}, "", ("session",))
                _check(document["session"], _LIVE_ACCEPT_SESSION, "session", ("model", "type"))
                _one_of(document["session"]["type"], ("live",), "session.type")
                self._move(session, "incoming", "active", "accepted")
                session.store = document["session"].get("store") is True
            elif command == "reject":
                _check(document, {"status_code": None}, "", ("status_code",))
                self._move(session, "incoming", "rejected", "rejected")
            elif command == "refer":
                _check(document, {"target_uri": None}, "", ("target_uri",))
                if not session.sip:
                    raise Refusal(400, "Only a SIP session can be referred.", "invalid_call_state")
                self._move(session, "active", "active", "referred")
            elif command == "hangup":
                _check(document, {}, "")
                self._move(session, "active", "ended", "hung up")
            elif command == "fork":
                _check(document, {"transport": _TRANSPORT, "session": _LIVE_FORK_SESSION}, "", ("transport",))
                _check(document["transport"], _TRANSPORT, "transport", ("sdp", "type"))
                if not session.store:
                    raise Refusal(
                        400, "Only a session created with store: true can be forked.", "invalid_call_state"
                    )
                fork = Call(self._id("sess_live"), sip=False, state="active", store=True)
                self.calls[fork.id] = fork
                answer = sdp_answer(document["transport"]["sdp"], fork.id)
                return web.json_response(
                    {"session": {"id": fork.id}, "transport": {"type": "webrtc", "sdp": answer}}
                )
            else:
                raise Refusal(404, f"Invalid URL (POST {request.path})")
            return web.Response(status=200)

        return await self._handle(request, work)

    async def _recording(self, request: web.Request) -> web.StreamResponse:
        seen = await self._record(request)
        try:
            self._authorize(seen)
            session_id = request.match_info["id"]
            fault = await self._fault(request, seen, session_id)
            if fault is not None:
                return fault
            if session_id != "fault-cut":
                session = self._call(session_id, "sess")
                if not session.store or session.state != "ended":
                    raise Refusal(
                        400,
                        "A recording is available once a session created with store: true has ended.",
                        "invalid_call_state",
                    )
        except Refusal as refusal:
            response = refusal.response()
            seen.status = response.status
            return response
        seen.status = 200
        answer = web.StreamResponse(status=200, headers={"Content-Type": "audio/wav"})
        await answer.prepare(request)
        recording = recording_bytes(session_id)
        if session_id == "fault-cut":
            await answer.write(recording[: len(recording) // 2])
            await asyncio.sleep(0.05)
            assert request.transport is not None
            request.transport.abort()
            return answer
        for start in range(0, len(recording), 256 * 1024):
            await answer.write(recording[start : start + 256 * 1024])
        await answer.write_eof()
        return answer

    # -- helpers --------------------------------------------------------------------------------------------

    def _call(self, call_id: str, prefix: str) -> Call:
        call = self.calls.get(call_id)
        if call is None or not call_id.startswith(prefix):
            raise Refusal(404, f"No call or session found with id '{call_id}'.", "not_found")
        return call

    @staticmethod
    def _move(call: Call, expected: str, to: str, verb: str) -> None:
        if call.state != expected:
            raise Refusal(400, f"{call.id} is {call.state}: it cannot be {verb}.", "invalid_call_state")
        call.state = to


def recording_bytes(session_id: str) -> bytes:
    """The recording the fake serves for ``session_id``: a WAV header and deterministic samples."""
    pattern = hashlib.sha256(session_id.encode()).digest() * (RECORDING_BYTES // 32)
    return b"RIFF" + (RECORDING_BYTES - 8).to_bytes(4, "little") + b"WAVE" + pattern[: RECORDING_BYTES - 12]


def _multipart(body: bytes, content_type: str) -> dict[str, bytes]:
    """The parts of a multipart/form-data body by name (a plain reading of RFC 7578)."""
    found = re.search(r'boundary="?([^";]+)"?', content_type)
    if found is None:
        raise Refusal(400, "Invalid multipart body: no boundary.", "invalid_multipart")
    delimiter = b"\r\n--" + found.group(1).encode()
    pieces = (b"\r\n" + body).split(delimiter)
    if len(pieces) < 3 or not pieces[-1].startswith(b"--"):
        raise Refusal(400, "Invalid multipart body: not closed.", "invalid_multipart")
    parts = {}
    for piece in pieces[1:-1]:
        head, _, content = piece.partition(b"\r\n\r\n")
        name = re.search(rb'name="([^"]*)"', head)
        if name is None:
            raise Refusal(400, "Invalid multipart body: a part has no name.", "invalid_multipart")
        parts[name.group(1).decode()] = content
    return parts
