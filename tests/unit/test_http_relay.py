"""``plan_http`` and ``HttpExchange``: the relayed HTTP endpoints without a socket.

Routing by the table, refusals in OpenAI's error shape, credentials (the operator's key for a gateway
token, never the token; an ``ek_`` key as the client's own), a token's scope and a client secret's
lifetime, the body relayed byte for byte unless a change is due, the simulator's client secret, the
provider's answers and failures, and no key or token in any repr, log line or answer.
"""

from __future__ import annotations

import json
import logging
from typing import Any
from urllib.parse import urlsplit

import pytest

from shared.admission import Admission
from shared.answers import RawAnswer
from shared.config import Settings
from shared.handshake import SessionPlan, plan_session
from shared.http_bodies import Multipart
from shared.http_relay import (
    HttpExchange,
    StreamedAnswer,
    UpstreamHttpFailure,
    is_http_endpoint,
    plan_http,
)
from shared.http_routes import HTTP_ENDPOINTS, match_http_endpoint
from shared.limits import LimitCounters
from shared.tokens import mint, verify

NOW = 1_767_225_600.0
CLIENT_KEY = "sk-client-http-unit-2468"
OPERATOR_KEY = "sk-operator-http-unit-1357"
AZURE_KEY = "azure-operator-http-unit-9753"
SECRET = "unit-gateway-secret-0123456789abcdef-xyz"
OPENAI_BASE = "https://api.openai.test/v1"
AZURE_ENDPOINT = "https://res.openai.azure.test"
ORIGIN = "https://app.example.test"
OFFER = "v=0\r\no=- 1 2 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\n"


def settings(**values: str) -> Settings:
    base = {
        "OPENAI_BASE_URL": OPENAI_BASE,
        "OPENAI_API_KEY": OPERATOR_KEY,
        "AZURE_OPENAI_ENDPOINT": AZURE_ENDPOINT,
        "AZURE_OPENAI_API_KEY": AZURE_KEY,
    }
    return Settings.from_mapping({**base, **values})


def token_settings(**values: str) -> Settings:
    return settings(GATEWAY_SECRET=SECRET, **values)


def token(ttl: int = 600, **claims: Any) -> str:
    return mint(SECRET, subject=claims.pop("subject", "unit-user"), now=NOW, ttl_seconds=ttl, **claims)


def post(
    path: str,
    body: bytes | dict[str, Any] = b"",
    key: str | None = CLIENT_KEY,
    config: Settings | None = None,
    query: str = "",
    headers: dict[str, str] | None = None,
    method: str = "POST",
    admission: Admission | None = None,
    now: float = NOW,
) -> RawAnswer | HttpExchange:
    raw = json.dumps(body).encode() if isinstance(body, dict) else body
    sent = {"content-type": "application/json", **(headers or {})}
    if key is not None:
        sent["authorization"] = f"Bearer {key}"
    return plan_http(method, path, query, sent, raw, config or settings(), now, admission, 0.0)


def exchange(outcome: RawAnswer | HttpExchange) -> HttpExchange:
    assert isinstance(outcome, HttpExchange), outcome
    return outcome


def refused(outcome: RawAnswer | HttpExchange, status: int, code: str) -> dict[str, Any]:
    """The refusal's error object, checked to be OpenAI's shape with ``status`` and ``code``."""
    assert isinstance(outcome, RawAnswer), outcome
    assert outcome.status == status, outcome
    assert outcome.headers["Content-Type"] == "application/json"
    error = json.loads(outcome.body)["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["code"] == code, error
    return error


def secret_request(model: str = "gpt-realtime", **extra: Any) -> dict[str, Any]:
    return {"session": {"type": "realtime", "model": model}, **extra}


# -- the table -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("endpoint", HTTP_ENDPOINTS, ids=lambda endpoint: endpoint.name)
def test_every_endpoint_is_served_at_openais_path(endpoint: Any) -> None:
    path = "/v1" + endpoint.path.replace("{id}", "rtc_abc123")
    (route,) = match_http_endpoint(path)
    assert route.endpoint is endpoint
    assert route.endpoint_id == ("rtc_abc123" if "{id}" in endpoint.path else None)
    azure = match_http_endpoint("/openai" + path)
    assert bool(azure) is endpoint.azure


@pytest.mark.parametrize(
    "path",
    [
        "/v1/realtime/calls/../client_secrets/accept",
        "/v1/realtime/calls/./accept",
        "/v1/realtime/calls/a%2Fb/accept",
        "/v1/realtime/calls//accept",
        "/v1/realtime/calls/x/y/accept",
        "/v1/realtime/calls/rtc_1/answer",
        "/openai/v1/live/sessions",
        "/v2/realtime/calls",
    ],
)
def test_other_paths_are_not_endpoints(path: str) -> None:
    assert match_http_endpoint(path) == ()
    refused(post(path), 404, "not_found")


def test_a_wrong_method_gets_405_naming_the_right_one() -> None:
    answer = post("/v1/realtime/client_secrets", method="GET")
    refused(answer, 405, "method_not_allowed")
    assert isinstance(answer, RawAnswer)
    assert answer.headers["Allow"] == "POST"


# -- credentials ---------------------------------------------------------------------------------------


def test_the_clients_key_goes_upstream_with_the_body_and_content_type_unchanged() -> None:
    body = b'{ "session" : {"type":"realtime", "model":"gpt-realtime"} }'
    found = exchange(post("/v1/realtime/client_secrets", body, query="provider=openai&api_key=x&trace=1"))
    request = found.request
    assert request.method == "POST"
    assert request.url == f"{OPENAI_BASE}/realtime/client_secrets?trace=1"  # the gateway's own query is not
    assert request.headers["Authorization"] == f"Bearer {CLIENT_KEY}"
    assert request.headers["Content-Type"] == "application/json"
    assert request.body == body
    assert not found.operator_key


def test_without_a_key_the_operators_goes_upstream() -> None:
    found = exchange(post("/v1/realtime/calls/rtc_1/hangup", key=None))
    assert found.request.headers["Authorization"] == f"Bearer {OPERATOR_KEY}"
    assert found.request.url == f"{OPENAI_BASE}/realtime/calls/rtc_1/hangup"
    assert found.operator_key


def test_without_any_key_the_client_is_told_so() -> None:
    config = Settings.from_mapping({"OPENAI_BASE_URL": OPENAI_BASE})
    refused(post("/v1/realtime/calls/rtc_1/hangup", key=None, config=config), 401, "missing_api_key")


def test_a_token_sends_the_operators_key_and_never_itself() -> None:
    issued = token()
    found = exchange(
        post("/v1/realtime/client_secrets", secret_request(), key=issued, config=token_settings())
    )
    request = found.request
    assert request.headers["Authorization"] == f"Bearer {OPERATOR_KEY}"
    assert issued not in repr(request.headers) + request.url + request.body.decode()
    assert found.subject == "unit-user"


def test_in_token_mode_a_provider_key_is_refused_but_an_ephemeral_key_is_the_clients_own() -> None:
    config = token_settings()
    refused(post("/v1/realtime/calls", OFFER.encode(), key=CLIENT_KEY, config=config), 401, "invalid_token")
    found = exchange(
        post(
            "/v1/realtime/calls",
            OFFER.encode(),
            key="ek_68af296e8e408191a1120ab6383263c2",
            config=config,
            headers={"content-type": "application/sdp"},
        )
    )
    assert found.request.headers["Authorization"] == "Bearer ek_68af296e8e408191a1120ab6383263c2"
    assert not found.operator_key


def test_an_ephemeral_key_opens_a_websocket_session_in_token_mode_but_not_the_simulator() -> None:
    config = token_settings(OPENAI_REALTIME_URL="wss://api.openai.test/v1/realtime")
    headers = {"authorization": "Bearer ek_abc"}
    planned = plan_session("/v1/realtime", "model=gpt-realtime", headers, config, NOW)
    assert isinstance(planned, SessionPlan)
    assert planned.upstream is not None
    assert planned.upstream.headers["Authorization"] == "Bearer ek_abc"
    simulator = plan_session("/v1/realtime", "provider=simulator", headers, config, NOW)
    assert not isinstance(simulator, SessionPlan)
    assert simulator.status == 401


def test_origins_are_checked_and_listed_pages_get_cors_headers() -> None:
    config = settings(ALLOWED_ORIGINS=ORIGIN)
    refused(
        post("/v1/realtime/calls/rtc_1/hangup", headers={"origin": "https://evil.test"}, config=config),
        403,
        "origin_not_allowed",
    )
    found = exchange(post("/v1/realtime/calls/rtc_1/hangup", headers={"origin": ORIGIN}, config=config))
    assert found.cors["Access-Control-Allow-Origin"] == ORIGIN
    assert "Location" in found.cors["Access-Control-Expose-Headers"]
    head = found.head(200, {"content-type": "application/sdp", "set-cookie": "a=b"})
    assert head is not None
    assert head.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert "set-cookie" not in head.headers


def test_a_preflight_is_answered_for_listed_origins_only() -> None:
    config = settings(ALLOWED_ORIGINS=ORIGIN)
    asks = {
        "origin": ORIGIN,
        "access-control-request-method": "POST",
        "access-control-request-headers": "authorization, content-type",
    }
    answer = plan_http("OPTIONS", "/v1/realtime/calls", "", asks, b"", config, NOW)
    assert isinstance(answer, RawAnswer)
    assert answer.status == 204
    assert answer.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert answer.headers["Access-Control-Allow-Methods"] == "POST"
    assert answer.headers["Access-Control-Allow-Headers"] == "authorization, content-type"
    other = plan_http(
        "OPTIONS", "/v1/realtime/calls", "", {**asks, "origin": "https://evil.test"}, b"", config, NOW
    )
    refused(other, 403, "origin_not_allowed")
    unlisted = plan_http("OPTIONS", "/v1/realtime/calls", "", asks, b"", settings(), NOW)
    refused(unlisted, 403, "origin_not_allowed")


# -- bodies ---------------------------------------------------------------------------------------------


def test_a_body_over_the_limit_is_refused_whether_sent_or_declared() -> None:
    config = settings(MAX_HTTP_BODY_BYTES="100")
    refused(post("/v1/realtime/calls", b"v=0" + b"x" * 100, config=config), 413, "request_too_large")
    declared = post("/v1/realtime/calls", b"v=0", headers={"content-length": "5000"}, config=config)
    refused(declared, 413, "request_too_large")
    exchange(post("/v1/realtime/calls", b"v=0" + b"x" * 97, config=config))


@pytest.mark.parametrize("body", [b"{", b"[1]", b'"x"', b"\xff"])
def test_a_client_secret_request_must_be_a_json_object(body: bytes) -> None:
    error = refused(post("/v1/realtime/client_secrets", body), 400, "invalid_json")
    assert error["type"] == "invalid_request_error"


def test_a_retired_model_is_renamed_and_nothing_else_in_the_body_changes() -> None:
    found = exchange(post("/v1/realtime/client_secrets", secret_request("gpt-4o-realtime-preview", extra=1)))
    assert json.loads(found.request.body) == {
        "session": {"type": "realtime", "model": "gpt-realtime"},
        "extra": 1,
    }


def test_in_a_multipart_offer_only_the_session_part_changes() -> None:
    boundary = "b0undary"
    disposition = "--b0undary\r\nContent-Disposition: form-data; name="
    parts = [
        f'{disposition}"sdp"\r\nContent-Type: application/sdp\r\n\r\n{OFFER}\r\n',
        f'{disposition}"session"\r\nContent-Type: application/json\r\n\r\n'
        '{"type": "realtime", "model": "gpt-4o-realtime-preview"}\r\n',
        f"--{boundary}--\r\n",
    ]
    body = "".join(parts).encode()
    content_type = f"multipart/form-data; boundary={boundary}"
    found = exchange(post("/v1/realtime/calls", body, headers={"content-type": content_type}))
    sent = found.request.body
    assert found.request.headers["Content-Type"] == content_type
    relayed = Multipart.parse(sent, content_type)
    original = Multipart.parse(body, content_type)
    sdp = original.find("sdp")
    assert sdp is not None
    assert relayed.pieces[sdp] == original.pieces[sdp]
    session = relayed.find("session")
    assert session is not None
    assert json.loads(relayed.content(session)) == {"type": "realtime", "model": "gpt-realtime"}
    assert sent.startswith(parts[0].encode())
    assert sent.endswith(parts[2].encode())


def test_a_multipart_body_with_its_session_as_sent_is_relayed_byte_for_byte() -> None:
    body = (
        b'--xyz\r\nContent-Disposition: form-data; name="sdp"\r\n\r\nv=0\r\n'
        b'--xyz\r\nContent-Disposition: form-data; name="session"\r\n\r\n'
        b'{"type":"realtime","model":"gpt-realtime"}\r\n'
        b"--xyz--\r\n"
    )
    found = exchange(
        post("/v1/realtime/calls", body, headers={"content-type": 'multipart/form-data; boundary="xyz"'})
    )
    assert found.request.body == body


# -- a gateway token's scope and life -------------------------------------------------------------------


def test_a_token_allows_only_its_models_as_asked_or_after_aliases() -> None:
    config = token_settings()
    limited = token(models=["gpt-realtime"])
    error = refused(
        post("/v1/realtime/client_secrets", secret_request("gpt-realtime-mini"), key=limited, config=config),
        403,
        "token_scope_denied",
    )
    assert "gpt-realtime-mini" in error["message"]
    aliased = exchange(
        post(
            "/v1/realtime/client_secrets",
            secret_request("gpt-4o-realtime-preview"),
            key=limited,
            config=config,
        )
    )
    assert json.loads(aliased.request.body)["session"]["model"] == "gpt-realtime"
    unnamed = post(
        "/v1/realtime/client_secrets", {"session": {"type": "realtime"}}, key=limited, config=config
    )
    refused(unnamed, 403, "token_scope_denied")
    offer = post(
        "/v1/realtime/calls",
        OFFER.encode(),
        key=limited,
        config=config,
        headers={"content-type": "application/sdp"},
    )
    refused(offer, 403, "token_scope_denied")
    exchange(post("/v1/realtime/calls/rtc_1/hangup", key=limited, config=config))  # no session: no model


def test_a_token_checks_a_live_sessions_and_a_translations_model() -> None:
    config = token_settings()
    limited = token(models=["gpt-live-*"])
    live = {"session": {"model": "gpt-live-1"}, "transport": {"type": "webrtc", "sdp": OFFER}}
    exchange(post("/v1/live/sessions", live, key=limited, config=config))
    other = {"session": {"model": "gpt-realtime"}}
    refused(
        post("/v1/realtime/translations/client_secrets", other, key=limited, config=config),
        403,
        "token_scope_denied",
    )


def test_a_token_for_openai_cannot_reach_azure() -> None:
    limited = token(providers=["openai"])
    answer = post(
        "/openai/v1/realtime/client_secrets", secret_request(), key=limited, config=token_settings()
    )
    refused(answer, 403, "token_scope_denied")


def test_a_client_secret_lives_no_longer_than_its_token() -> None:
    config = token_settings()
    short = token(ttl=100)
    found = exchange(
        post("/v1/realtime/client_secrets", secret_request(), key=short, config=config, now=NOW + 30)
    )
    assert json.loads(found.request.body)["expires_after"] == {"anchor": "created_at", "seconds": 70}
    asked = secret_request(expires_after={"anchor": "created_at", "seconds": 500})
    capped = exchange(
        post(
            "/v1/realtime/translations/client_secrets",
            {**asked, "session": {"model": "m"}},
            key=short,
            config=config,
        )
    )
    assert json.loads(capped.request.body)["expires_after"]["seconds"] == 100
    body = json.dumps(secret_request(expires_after={"seconds": 60})).encode()
    within = exchange(post("/v1/realtime/client_secrets", body, key=short, config=config))
    assert within.request.body == body  # nothing to cap: the bytes as sent
    long = exchange(post("/v1/realtime/client_secrets", secret_request(), key=token(ttl=3600), config=config))
    assert "expires_after" not in json.loads(long.request.body)  # OpenAI's 600 s default is shorter
    ending = post("/v1/realtime/client_secrets", secret_request(), key=short, config=config, now=NOW + 95)
    refused(ending, 401, "token_expired")
    bad = post(
        "/v1/realtime/client_secrets",
        secret_request(expires_after={"seconds": "60"}),
        key=short,
        config=config,
    )
    assert refused(bad, 400, "invalid_type")["param"] == "expires_after.seconds"


def test_session_starts_count_against_the_subjects_rate() -> None:
    config = token_settings(SESSIONS_PER_MINUTE_PER_SUBJECT="2")
    admission = Admission(config, LimitCounters())
    issued = token()
    for _ in range(2):
        exchange(
            post(
                "/v1/realtime/client_secrets",
                secret_request(),
                key=issued,
                config=config,
                admission=admission,
            )
        )
    exchange(
        post("/v1/realtime/calls/rtc_1/hangup", key=issued, config=config, admission=admission)
    )  # not a start
    answer = post(
        "/v1/realtime/calls",
        OFFER.encode(),
        key=issued,
        config=config,
        admission=admission,
        headers={"content-type": "application/sdp"},
    )
    refused(answer, 429, "rate_limited")
    assert isinstance(answer, RawAnswer)
    assert 1 <= int(answer.headers["Retry-After"]) <= 60
    other = token(subject="someone-else")
    exchange(
        post("/v1/realtime/client_secrets", secret_request(), key=other, config=config, admission=admission)
    )


# -- providers ------------------------------------------------------------------------------------------


def test_azure_serves_what_it_documents_under_its_own_path_with_its_key_header() -> None:
    found = exchange(post("/openai/v1/realtime/client_secrets", secret_request(), key=None))
    assert found.request.url == f"{AZURE_ENDPOINT}/openai/v1/realtime/client_secrets"
    assert found.request.headers["api-key"] == AZURE_KEY
    assert "Authorization" not in found.request.headers
    calls = exchange(post("/v1/realtime/calls/rtc_9/accept", {"type": "realtime"}, query="provider=azure"))
    assert calls.request.url == f"{AZURE_ENDPOINT}/openai/v1/realtime/calls/rtc_9/accept"
    assert calls.request.headers["Authorization"] == f"Bearer {CLIENT_KEY}"  # an Entra token stays a bearer
    error = refused(post("/v1/live/sessions", {}, query="provider=azure"), 501, "provider_unsupported")
    assert "client.live.create" in error["message"]
    unconfigured = Settings.from_mapping({"OPENAI_BASE_URL": OPENAI_BASE})
    refused(
        post("/openai/v1/realtime/calls", OFFER.encode(), config=unconfigured), 501, "provider_not_configured"
    )


def test_an_unknown_provider_is_a_400() -> None:
    assert (
        refused(post("/v1/realtime/calls", b"v=0", query="provider=elsewhere"), 400, "unknown_provider")[
            "param"
        ]
        == "provider"
    )


def test_the_simulator_mints_a_client_secret_in_openais_shape() -> None:
    config = settings(DEFAULT_PROVIDER="simulator")
    body = secret_request("gpt-realtime", expires_after={"seconds": 120})
    body["session"]["instructions"] = "Be brief."
    answer = post("/v1/realtime/client_secrets", body, key=None, config=config)
    assert isinstance(answer, RawAnswer)
    assert answer.status == 200
    assert answer.headers["Cache-Control"] == "no-store"
    minted = json.loads(answer.body)
    assert minted["value"].startswith("ek_sim_")
    assert minted["expires_at"] == int(NOW) + 120
    assert minted["session"]["type"] == "realtime"
    assert minted["session"]["model"] == "gpt-realtime"
    assert minted["session"]["instructions"] == "Be brief."
    unknown = post(
        "/v1/realtime/client_secrets", {"session": {"type": "realtime", "voices": 1}}, config=config
    )
    assert refused(unknown, 400, "unknown_parameter")["param"] == "session.voices"
    too_long = post(
        "/v1/realtime/client_secrets", secret_request(expires_after={"seconds": 9000}), config=config
    )
    refused(too_long, 400, "invalid_value")
    error = refused(post("/v1/realtime/calls", OFFER.encode(), config=config), 501, "provider_unsupported")
    assert "simulator" in error["message"]


def test_the_simulators_secret_for_a_token_is_a_signed_key_for_the_simulator_only() -> None:
    config = token_settings(DEFAULT_PROVIDER="simulator")
    issued = token(ttl=300, models=["gpt-realtime"], max_session_seconds=60)
    answer = post("/v1/realtime/client_secrets", secret_request(), key=issued, config=config)
    assert isinstance(answer, RawAnswer)
    value = json.loads(answer.body)["value"]
    assert value.startswith("ek_sim_rgw_")
    claims = verify(value.removeprefix("ek_sim_"), SECRET, NOW)
    assert claims.providers == ("simulator",)
    assert claims.expires_at == int(NOW) + 300  # capped at the token's life
    assert claims.max_session_seconds == 60
    headers = {"authorization": f"Bearer {value}"}
    planned = plan_session("/v1/realtime", "provider=simulator&model=gpt-realtime", headers, config, NOW)
    assert isinstance(planned, SessionPlan)
    assert planned.subject == "unit-user"
    elsewhere = plan_session("/v1/realtime", "provider=openai&model=gpt-realtime", headers, config, NOW)
    assert not isinstance(elsewhere, SessionPlan)
    assert elsewhere.status == 403
    refused(
        post("/v1/realtime/client_secrets", secret_request(), key="ek_abc", config=config),
        401,
        "invalid_token",
    )


# -- the provider's answers -------------------------------------------------------------------------------


def test_a_success_is_streamed_with_the_headers_a_client_needs() -> None:
    found = exchange(post("/v1/realtime/calls", OFFER.encode(), headers={"content-type": "application/sdp"}))
    headers = {
        "content-type": "application/sdp",
        "location": "https://api.openai.test/v1/realtime/calls/rtc_42",
        "x-request-id": "req_1",
        "content-length": "120",
        "content-encoding": "gzip",
        "set-cookie": "__cf_bm=x",
    }
    head = found.head(201, headers)
    assert head == StreamedAnswer(
        201,
        {"content-type": "application/sdp", "location": "/v1/realtime/calls/rtc_42", "x-request-id": "req_1"},
    )
    relative = found.head(201, {"location": "/v1/realtime/calls/rtc_43"})
    assert relative is not None
    assert relative.headers["location"] == "/v1/realtime/calls/rtc_43"
    prefixed = settings(OPENAI_BASE_URL="http://proxy.test/openai-eu/v1")
    behind = exchange(post("/v1/realtime/calls", OFFER.encode(), config=prefixed)).head(
        201, {"location": "/openai-eu/v1/realtime/calls/rtc_44"}
    )
    assert behind is not None
    assert behind.headers["location"] == "/v1/realtime/calls/rtc_44"
    azure = exchange(post("/openai/v1/realtime/calls", OFFER.encode())).head(
        201, {"location": f"{AZURE_ENDPOINT}/openai/v1/realtime/calls/rtc_45"}
    )
    assert azure is not None
    assert azure.headers["location"] == "/openai/v1/realtime/calls/rtc_45"
    elsewhere = found.head(201, {"location": "https://elsewhere.test/x"})
    assert elsewhere is not None
    assert elsewhere.headers["location"] == "https://elsewhere.test/x"


def test_a_providers_error_is_relayed_scrubbed_of_the_keys_sent() -> None:
    found = exchange(post("/v1/realtime/calls/rtc_1/hangup"))
    assert found.head(429, {}) is None
    body = json.dumps(
        {"error": {"message": f"Slow down, {CLIENT_KEY}.", "type": "requests", "param": None, "code": None}}
    )
    answer = found.answer(429, {"content-type": "application/json", "retry-after": "7"}, body.encode())
    assert answer.status == 429
    assert answer.headers["retry-after"] == "7"
    assert CLIENT_KEY not in answer.body.decode()
    assert json.loads(answer.body)["error"]["message"] == "Slow down, ***."


def test_the_operators_key_refused_is_the_gateways_problem_and_never_quoted() -> None:
    found = exchange(post("/v1/realtime/calls/rtc_1/hangup", key=None))
    body = json.dumps(
        {"error": {"message": f"Incorrect API key provided: {OPERATOR_KEY}", "code": "invalid_api_key"}}
    )
    answer = found.answer(401, {"content-type": "application/json"}, body.encode())
    error = refused(answer, 502, "upstream_unauthorized")
    assert OPERATOR_KEY not in answer.body.decode()
    assert error["type"] == "server_error"


@pytest.mark.parametrize(
    ("status", "headers", "body", "code"),
    [
        (502, {"content-type": "text/html"}, b"<html>Bad Gateway</html>", "upstream_error"),
        (503, {"content-type": "application/json"}, b"{}", "upstream_error"),
        (429, {}, b"", "upstream_rate_limited"),
        (404, {"content-type": "application/json"}, b"not json", "upstream_not_found"),
        (302, {"location": "https://elsewhere.test"}, b"", "upstream_error"),
    ],
)
def test_a_provider_answer_without_an_error_of_its_own_gets_the_gateways(
    status: int, headers: dict[str, str], body: bytes, code: str
) -> None:
    answer = exchange(post("/v1/realtime/calls/rtc_1/hangup")).answer(status, headers, body)
    refused(answer, 502 if status < 400 else status, code)


@pytest.mark.parametrize(
    ("failure", "status", "code"),
    [
        (UpstreamHttpFailure.UNREACHABLE, 502, "upstream_unreachable"),
        (UpstreamHttpFailure.TIMEOUT, 504, "upstream_timeout"),
        (UpstreamHttpFailure.DROPPED, 502, "upstream_connection_lost"),
    ],
)
def test_a_failed_request_gets_a_clear_error(failure: UpstreamHttpFailure, status: int, code: str) -> None:
    found = exchange(post("/v1/realtime/calls/rtc_1/hangup"))
    error = refused(found.failed(failure), status, code)
    assert urlsplit(OPENAI_BASE).netloc in error["message"]


def test_no_key_or_token_in_a_repr_a_log_line_or_an_answer(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="realtime_gateway")
    config = token_settings(AUTH_MODE="both")
    issued = token(ttl=60)
    secrets = [CLIENT_KEY, OPERATOR_KEY, AZURE_KEY, SECRET, issued]
    outcomes = [
        post("/v1/realtime/client_secrets", secret_request(), key=issued, config=config),
        post("/v1/realtime/client_secrets", secret_request("nope"), key=token(models=["x"]), config=config),
        post("/v1/realtime/calls/rtc_1/hangup", key=CLIENT_KEY, config=config, query=f"api_key={CLIENT_KEY}"),
        post("/openai/v1/realtime/calls/rtc_1/hangup", key=None, config=settings()),
    ]
    texts = [repr(outcome) for outcome in outcomes]
    for outcome in outcomes:
        if isinstance(outcome, HttpExchange):
            texts.append(outcome.request.url)
            texts.append(repr(outcome.request))
            for failure in UpstreamHttpFailure:
                texts.append(outcome.failed(failure).body.decode())
            texts.append(outcome.answer(401, {}, b"").body.decode())
        else:
            texts.append(outcome.body.decode())
    texts.extend(record.getMessage() for record in caplog.records)
    assert caplog.records
    for text in texts:
        for secret in secrets:
            assert secret not in text


def test_a_websocket_upgrade_of_an_http_endpoints_path_is_not_relayed_over_http() -> None:
    """``/v1/live/sessions``: ``client.live.create`` posts to it, ``client.live.connect`` upgrades it."""
    assert is_http_endpoint("POST", "/v1/live/sessions", {})
    assert not is_http_endpoint("GET", "/v1/live/sessions", {"upgrade": "websocket"})
    assert not is_http_endpoint("GET", "/v1/live/sessions", {})  # the WebSocket endpoint's 426
    assert not is_http_endpoint("POST", "/v1/live/sessions/sess_1/attach", {})
    assert is_http_endpoint("GET", "/v1/realtime/client_secrets", {})  # its own 405


@pytest.mark.parametrize("provider", ["xai", "gemini"])
def test_a_provider_with_no_http_endpoints_is_told_so(provider: str) -> None:
    """xAI and Gemini are WebSocket providers here: their HTTP requests get a 501 that says why."""
    error = refused(
        post("/v1/realtime/calls", b"v=0", query=f"provider={provider}"), 501, "provider_unsupported"
    )
    assert "OpenAI and Azure OpenAI only" in error["message"]
