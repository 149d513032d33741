"""Gateway settings: one model, built from a plain mapping.

``os.environ`` feeds it on the standalone server and the Worker's ``env`` on Cloudflare, so both
runtimes read the same names. Every limit is a named setting with a default and a line saying why.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

ProviderName = Literal["openai", "azure", "simulator"]
ProtocolName = Literal["ga", "beta"]
AuthMode = Literal["passthrough", "token", "both"]
PROVIDER_NAMES: tuple[str, ...] = ("openai", "azure", "simulator")

MiB = 1024 * 1024
# HMAC-SHA256 keys shorter than this are guessable; ``openssl rand -hex 32`` gives 64 characters.
MIN_GATEWAY_SECRET_CHARS = 32

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

    openai_base_url: str = Field(
        "https://api.openai.com/v1",
        alias="OPENAI_BASE_URL",
        description="OpenAI's API base: every OpenAI URL the gateway calls is derived from it "
        "(wss://…/v1/realtime, wss://…/v1/live/sessions, https://…/v1/realtime/client_secrets, …); "
        "http:// is allowed for local use.",
    )
    openai_realtime_url: str | None = Field(
        None,
        alias="OPENAI_REALTIME_URL",
        description="OpenAI's /v1/realtime WebSocket endpoint, when it is not OPENAI_BASE_URL's "
        "(wins for /v1/realtime only); ws:// is allowed for local use.",
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
    max_session_seconds: float = Field(
        3600.0,
        alias="MAX_SESSION_SECONDS",
        ge=0,
        description="Longest a session may last; then it gets an error event session_expired and a "
        "close 1008. A gateway token's own max_session_seconds applies too (the shorter wins). "
        "0: no limit.",
    )
    idle_timeout_seconds: float = Field(
        600.0,
        alias="IDLE_TIMEOUT_SECONDS",
        ge=0,
        description="A session whose client sends no frame for this long gets an error event "
        "idle_timeout and a close 1008 (provider events do not count). 0: no limit.",
    )
    max_sessions: int = Field(
        1000,
        alias="MAX_SESSIONS",
        ge=0,
        description="Sessions open at once in one gateway process (on Cloudflare: one isolate); the "
        "next one gets an error event too_many_sessions and a close 1013. 0: no limit.",
    )
    max_sessions_per_subject: int = Field(
        10,
        alias="MAX_SESSIONS_PER_SUBJECT",
        ge=0,
        description="Sessions open at once per gateway-token subject (per process or isolate); the "
        "next one gets too_many_sessions and a close 1013. Sessions without a token are not "
        "counted per subject. 0: no limit.",
    )
    sessions_per_minute_per_subject: int = Field(
        30,
        alias="SESSIONS_PER_MINUTE_PER_SUBJECT",
        ge=0,
        description="Sessions a gateway-token subject may open in any 60 s (sliding window, per "
        "process or isolate); the next one gets rate_limited and a close 1013. 0: no limit.",
    )
    ping_interval_seconds: float = Field(
        20.0,
        alias="PING_INTERVAL_SECONDS",
        ge=0,
        description="Standalone: a WebSocket ping goes to the client and to the provider when nothing "
        "has come from it for this long. 0: no pings. (The Worker cannot send pings.)",
    )
    ping_timeout_seconds: float = Field(
        20.0,
        alias="PING_TIMEOUT_SECONDS",
        gt=0,
        description="Standalone: a peer that does not answer a ping within this is dropped; the "
        "other side is told (upstream_unresponsive and 1014 to the client, 1001 to the provider).",
    )
    max_buffered_bytes: int = Field(
        1 * MiB,
        alias="MAX_BUFFERED_BYTES",
        gt=0,
        description="Standalone: bytes waiting to be written to one peer above which the gateway stops "
        "reading from the other (backpressure); nothing is dropped.",
    )
    shutdown_timeout_seconds: float = Field(
        10.0,
        alias="SHUTDOWN_TIMEOUT_SECONDS",
        gt=0,
        description="Standalone: on SIGTERM, how long sessions get to close (each client is told "
        "server_shutting_down and 1001) before the rest are dropped and the process exits.",
    )
    log_level: str = Field("INFO", alias="LOG_LEVEL", description="Python logging level.")

    gateway_secret: SecretStr | None = Field(
        None,
        alias="GATEWAY_SECRET",
        description="Signs and verifies gateway tokens (HMAC-SHA256), at least 32 characters "
        "(openssl rand -hex 32). When set, clients present a token instead of a provider key.",
    )
    gateway_admin_key: SecretStr | None = Field(
        None,
        alias="GATEWAY_ADMIN_KEY",
        description="Authorizes POST /v1/tokens, GET /debug/stats and GET /metrics (Authorization: "
        "Bearer <key>); unset: no one can mint tokens over HTTP, the stats are off, the metrics open.",
    )
    auth_mode: AuthMode | None = Field(
        None,
        alias="AUTH_MODE",
        description="passthrough (clients send provider keys, or the operator's key is used), token "
        "(every session needs a valid gateway token) or both (a token is verified, anything else "
        "is passed on as a provider key). Default: token when GATEWAY_SECRET is set, else passthrough.",
    )
    allowed_origins: tuple[str, ...] = Field(
        (),
        alias="ALLOWED_ORIGINS",
        description="Comma-separated browser origins (https://app.example.com, https://*.example.com) "
        "allowed to open a session; others get 403 before the upgrade. Empty: no check; *: any. "
        "Requests without Origin (non-browser clients) are always allowed.",
    )
    token_default_ttl_seconds: int = Field(
        600,
        alias="TOKEN_DEFAULT_TTL_SECONDS",
        gt=0,
        description="Lifetime of a minted token when the request names none. A token only has to be "
        "valid when the session opens; max_session_seconds limits the session itself.",
    )
    token_max_ttl_seconds: int = Field(
        3600,
        alias="TOKEN_MAX_TTL_SECONDS",
        gt=0,
        description="Longest lifetime POST /v1/tokens grants; longer requests are refused (400).",
    )

    usage_db: str = Field(
        "usage.sqlite3",
        alias="USAGE_DB",
        description="Standalone: the SQLite file of the usage ledger (a row per session and per "
        "response), created and migrated on start; empty: no ledger. On Cloudflare, USAGE_DB is the "
        "name of a D1 binding instead.",
    )
    usage_checkpoint_seconds: float = Field(
        60.0,
        alias="USAGE_CHECKPOINT_SECONDS",
        gt=0,
        description="How often an open session's usage so far is written to the ledger, so a crash "
        "loses at most this much.",
    )
    prices_file: str | None = Field(
        None,
        alias="PRICES_FILE",
        description="A TOML price table (USD per 1M tokens, per minute for GPT-Live); a model it names "
        "replaces the shipped price of that model. See docs/usage.md.",
    )
    log_format: Literal["text", "json"] = Field(
        "text",
        alias="LOG_FORMAT",
        description="text, or json: one JSON object a line (the per-session usage line carries the "
        "ledger's fields).",
    )
    budget_usd_per_subject_per_day: float = Field(
        0.0,
        alias="BUDGET_USD_PER_SUBJECT_PER_DAY",
        ge=0,
        description="Most a gateway-token subject may spend in a UTC day, counted from the usage ledger "
        "(standalone: this process's); a session that reaches it ends (budget_exceeded, close 1008), "
        "and the subject cannot start another that day. 0: no limit.",
    )

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

    @field_validator("allowed_origins", mode="before")
    @classmethod
    def _parse_origins(cls, value: Any) -> Any:
        items = value.split(",") if isinstance(value, str) else value
        # Origins compare case-insensitively, and a browser never sends a trailing slash.
        return tuple(item.strip().lower().rstrip("/") for item in items if item.strip())

    @field_validator("gateway_secret", mode="after")
    @classmethod
    def _long_enough(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < MIN_GATEWAY_SECRET_CHARS:
            raise ValueError(f"GATEWAY_SECRET must be at least {MIN_GATEWAY_SECRET_CHARS} characters")
        return value

    @model_validator(mode="after")
    def _auth_is_consistent(self) -> Settings:
        if self.auth_mode in ("token", "both") and self.gateway_secret is None:
            raise ValueError(f"AUTH_MODE={self.auth_mode} needs GATEWAY_SECRET to verify tokens")
        if self.token_default_ttl_seconds > self.token_max_ttl_seconds:
            raise ValueError("TOKEN_DEFAULT_TTL_SECONDS is longer than TOKEN_MAX_TTL_SECONDS")
        return self

    @property
    def effective_auth_mode(self) -> AuthMode:
        """AUTH_MODE, or its default: ``token`` with a GATEWAY_SECRET, else ``passthrough``."""
        if self.auth_mode is not None:
            return self.auth_mode
        return "token" if self.gateway_secret is not None else "passthrough"

    @field_validator(
        "openai_api_key",
        "openai_realtime_url",
        "azure_openai_api_key",
        "azure_openai_endpoint",
        "azure_openai_protocol",
        "gateway_secret",
        "gateway_admin_key",
        "auth_mode",
        "prices_file",
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
            elif isinstance(field.default, tuple):
                default = ",".join(field.default)
            else:
                default = str(field.default)
            rows.append((field.alias or "", default, field.description or ""))
        return rows
