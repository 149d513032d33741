"""Gateway settings: one model, built from a plain mapping.

``os.environ`` feeds it on the standalone server and the Worker's ``env`` on Cloudflare, so both
runtimes read the same names. Every limit is a named setting with a default and a line saying why.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

ProviderName = Literal["openai", "azure", "simulator"]
ProtocolName = Literal["ga", "beta"]
PROVIDER_NAMES: tuple[str, ...] = ("openai", "azure", "simulator")

MiB = 1024 * 1024

# OpenAI retired the Realtime beta models in 2026; a client asking for one gets its GA successor.
RETIRED_MODEL_SUCCESSORS: dict[str, str] = {
    "gpt-4o-realtime-preview": "gpt-realtime",
    "gpt-4o-realtime-preview-2024-10-01": "gpt-realtime",
    "gpt-4o-realtime-preview-2024-12-17": "gpt-realtime",
    "gpt-4o-realtime-preview-2025-06-03": "gpt-realtime",
    "gpt-4o-mini-realtime-preview": "gpt-realtime-mini",
    "gpt-4o-mini-realtime-preview-2024-12-17": "gpt-realtime-mini",
}


def format_aliases(aliases: Mapping[str, str]) -> str:
    return ",".join(f"{name}={target}" for name, target in aliases.items())


class Settings(BaseModel):
    """What an operator configures. Field aliases are the environment variable names."""

    model_config = ConfigDict(frozen=True, populate_by_name=True, extra="ignore")

    default_provider: ProviderName = Field(
        "openai", alias="DEFAULT_PROVIDER", description="Provider used when the client names none."
    )
    default_model: str = Field(
        "gpt-4o-realtime-preview",
        alias="DEFAULT_MODEL",
        description="Model used when the client names none.",
    )

    openai_realtime_url: str = Field(
        "wss://api.openai.com/v1/realtime",
        alias="OPENAI_REALTIME_URL",
        description="OpenAI's realtime endpoint; ws:// is allowed for local use.",
    )
    openai_api_key: SecretStr | None = Field(
        None, alias="OPENAI_API_KEY", description="Used when a client sends no key of its own."
    )
    openai_protocol: ProtocolName = Field(
        "ga",
        alias="OPENAI_PROTOCOL",
        description="The interface OpenAI's endpoint speaks: ga (OpenAI retired beta in 2026) or beta.",
    )
    model_aliases: dict[str, str] = Field(
        RETIRED_MODEL_SUCCESSORS,
        alias="MODEL_ALIASES",
        description="name=target pairs, comma-separated, applied to the model a client asks for "
        "(not to Azure deployment names). The default maps the retired preview models to their "
        "GA successors; an empty value turns aliasing off.",
    )

    azure_openai_endpoint: str | None = Field(
        None,
        alias="AZURE_OPENAI_ENDPOINT",
        description="https://{resource}.openai.azure.com (ws:// or http:// allowed for local use).",
    )
    azure_openai_api_key: SecretStr | None = Field(
        None,
        alias="AZURE_OPENAI_API_KEY",
        description="Used when a client sends no key of its own.",
    )
    azure_openai_api_version: str | None = Field(
        None,
        alias="AZURE_OPENAI_API_VERSION",
        description="When set, Azure is reached on the preview path /openai/realtime?api-version=.",
    )
    azure_openai_protocol: ProtocolName | None = Field(
        None,
        alias="AZURE_OPENAI_PROTOCOL",
        description="The interface the Azure deployment speaks; default: beta on the preview path "
        "(AZURE_OPENAI_API_VERSION set), else ga.",
    )

    max_client_message_bytes: int = Field(
        8 * MiB,
        alias="MAX_CLIENT_MESSAGE_BYTES",
        gt=0,
        description="Largest client event relayed; bigger ones get an error event and are dropped. "
        "A frame over twice this closes the connection (1009) before it is buffered whole.",
    )
    max_upstream_message_bytes: int = Field(
        64 * MiB,
        alias="MAX_UPSTREAM_MESSAGE_BYTES",
        gt=0,
        description="Largest provider event accepted; the provider's own limit is far below this.",
    )
    max_pending_client_messages: int = Field(
        512,
        alias="MAX_PENDING_CLIENT_MESSAGES",
        gt=0,
        description="Client events held while the provider connection opens (about 50 s of audio).",
    )
    max_pending_client_bytes: int = Field(
        16 * MiB,
        alias="MAX_PENDING_CLIENT_BYTES",
        gt=0,
        description="Bytes of client events held while the provider connection opens.",
    )
    upstream_connect_timeout_seconds: float = Field(
        10.0,
        alias="UPSTREAM_CONNECT_TIMEOUT_SECONDS",
        gt=0,
        description="How long the provider handshake may take before the client is told it failed.",
    )
    simulator_pace: float = Field(
        1.0,
        alias="SIMULATOR_PACE",
        ge=0,
        description="Simulator streaming speed: 1.0 paces deltas like a real provider, "
        "0 sends them all at once (tests).",
    )
    log_level: str = Field("INFO", alias="LOG_LEVEL", description="Python logging level.")

    @field_validator("model_aliases", mode="before")
    @classmethod
    def _parse_aliases(cls, value: Any) -> Any:
        if not isinstance(value, str):
            return value
        aliases = {}
        for pair in filter(None, (item.strip() for item in value.split(","))):
            name, equals, target = pair.partition("=")
            if not equals or not name.strip() or not target.strip():
                raise ValueError(f"expected name=target, got {pair!r}")
            aliases[name.strip()] = target.strip()
        return aliases

    @field_validator(
        "openai_api_key",
        "azure_openai_api_key",
        "azure_openai_endpoint",
        "azure_openai_protocol",
        mode="before",
    )
    @classmethod
    def _empty_is_unset(cls, value: Any) -> Any:
        # An exported-but-empty variable (``OPENAI_API_KEY=``) means "not configured".
        return None if value == "" else value

    @classmethod
    def names(cls) -> list[str]:
        """Every setting's name, as it is spelled in the environment."""
        return [field.alias for field in cls.model_fields.values() if field.alias]

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> Settings:
        """Settings from ``os.environ``, a Worker ``env`` copied into a dict, or a test dict."""
        return cls.model_validate({name: values[name] for name in cls.names() if name in values})

    @classmethod
    def documentation(cls) -> list[tuple[str, str, str]]:
        """(name, default, description) of every setting, for the README and ``--help``."""
        rows = []
        for field in cls.model_fields.values():
            if field.default is None:
                default = ""
            elif isinstance(field.default, dict):
                default = format_aliases(field.default)
            else:
                default = str(field.default)
            rows.append((field.alias or "", default, field.description or ""))
        return rows
