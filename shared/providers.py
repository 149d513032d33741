"""Where each provider lives and how it is addressed: URL, headers, auth.

The upstream base URL always comes from the operator's settings, never from the client.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from .config import Settings
from .registry import ProviderSpec

Protocol = Literal["ga", "beta"]

BETA_HEADER = ("OpenAI-Beta", "realtime=v1")
# Client query parameters that mean something to the provider and are passed on.
FORWARDED_QUERY = ("intent",)


@dataclass(frozen=True, slots=True)
class Credential:
    """A provider key and how the client presented it."""

    secret: str
    bearer: bool  # it came as ``Authorization: Bearer`` (an Azure Entra token keeps that form)

    def __repr__(self) -> str:  # keys never reach a log line, even by accident
        return f"Credential(secret='***', bearer={self.bearer})"


@dataclass(frozen=True, slots=True)
class UpstreamRequest:
    """The WebSocket handshake the adapter makes to the provider."""

    url: str = field(repr=False)  # may carry the key (``auth = "query:..."``)
    headers: dict[str, str] = field(repr=False)  # carries the key

    @property
    def host(self) -> str:
        """The provider's host, for messages and logs (the URL's query never is shown)."""
        return urlsplit(self.url).netloc


def _websocket_url(base: str, path: str | None, query: dict[str, str]) -> str:
    """``base`` with ws(s) scheme, ``path`` (if given) and ``query`` merged into its own query."""
    parts = urlsplit(base)
    scheme = {"https": "wss", "http": "ws"}.get(parts.scheme, parts.scheme)
    merged = dict(parse_qsl(parts.query))
    merged.update(query)
    new_path = parts.path.rstrip("/") + path if path is not None else parts.path
    return urlunsplit((scheme, parts.netloc, new_path, urlencode(merged), ""))


def openai_url(settings: Settings, path: str, *, websocket: bool) -> str:
    """``path`` (``/realtime/client_secrets``) under OPENAI_BASE_URL; ws(s):// when ``websocket``."""
    parts = urlsplit(settings.openai_base_url)
    scheme = parts.scheme
    if websocket:
        scheme = {"https": "wss", "http": "ws"}.get(scheme, scheme)
    return urlunsplit((scheme, parts.netloc, parts.path.rstrip("/") + path, parts.query, ""))


def openai_request(
    settings: Settings,
    model: str,
    credential: Credential,
    protocol: Protocol,
    extra: dict[str, str],
) -> UpstreamRequest:
    headers = {"Authorization": f"Bearer {credential.secret}"}
    if protocol == "beta":
        headers[BETA_HEADER[0]] = BETA_HEADER[1]
    if settings.openai_realtime_url is not None:
        url = _websocket_url(settings.openai_realtime_url, None, {"model": model, **extra})
    else:
        url = _websocket_url(settings.openai_base_url, "/realtime", {"model": model, **extra})
    return UpstreamRequest(url=url, headers=headers)


def azure_request(
    settings: Settings,
    model: str,
    credential: Credential,
    protocol: Protocol,
    extra: dict[str, str],
) -> UpstreamRequest:
    assert settings.azure_openai_endpoint is not None
    headers = _azure_headers(credential)
    if protocol == "beta":
        headers[BETA_HEADER[0]] = BETA_HEADER[1]
    if settings.azure_openai_api_version:
        # Preview deployments: the model is a deployment name, the version a query parameter.
        query = {"api-version": settings.azure_openai_api_version, "deployment": model, **extra}
        url = _websocket_url(settings.azure_openai_endpoint, "/openai/realtime", query)
    else:
        url = _websocket_url(settings.azure_openai_endpoint, "/openai/v1/realtime", {"model": model, **extra})
    return UpstreamRequest(url=url, headers=headers)


def openai_websocket(
    settings: Settings, path: str, query: dict[str, str], credential: Credential
) -> UpstreamRequest:
    """OpenAI's WebSocket endpoint at ``path`` under OPENAI_BASE_URL (``/live/sessions``, ...)."""
    url = _websocket_url(settings.openai_base_url, path, query)
    return UpstreamRequest(url=url, headers={"Authorization": f"Bearer {credential.secret}"})


def openai_realtime_call(settings: Settings, call_id: str, credential: Credential) -> UpstreamRequest:
    """The sideband of a WebRTC or SIP call: OpenAI's ``/v1/realtime`` with ``call_id``, no model."""
    if settings.openai_realtime_url is not None:
        url = _websocket_url(settings.openai_realtime_url, None, {"call_id": call_id})
    else:
        url = _websocket_url(settings.openai_base_url, "/realtime", {"call_id": call_id})
    return UpstreamRequest(url=url, headers={"Authorization": f"Bearer {credential.secret}"})


def azure_websocket(
    settings: Settings, path: str, query: dict[str, str], credential: Credential
) -> UpstreamRequest:
    """Azure OpenAI's WebSocket endpoint at ``path`` (``/openai/v1/realtime``, ...)."""
    assert settings.azure_openai_endpoint is not None
    url = _websocket_url(settings.azure_openai_endpoint, path, query)
    return UpstreamRequest(url=url, headers=_azure_headers(credential))


def _azure_headers(credential: Credential) -> dict[str, str]:
    """An Entra ID token stays a bearer token; a key goes as ``api-key``."""
    if credential.bearer:
        return {"Authorization": f"Bearer {credential.secret}"}
    return {"api-key": credential.secret}


def registry_request(
    spec: ProviderSpec, model: str, credential: Credential, protocol: Protocol, extra: dict[str, str]
) -> UpstreamRequest:
    """A provider reached at its registry URL (xAI, Gemini, PROVIDERS_FILE's), its key sent as it asks."""
    assert spec.url is not None
    query = dict(extra)
    if spec.kind != "gemini":  # Gemini names its model in the setup message, not the URL
        query = {"model": model, **query}
    headers: dict[str, str] = {}
    form, _, name = spec.auth.partition(":")
    if form == "bearer":
        headers["Authorization"] = f"Bearer {credential.secret}"
    elif form == "api-key":
        headers["api-key"] = credential.secret
    elif form == "header":
        headers[name] = credential.secret
    else:  # query:<parameter>
        query[name] = credential.secret
    if protocol == "beta" and spec.kind in ("openai", "azure"):
        headers[BETA_HEADER[0]] = BETA_HEADER[1]
    return UpstreamRequest(url=_websocket_url(spec.url, None, query), headers=headers)


def upstream_protocol(settings: Settings, provider: str) -> Protocol:
    """The interface ``provider`` speaks: what the gateway sends it, and what it must translate."""
    spec = settings.registry.get(provider)
    return spec.protocol if spec is not None else "ga"


def configured_key(settings: Settings, provider: str) -> str | None:
    """The operator's key for ``provider``, if one is configured."""
    spec = settings.registry.get(provider)
    return spec.key if spec is not None else None


def display_name(settings: Settings, provider: str) -> str:
    """What messages call ``provider`` ("Azure OpenAI")."""
    spec = settings.registry.get(provider)
    return spec.title if spec is not None else provider
