"""``/v1/realtime/translations``: realtime speech translation (``?model=``), Realtime's error shape."""

from __future__ import annotations

from ..config import Settings
from ..errors import GatewayError
from ..inbound import TRANSLATION
from ..providers import Credential, Protocol, UpstreamRequest, openai_websocket
from .base import Endpoint, Target


def _openai(
    settings: Settings, target: Target, credential: Credential, protocol: Protocol
) -> UpstreamRequest:
    return openai_websocket(settings, "/realtime/translations", {"model": target.model}, credential)


TRANSLATIONS = Endpoint(
    name="translations",
    title="realtime translation (/v1/realtime/translations)",
    vocabulary=TRANSLATION,
    providers={"openai": _openai},  # Azure OpenAI documents no translation endpoint
    simulator=GatewayError(
        "endpoint_not_supported",
        "The simulator does not translate: realtime translation needs provider=openai.",
        param="provider",
    ),
    model_in="query",
    model_default=False,
    greets=True,  # session.created comes first
    realtime_interface=False,
    forwarded_query=(),
    how_to_connect="open ws(s)://<host>/v1/realtime/translations?model=...",
    sdk_call="client.realtime.translations.connect(model=...)",
)
