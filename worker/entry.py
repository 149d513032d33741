"""The Worker's entry point: route the request, upgrade realtime ones, relay through the core."""

from __future__ import annotations

import logging
import time
from urllib.parse import urlsplit

from workers import Response, WorkerEntrypoint

from shared.admission import Admission
from shared.auth import TOKENS_PATH, token_answer
from shared.config import Settings
from shared.handshake import plan_session
from shared.routes import HttpAnswer, http_answer
from shared.stats import STATS_PATH, stats_answer
from worker.session import WorkerSession

_settings: Settings | None = None
# Sessions open in this isolate, per subject, and each subject's recent starts. Cloudflare runs many
# isolates, so MAX_SESSIONS and the per-subject limits hold per isolate, not across the deployment.
_admission: Admission | None = None


def admission_for(settings: Settings) -> Admission:
    """The isolate's admission bookkeeping (one for every request this isolate serves)."""
    global _admission
    if _admission is None:
        _admission = Admission(settings)
    return _admission


def settings_from_env(env: object) -> Settings:
    """The same settings model as the standalone server, fed from the Worker's ``env`` bindings.

    Read once per isolate: bindings do not change while it lives. Logging is set up then too.
    """
    global _settings
    if _settings is None:
        values = {}
        for names in (Settings.names, lambda: Settings.provider_key_names(values)):
            for name in names():
                value = getattr(env, name, None)
                if isinstance(value, str):  # vars and secrets are strings; other bindings are not
                    values[name] = value
        _settings = Settings.from_mapping(values)
        logging.basicConfig(level=_settings.log_level.upper(), format="%(levelname)s %(name)s %(message)s")
    return _settings


class Default(WorkerEntrypoint):
    async def fetch(self, request):
        url = urlsplit(request.url)
        headers = {name.lower(): value for name, value in request.headers.items()}
        if url.path == STATS_PATH:
            settings = settings_from_env(self.env)
            runtime = {"runtime": "worker", "scope": "isolate"}  # each isolate counts its own
            return _respond(stats_answer(request.method, headers, settings, admission_for(settings), runtime))
        if url.path == TOKENS_PATH:
            settings, body = settings_from_env(self.env), await request.text()
            return _respond(token_answer(request.method, url.path, headers, body, settings, time.time()))
        wants_websocket = headers.get("upgrade", "").lower() == "websocket"
        answer = http_answer(request.method, url.path, wants_websocket)
        if answer is not None:
            return _respond(answer)
        settings = settings_from_env(self.env)
        plan = plan_session(url.path, url.query, headers, settings, time.time())
        if isinstance(plan, HttpAnswer):  # refused before the upgrade (origin, gateway token)
            return _respond(plan)
        # Over a limit, the socket is still accepted: the client is told why (error event, close 1013).
        admission = admission_for(settings)
        plan, ticket = admission.admit_plan(plan, time.monotonic())
        session = WorkerSession(plan, settings, on_end=lambda: admission.release(ticket))
        pending = session.start()
        if pending is not None:
            self.ctx.waitUntil(pending)
        response_headers = {"Sec-WebSocket-Protocol": plan.subprotocol} if plan.subprotocol else {}
        return Response(None, status=101, web_socket=session.client_socket, headers=response_headers)


def _respond(answer: HttpAnswer) -> Response:
    return Response(
        answer.json(), status=answer.status, headers={"content-type": "application/json", **answer.headers}
    )
