"""The provider registry: every provider a client may name with ``provider=``, built in or the operator's.

Built in: ``openai``, ``azure`` and ``simulator`` (reached as their own settings say), ``xai``
(``XAI_REALTIME_URL``, ``XAI_API_KEY``) and ``gemini`` (``GEMINI_LIVE_URL``, ``GEMINI_API_KEY``).
More come from the TOML file PROVIDERS_FILE (or the same TOML as the value of PROVIDERS_TOML, for
the Worker, which has no file system)::

    [providers.myco]
    kind = "openai"                       # openai | azure | gemini | simulator
    url = "wss://realtime.example.com/v1/realtime"
    auth = "api-key"                      # bearer | api-key | query:<parameter> | header:<name>
    key_env = "MYCO_KEY"                  # the operator key's environment variable
    protocol = "ga"                       # ga | beta
    aliases = { "my-model" = "myco-realtime-1" }
    quirks = []                           # deviations to normalise: "xai"
    title = "MyCo"                        # what messages call it (default: the name)
    docs = "https://realtime.example.com/docs"

Nothing here does I/O: the file's text and the environment are handed in.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

if TYPE_CHECKING:
    from .config import Settings

Kind = Literal["openai", "azure", "gemini", "simulator"]
Interface = Literal["ga", "beta"]
Quirk = Literal["xai"]

NAME_PATTERN = "[a-z0-9][a-z0-9_-]{0,31}"
_NAME = re.compile(NAME_PATTERN)
_AUTH = re.compile(r"bearer|api-key|query:[A-Za-z0-9_.-]{1,64}|header:[A-Za-z0-9-]{1,64}")

BUILTIN_NAMES: tuple[str, ...] = ("openai", "azure", "simulator", "xai", "gemini")
# OpenAI's realtime model names, and the model each built-in compatible provider serves for them, so a
# client written for OpenAI works unchanged with ``provider=`` alone.
OPENAI_MODELS = (
    "gpt-realtime",
    "gpt-realtime-mini",
    "gpt-4o-realtime-preview",
    "gpt-4o-mini-realtime-preview",
)


@dataclass(frozen=True, slots=True)
class ProviderSpec:
    """One provider: how it is reached, what it speaks, what its model names are."""

    name: str
    kind: Kind
    title: str  # what messages call it ("xAI")
    url: str | None  # the WebSocket endpoint; None: built from the provider's own settings
    auth: str  # bearer | api-key | query:<parameter> | header:<name>
    key_env: str | None  # where the operator's key comes from
    protocol: Interface
    aliases: Mapping[str, str] = field(default_factory=dict)
    quirks: tuple[Quirk, ...] = ()
    docs: str = ""
    builtin: bool = False
    key: str | None = field(default=None, repr=False, compare=False)  # the operator's key, if set

    @property
    def reached_by_url(self) -> bool:
        """Whether the provider is reached at :attr:`url` (every one but OpenAI, Azure and the simulator)."""
        return self.url is not None


class ProviderEntry(BaseModel):
    """One ``[providers.<name>]`` table of PROVIDERS_FILE."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Kind
    url: str | None = None
    auth: str = "bearer"
    key_env: str | None = Field(None, pattern="^[A-Za-z_][A-Za-z0-9_]*$")
    protocol: Interface = "ga"
    aliases: dict[str, str] = Field(default_factory=dict)
    quirks: tuple[Quirk, ...] = ()
    title: str | None = Field(None, min_length=1, max_length=64)
    docs: str = ""

    @field_validator("auth")
    @classmethod
    def _auth_form(cls, value: str) -> str:
        if _AUTH.fullmatch(value) is None:
            raise ValueError("auth must be bearer, api-key, query:<parameter> or header:<name>")
        return value

    @field_validator("url")
    @classmethod
    def _websocket_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("wss://", "ws://", "https://", "http://")):
            raise ValueError("url must be a ws(s):// or http(s):// URL")
        return value


class RegistryError(ValueError):
    """PROVIDERS_FILE does not describe providers the gateway can use."""


def builtin_providers(settings: Settings) -> dict[str, ProviderSpec]:
    """The built-in providers, as the settings configure them."""

    def secret(value: Any) -> str | None:
        return value.get_secret_value() if value is not None else None

    azure_protocol: Interface = settings.azure_openai_protocol or (
        "beta" if settings.azure_openai_api_version else "ga"
    )
    return {
        "openai": ProviderSpec(
            "openai",
            "openai",
            "OpenAI",
            None,
            "bearer",
            "OPENAI_API_KEY",
            settings.openai_protocol,
            docs="https://platform.openai.com/docs/guides/realtime",
            builtin=True,
            key=secret(settings.openai_api_key),
        ),
        "azure": ProviderSpec(
            "azure",
            "azure",
            "Azure OpenAI",
            None,
            "api-key",
            "AZURE_OPENAI_API_KEY",
            azure_protocol,
            docs="https://learn.microsoft.com/azure/ai-foundry/openai/how-to/realtime-audio-websockets",
            builtin=True,
            key=secret(settings.azure_openai_api_key),
        ),
        "simulator": ProviderSpec(
            "simulator", "simulator", "the simulator", None, "bearer", None, "ga", builtin=True
        ),
        "xai": ProviderSpec(
            "xai",
            "openai",
            "xAI",
            settings.xai_realtime_url,
            "bearer",
            "XAI_API_KEY",
            "ga",
            aliases=dict.fromkeys(OPENAI_MODELS, "grok-voice-latest"),
            quirks=("xai",),
            docs="https://docs.x.ai/docs/guides/voice/agent",
            builtin=True,
            key=secret(settings.xai_api_key),
        ),
        "gemini": ProviderSpec(
            "gemini",
            "gemini",
            "Gemini Live",
            settings.gemini_live_url,
            "header:x-goog-api-key",
            "GEMINI_API_KEY",
            "ga",
            aliases=_gemini_aliases(),
            docs="https://ai.google.dev/gemini-api/docs/live",
            builtin=True,
            key=secret(settings.gemini_api_key),
        ),
    }


def _gemini_aliases() -> dict[str, str]:
    from .translation.gemini import MODEL_ALIASES

    return dict(MODEL_ALIASES)


def parse_providers(text: str, environ: Mapping[str, Any]) -> dict[str, ProviderSpec]:
    """The providers a PROVIDERS_FILE's ``text`` defines; their keys from ``environ`` (by ``key_env``)."""
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise RegistryError(f"PROVIDERS_FILE is not valid TOML: {error}") from None
    tables = document.get("providers", {})
    unknown = set(document) - {"providers"}
    if unknown or not isinstance(tables, dict):
        raise RegistryError("PROVIDERS_FILE holds only [providers.<name>] tables")
    specs = {}
    for name, table in tables.items():
        if _NAME.fullmatch(name) is None:
            raise RegistryError(f"provider name {name!r}: lower-case letters, digits, '_' or '-', at most 32")
        if name in BUILTIN_NAMES:
            raise RegistryError(f"provider {name!r} is built in; give yours another name")
        try:
            entry = ProviderEntry.model_validate(table)
        except ValidationError as error:
            problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in error.errors())
            raise RegistryError(f"provider {name!r}: {problems}") from None
        if entry.kind != "simulator" and entry.url is None:
            raise RegistryError(f"provider {name!r}: a {entry.kind} provider needs a url")
        key = environ.get(entry.key_env) if entry.key_env else None
        specs[name] = ProviderSpec(
            name,
            entry.kind,
            entry.title or name,
            entry.url if entry.kind != "simulator" else None,
            entry.auth,
            entry.key_env,
            entry.protocol,
            aliases=entry.aliases,
            quirks=entry.quirks,
            docs=entry.docs,
            key=str(key) if key else None,
        )
    return specs


def key_names(text: str) -> list[str]:
    """The environment names a PROVIDERS_FILE's providers take their keys from (none if it is invalid:
    reading the settings then says why)."""
    try:
        tables = tomllib.loads(text).get("providers", {})
    except tomllib.TOMLDecodeError:
        return []
    if not isinstance(tables, dict):
        return []
    names = (table.get("key_env") for table in tables.values() if isinstance(table, dict))
    return [name for name in names if isinstance(name, str)]


def provider_table(registry: Mapping[str, ProviderSpec]) -> list[str]:
    """The README's provider table (Markdown lines), from the registry."""
    lines = [
        "| `provider=` | kind | speaks | operator key | reached at | key sent as | translation |",
        "|---|---|---|---|---|---|---|",
    ]
    for spec in registry.values():
        key = f"`{spec.key_env}`" if spec.key_env else "none"
        title = f"[{spec.title}]({spec.docs})" if spec.docs else spec.title
        lines.append(
            f"| `{spec.name}` | {title} ({spec.kind}) | {spec.protocol} | {key} | {_where(spec)} "
            f"| {_auth_words(spec)} | {_translation_words(spec)} |"
        )
    return lines


def _auth_words(spec: ProviderSpec) -> str:
    if spec.kind == "simulator":
        return "none"
    form, _, name = spec.auth.partition(":")
    return {
        "bearer": "`Authorization: Bearer`",
        "api-key": "`api-key` header",
        "header": f"`{name}` header",
        "query": f"`?{name}=`",
    }[form]


def _translation_words(spec: ProviderSpec) -> str:
    if spec.kind == "gemini":
        return (
            "Realtime GA (and beta) to and from Gemini Live's messages; what it cannot carry: "
            "docs/providers.md"
        )
    if "xai" in spec.quirks:
        return "xAI's deviations from GA normalised (docs/providers.md); beta clients translated too"
    if spec.kind == "simulator":
        return "none needed: it speaks GA and beta"
    return "beta <-> GA where the client speaks the other"


_BUILTIN_PLACES = {
    "openai": "`OPENAI_REALTIME_URL`, else `OPENAI_BASE_URL`",
    "azure": "`AZURE_OPENAI_ENDPOINT`",
    "simulator": "in process",
    "xai": "`XAI_REALTIME_URL`",
    "gemini": "`GEMINI_LIVE_URL`",
}


def _where(spec: ProviderSpec) -> str:
    if spec.builtin:
        return _BUILTIN_PLACES[spec.name]
    return "in process" if spec.url is None else f"`{spec.url}`"
