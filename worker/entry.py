"""The Worker's entry point: route the request, upgrade realtime ones, relay through the core."""

from __future__ import annotations

import time
from urllib.parse import urlsplit

from workers import Response, WorkerEntrypoint

from shared.admission import Admission
from shared.auth import TOKENS_PATH, token_answer
from shared.config import Settings
from shared.handshake import plan_session
from shared.logs import configure_logging
from shared.routes import HttpAnswer, http_answer
from shared.stats import STATS_PATH, stats_answer
from shared.usage.meter import UsageMeter
from worker.accounting import SessionRecords, WorkerAccounting
from worker.session import WorkerSession

_settings: Settings | None = None
# Sessions open in this isolate, per subject, and each subject's recent starts. Cloudflare runs many
# isolates, so MAX_SESSIONS and the per-subject limits hold per isolate, not across the deployment.
_admission: Admission | None = None
_accounting: WorkerAccounting | None = None


def admission_for(settings: Settings) -> Admission:
    """The isolate's admission bookkeeping (one for every request this isolate serves)."""
    global _admission
    if _admission is None:
        _admission = Admission(settings)
    return _admission


def accounting_for(settings: Settings) -> WorkerAccounting:
    """The isolate's prices (its ledger is each request's ``USAGE_DB`` binding)."""
    global _accounting
    if _accounting is None:
        _accounting = WorkerAccounting(settings)
    return _accounting


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
        # Workers Logs reads the fields of a JSON line: the per-session usage line is JSON either way.
        configure_logging(_settings, "%(levelname)s %(name)s %(message)s", usage_as_json=True)
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
        # Over a budget or a limit, the socket is still accepted: the client is told why (error event,
        # close 1008 or 1013).
        accounting, ledger = accounting_for(settings), WorkerAccounting.ledger(self.env)
        plan, spent_today = await accounting.admit(plan, ledger)
        admission = admission_for(settings)
        plan, ticket = admission.admit_plan(plan, time.monotonic())

        def meter(now: float) -> UsageMeter:
            return accounting.meter(plan, now, spent_today)

        records = SessionRecords(ledger, self.ctx.waitUntil) if ledger is not None else None
        session = WorkerSession(
            plan,
            settings,
            on_end=lambda: admission.release(ticket),
            meter=meter,
            record=records.write if records is not None else None,
        )
        pending = session.start()
        if pending is not None:
            self.ctx.waitUntil(pending)
        response_headers = {"Sec-WebSocket-Protocol": plan.subprotocol} if plan.subprotocol else {}
        return Response(None, status=101, web_socket=session.client_socket, headers=response_headers)


def _respond(answer: HttpAnswer) -> Response:
    return Response(
        answer.json(), status=answer.status, headers={"content-type": "application/json", **answer.headers}
    )
