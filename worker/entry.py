"""The Worker's entry point: route the request, upgrade realtime ones, relay through the core."""

from __future__ import annotations

import logging
from urllib.parse import urlsplit

from workers import Response, WorkerEntrypoint

from shared.config import Settings
from shared.handshake import plan_session
from shared.routes import http_answer
from worker.session import WorkerSession

_settings: Settings | None = None


def settings_from_env(env: object) -> Settings:
    """The same settings model as the standalone server, fed from the Worker's ``env`` bindings.

    Read once per isolate: bindings do not change while it lives. Logging is set up then too.
    """
    global _settings
    if _settings is None:
        values = {}
        for name in Settings.names():
            value = getattr(env, name, None)
            if isinstance(value, str):  # vars and secrets are strings; other bindings are not
                values[name] = value
        _settings = Settings.from_mapping(values)
        logging.basicConfig(level=_settings.log_level.upper(), format="%(levelname)s %(name)s %(message)s")
    return _settings


class Default(WorkerEntrypoint):
    async def fetch(self, request):
        url = urlsplit(request.url)
        wants_websocket = (request.headers.get("upgrade") or "").lower() == "websocket"
        answer = http_answer(request.method, url.path, wants_websocket)
        if answer is not None:
            headers = {"content-type": "application/json", **answer.headers}
            return Response(answer.json(), status=answer.status, headers=headers)
        settings = settings_from_env(self.env)
        headers = {name.lower(): value for name, value in request.headers.items()}
        plan = plan_session(url.path, url.query, headers, settings)
        session = WorkerSession(plan, settings)
        pending = session.start()
        if pending is not None:
            self.ctx.waitUntil(pending)
        response_headers = {"Sec-WebSocket-Protocol": plan.subprotocol} if plan.subprotocol else {}
        return Response(None, status=101, web_socket=session.client_socket, headers=response_headers)
