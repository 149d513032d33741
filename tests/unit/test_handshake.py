"""`plan_session`: from a client's upgrade request to provider, model, key, protocol and upstream request."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import pytest

from shared.config import Settings
from shared.handshake import SessionPlan, client_credential, plan_session
from shared.providers import openai_url

CLIENT_KEY = "sk-client-unit-key-2468"
OPERATOR_KEY = "sk-operator-unit-key-1357"
AZURE_OPERATOR_KEY = "azure-operator-unit-key-9753"
OPENAI_URL = "wss://api.openai.test/v1/realtime"
AZURE_ENDPOINT = "https://res.openai.azure.test"
PREVIEW_VERSION = "2024-10-01-preview"


def settings(**values: str) -> Settings:
    return Settings.from_mapping(
        {"OPENAI_REALTIME_URL": OPENAI_URL, "AZURE_OPENAI_ENDPOINT": AZURE_ENDPOINT, **values}
    )


def plan(
    path: str = "/v1/realtime",
    query: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
    config: Settings | None = None,
) -> SessionPlan:
    """``plan_session`` with a model and the client key as a bearer token unless told otherwise."""
    if query is None:
        query = {"model": "gpt-realtime"}
    if headers is None:
        headers = {"authorization": f"Bearer {CLIENT_KEY}"}
    return plan_session(path, urlencode(query), headers, config or settings())


def upstream_of(session: SessionPlan) -> tuple[str, str, dict[str, str], dict[str, str]]:
    """(host, path, query, headers) of the plan's upstream request."""
    assert session.error is None, session.error
    assert session.upstream is not None
    parts = urlsplit(session.upstream.url)
    return parts.netloc, parts.path, dict(parse_qsl(parts.query)), session.upstream.headers


# -- the client's key --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "headers"),
    [
        pytest.param({}, {"authorization": f"Bearer {CLIENT_KEY}"}, id="authorization-bearer"),
        pytest.param({}, {"authorization": f"bearer   {CLIENT_KEY} "}, id="authorization-lowercase"),
        pytest.param({}, {"api-key": CLIENT_KEY}, id="api-key-header"),
        pytest.param(
            {},
            {"sec-websocket-protocol": f"realtime, openai-insecure-api-key.{CLIENT_KEY}"},
            id="subprotocol",
        ),
        pytest.param({"apiKey": CLIENT_KEY}, {}, id="query-apiKey"),
        pytest.param({"api_key": CLIENT_KEY}, {}, id="query-api_key"),
    ],
)
def test_each_client_key_form_reaches_openai_as_a_bearer_token(
    query: dict[str, str], headers: dict[str, str]
) -> None:
    config = settings(OPENAI_API_KEY=OPERATOR_KEY)
    _, _, upstream_query, upstream_headers = upstream_of(
        plan(query={"model": "m", **query}, headers=headers, config=config)
    )
    assert upstream_headers == {"Authorization": f"Bearer {CLIENT_KEY}"}
    assert upstream_query == {"model": "m"}  # the key is never passed on in the URL


def test_authorization_header_wins_over_the_other_key_forms() -> None:
    headers = {
        "authorization": f"Bearer {CLIENT_KEY}",
        "api-key": "sk-from-api-key-header",
        "sec-websocket-protocol": "realtime, openai-insecure-api-key.sk-from-subprotocol",
    }
    credential = client_credential({"api_key": "sk-from-query"}, headers, ["realtime"])
    assert credential is not None
    assert credential.secret == CLIENT_KEY


def test_empty_subprotocol_key_is_no_key() -> None:
    assert client_credential({}, {}, ["realtime", "openai-insecure-api-key."]) is None


def test_operator_key_is_used_when_the_client_sends_none() -> None:
    session = plan(headers={}, config=settings(OPENAI_API_KEY=OPERATOR_KEY))
    assert upstream_of(session)[3] == {"Authorization": f"Bearer {OPERATOR_KEY}"}


def test_missing_key_is_an_error_in_the_plan_not_an_exception() -> None:
    session = plan(headers={"authorization": "Bearer "})
    assert session.error is not None
    assert session.error.code == "missing_api_key"
    assert "provider=simulator" in session.error.message
    assert session.upstream is None


def test_simulator_needs_no_key_and_opens_no_upstream() -> None:
    session = plan(query={"provider": "simulator", "model": "gpt-realtime"}, headers={})
    assert (session.provider, session.model, session.error, session.upstream) == (
        "simulator",
        "gpt-realtime",
        None,
        None,
    )


# -- provider and model ------------------------------------------------------------------------------


def test_unknown_provider_is_an_error_in_the_plan() -> None:
    session = plan(query={"provider": "bogus"})
    assert session.error is not None
    assert (session.error.code, session.error.param) == ("unknown_provider", "provider")
    assert session.upstream is None


def test_azure_without_an_endpoint_is_an_error_in_the_plan() -> None:
    session = plan(query={"provider": "azure"}, config=Settings.from_mapping({}))
    assert session.error is not None
    assert session.error.code == "provider_not_configured"


def test_first_of_a_repeated_query_parameter_wins() -> None:
    session = plan_session(
        "/v1/realtime", "model=first&model=second", {}, settings(OPENAI_API_KEY=OPERATOR_KEY)
    )
    assert session.model == "first"


def test_query_values_are_percent_decoded() -> None:
    key = "sk-a+b/c=d é"
    session = plan_session("/v1/realtime", urlencode({"model": "m", "api_key": key}), {}, settings())
    assert upstream_of(session)[3] == {"Authorization": f"Bearer {key}"}


def test_default_model_is_used_when_the_client_names_none() -> None:
    session = plan(query={}, config=settings(DEFAULT_MODEL="gpt-default"))
    assert session.model == "gpt-default"
    assert upstream_of(session)[2] == {"model": "gpt-default"}


def test_openai_request_goes_to_the_configured_url() -> None:
    host, path, query, _ = upstream_of(plan(query={"model": "gpt-realtime"}))
    assert (host, path, query) == ("api.openai.test", "/v1/realtime", {"model": "gpt-realtime"})


@pytest.mark.parametrize(
    ("path", "provider"),
    [
        ("/", "openai"),
        ("/v1/realtime", "openai"),
        ("/openai/realtime", "azure"),
        ("/openai/v1/realtime", "azure"),
    ],
)
def test_path_picks_the_default_provider(path: str, provider: str) -> None:
    assert plan(path=path).provider == provider


def test_explicit_provider_overrides_the_azure_path() -> None:
    assert plan(path="/openai/realtime", query={"provider": "openai"}).provider == "openai"


# -- Azure -------------------------------------------------------------------------------------------


def test_azure_is_reached_on_the_ga_path_with_the_model_in_the_query() -> None:
    session = plan(query={"provider": "azure", "model": "my-deployment"}, headers={"api-key": CLIENT_KEY})
    host, path, query, headers = upstream_of(session)
    assert session.upstream is not None
    assert session.upstream.url.startswith("wss://")
    assert (host, path, query) == ("res.openai.azure.test", "/openai/v1/realtime", {"model": "my-deployment"})
    assert headers == {"api-key": CLIENT_KEY}


def test_azure_api_version_selects_the_preview_path() -> None:
    config = settings(AZURE_OPENAI_API_VERSION=PREVIEW_VERSION)
    session = plan(
        query={"provider": "azure", "model": "my-deployment"}, headers={"api-key": CLIENT_KEY}, config=config
    )
    _, path, query, _ = upstream_of(session)
    assert path == "/openai/realtime"
    assert query == {"api-version": PREVIEW_VERSION, "deployment": "my-deployment"}


def test_azure_deployment_query_names_the_model() -> None:
    session = plan(
        path="/openai/realtime", query={"deployment": "my-deployment"}, headers={"api-key": CLIENT_KEY}
    )
    assert session.model == "my-deployment"
    assert upstream_of(session)[2] == {"model": "my-deployment"}


def test_azure_keeps_a_bearer_token_as_bearer() -> None:
    session = plan(query={"provider": "azure", "model": "d"}, headers={"authorization": "Bearer entra-token"})
    assert upstream_of(session)[3] == {"Authorization": "Bearer entra-token"}


@pytest.mark.parametrize("form", ["api-key", "query", "subprotocol"])
def test_azure_gets_other_key_forms_as_api_key_header(form: str) -> None:
    query = {"provider": "azure", "model": "d"}
    headers: dict[str, str] = {}
    if form == "api-key":
        headers["api-key"] = CLIENT_KEY
    elif form == "query":
        query["api_key"] = CLIENT_KEY
    else:
        headers["sec-websocket-protocol"] = f"openai-insecure-api-key.{CLIENT_KEY}"
    assert upstream_of(plan(query=query, headers=headers))[3] == {"api-key": CLIENT_KEY}


def test_azure_operator_key_goes_as_api_key_header() -> None:
    config = settings(AZURE_OPENAI_API_KEY=AZURE_OPERATOR_KEY, OPENAI_API_KEY=OPERATOR_KEY)
    session = plan(query={"provider": "azure", "model": "d"}, headers={}, config=config)
    assert upstream_of(session)[3] == {"api-key": AZURE_OPERATOR_KEY}


# -- GA or beta --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "headers"),
    [
        pytest.param({}, {"openai-beta": "realtime=v1"}, id="header"),
        pytest.param({}, {"openai-beta": "assistants=v2, realtime=v1"}, id="header-among-others"),
        pytest.param({}, {"sec-websocket-protocol": "realtime, openai-beta.realtime-v1"}, id="subprotocol"),
        pytest.param({"protocol": "beta"}, {}, id="query"),
    ],
)
@pytest.mark.parametrize("provider", ["openai", "azure"])
def test_beta_client_is_recognised_and_translated_for_a_ga_provider(
    query: dict[str, str], headers: dict[str, str], provider: str
) -> None:
    session = plan(
        query={"provider": provider, "model": "m", **query},
        headers={"authorization": f"Bearer {CLIENT_KEY}", **headers},
    )
    assert session.client_protocol == "beta"
    assert session.upstream_protocol == "ga"
    assert "OpenAI-Beta" not in upstream_of(session)[3]  # a GA provider refuses the beta header


@pytest.mark.parametrize(
    ("provider", "config"),
    [
        pytest.param("openai", {"OPENAI_PROTOCOL": "beta"}, id="openai-beta-endpoint"),
        pytest.param("azure", {"AZURE_OPENAI_API_VERSION": "2024-10-01-preview"}, id="azure-preview"),
        pytest.param("azure", {"AZURE_OPENAI_PROTOCOL": "beta"}, id="azure-beta"),
    ],
)
@pytest.mark.parametrize("client", [{}, {"openai-beta": "realtime=v1"}], ids=["ga-client", "beta-client"])
def test_a_beta_provider_gets_the_beta_header(
    provider: str, config: dict[str, str], client: dict[str, str]
) -> None:
    headers = {"authorization": f"Bearer {CLIENT_KEY}", **client}
    session = plan(query={"provider": provider, "model": "m"}, headers=headers, config=settings(**config))
    assert session.upstream_protocol == "beta"
    assert upstream_of(session)[3]["OpenAI-Beta"] == "realtime=v1"


@pytest.mark.parametrize(
    ("query", "speaks"),
    [
        pytest.param({}, "beta", id="no-model-default-preview"),
        pytest.param({"model": "gpt-4o-realtime-preview-2024-12-17"}, "beta", id="preview-model"),
        pytest.param({"model": "gpt-4o-mini-realtime-preview"}, "beta", id="mini-preview"),
        pytest.param({"model": "gpt-4o-realtime-preview", "protocol": "ga"}, "ga", id="explicit-ga"),
        pytest.param({"model": "gpt-realtime"}, "ga", id="ga-model"),
        pytest.param({"provider": "azure", "deployment": "gpt-4o-realtime-preview"}, "ga", id="azure-name"),
    ],
)
def test_a_client_naming_a_preview_model_without_a_marker_speaks_beta(
    query: dict[str, str], speaks: str
) -> None:
    """The gateway's first clients sent no marker and no model (the default is a preview model)."""
    session = plan(query={"api_key": CLIENT_KEY, **query}, headers={})
    assert session.client_protocol == speaks
    assert session.upstream_protocol == "ga"


def test_no_model_is_ga_when_the_default_is_a_ga_model() -> None:
    assert plan(query={}, config=settings(DEFAULT_MODEL="gpt-realtime")).client_protocol == "ga"


def test_retired_models_are_aliased_for_openai_but_not_for_azure_deployments() -> None:
    assert plan(query={"model": "gpt-4o-realtime-preview"}).model == "gpt-realtime"
    assert plan(query={"model": "gpt-4o-mini-realtime-preview-2024-12-17"}).model == "gpt-realtime-mini"
    assert plan(query={}).model == "gpt-realtime"  # the default model, aliased
    azure = plan(query={"provider": "azure", "deployment": "gpt-4o-realtime-preview"})
    assert azure.model == "gpt-4o-realtime-preview"


def test_model_aliases_come_from_the_operator() -> None:
    config = settings(MODEL_ALIASES="fast=gpt-realtime-mini, gpt-4o-realtime-preview=my-model")
    assert plan(query={"model": "fast"}, config=config).model == "gpt-realtime-mini"
    assert plan(query={"model": "gpt-4o-realtime-preview"}, config=config).model == "my-model"
    assert plan(query={"model": "gpt-4o-realtime-preview"}, config=settings(MODEL_ALIASES="")).model == (
        "gpt-4o-realtime-preview"
    )


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({}, id="nothing"),
        pytest.param({"openai-beta": "assistants=v2"}, id="other-beta-header"),
        pytest.param({"sec-websocket-protocol": "realtime"}, id="realtime-subprotocol"),
    ],
)
@pytest.mark.parametrize("provider", ["openai", "azure"])
def test_ga_client_gets_no_beta_header_upstream(headers: dict[str, str], provider: str) -> None:
    session = plan(
        query={"provider": provider, "model": "m"},
        headers={"authorization": f"Bearer {CLIENT_KEY}", **headers},
    )
    assert session.client_protocol == "ga"
    assert "OpenAI-Beta" not in upstream_of(session)[3]


# -- subprotocol answer ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("offer", "answer"),
    [
        pytest.param(None, None, id="no-offer"),
        pytest.param("realtime", "realtime", id="realtime"),
        pytest.param(f"realtime, openai-insecure-api-key.{CLIENT_KEY}", "realtime", id="realtime-and-key"),
        pytest.param(f"openai-insecure-api-key.{CLIENT_KEY}", None, id="key-only"),
        pytest.param("openai-beta.realtime-v1", None, id="beta-only"),
    ],
)
def test_realtime_subprotocol_is_answered_only_when_offered(offer: str | None, answer: str | None) -> None:
    headers = {"authorization": f"Bearer {CLIENT_KEY}"}
    if offer is not None:
        headers["sec-websocket-protocol"] = offer
    assert plan(headers=headers).subprotocol == answer


def test_subprotocol_is_answered_even_when_the_plan_is_an_error() -> None:
    # The error event can only be read on an accepted socket, so the offer must be honoured.
    session = plan(headers={"sec-websocket-protocol": "realtime"})
    assert session.error is not None
    assert session.subprotocol == "realtime"


# -- query passed on ---------------------------------------------------------------------------------


@pytest.mark.parametrize("provider", ["openai", "azure"])
def test_intent_is_forwarded_upstream(provider: str) -> None:
    session = plan(query={"provider": provider, "model": "m", "intent": "transcription"})
    assert upstream_of(session)[2] == {"model": "m", "intent": "transcription"}


def test_other_client_query_parameters_are_not_forwarded() -> None:
    query = {"model": "m", "provider": "openai", "protocol": "beta", "foo": "bar", "api_key": CLIENT_KEY}
    assert upstream_of(plan(query=query, headers={}))[2] == {"model": "m"}


def test_query_of_the_configured_url_is_kept() -> None:
    config = settings(OPENAI_REALTIME_URL="https://proxy.test/v1/realtime?region=eu")
    session = plan(config=config)
    assert session.upstream is not None
    assert session.upstream.url.startswith("wss://proxy.test/v1/realtime?")
    assert upstream_of(session)[2] == {"region": "eu", "model": "gpt-realtime"}


# -- no key in any repr ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "query", "headers", "values"),
    [
        pytest.param("/v1/realtime", {}, {"authorization": f"Bearer {CLIENT_KEY}"}, {}, id="bearer"),
        pytest.param("/v1/realtime", {"api_key": CLIENT_KEY}, {}, {}, id="query"),
        pytest.param(
            "/v1/realtime",
            {},
            {"sec-websocket-protocol": f"realtime, openai-insecure-api-key.{CLIENT_KEY}"},
            {},
            id="subprotocol",
        ),
        pytest.param("/openai/realtime", {}, {"api-key": CLIENT_KEY}, {}, id="azure-api-key"),
        pytest.param("/v1/realtime", {}, {}, {"OPENAI_API_KEY": CLIENT_KEY}, id="operator"),
        pytest.param("/openai/realtime", {}, {}, {"AZURE_OPENAI_API_KEY": CLIENT_KEY}, id="azure-operator"),
    ],
)
def test_no_repr_shows_the_key(
    path: str, query: dict[str, str], headers: dict[str, str], values: Any
) -> None:
    session = plan(path=path, query={"model": "m", **query}, headers=headers, config=settings(**values))
    assert session.upstream is not None
    assert CLIENT_KEY in str(session.upstream.headers)  # the key is there to be sent, just never shown
    credential = client_credential(query, headers, ["realtime", f"openai-insecure-api-key.{CLIENT_KEY}"])
    for shown in (
        repr(session),
        str(session),
        repr(session.upstream),
        repr(credential),
        session.upstream.host,
    ):
        assert CLIENT_KEY not in shown


def test_openai_urls_derive_from_the_base_url() -> None:
    """Without OPENAI_REALTIME_URL, /v1/realtime is OPENAI_BASE_URL's; every other URL is too."""
    config = Settings.from_mapping({"OPENAI_BASE_URL": "http://127.0.0.1:9/v1/"})
    session = plan(config=config)
    assert session.upstream is not None
    assert session.upstream.url == "ws://127.0.0.1:9/v1/realtime?model=gpt-realtime"
    assert openai_url(config, "/live/sessions", websocket=True) == "ws://127.0.0.1:9/v1/live/sessions"
    assert openai_url(Settings(), "/realtime/client_secrets", websocket=False) == (
        "https://api.openai.com/v1/realtime/client_secrets"
    )


def test_openai_realtime_url_wins_for_realtime_only() -> None:
    config = settings(OPENAI_BASE_URL="https://base.test/v1")
    session = plan(config=config)
    assert session.upstream is not None
    assert session.upstream.url.startswith(OPENAI_URL + "?")
    assert openai_url(config, "/live/sessions", websocket=True) == "wss://base.test/v1/live/sessions"
