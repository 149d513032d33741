"""Gateway settings: one model, built from a plain mapping.

``os.environ`` feeds it on the standalone server and the Worker's ``env`` on Cloudflare, so both
runtimes read the same names. Every limit is a named setting with a default and a line saying why.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    SecretStr,
    ValidationInfo,
    field_validator,
    model_validator,
)

from .registry import (
    BUILTIN_NAMES,
    NAME_PATTERN,
    ProviderSpec,
    RegistryError,
    builtin_providers,
    key_names,
    parse_providers,
)

ProtocolName = Literal["ga", "beta"]
AuthMode = Literal["passthrough", "token", "both"]
FailureMode = Literal["open", "closed"]
# The built-in providers; PROVIDERS_FILE adds more (``Settings.registry`` has them all).
PROVIDER_NAMES: tuple[str, ...] = BUILTIN_NAMES
GEMINI_LIVE_URL = (
    "wss://generativelanguage.googleapis.com/ws/"
    "google.ai.generativelanguage.v1beta.GenerativeService.BidiGenerateContent"
)

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

    # protected_namespaces: pydantic before 2.10 reserves every ``model_`` name (``model_aliases``).
    model_config = ConfigDict(frozen=True, populate_by_name=True, extra="ignore", protected_namespaces=())

    default_provider: str = Field(
        "openai",
        alias="DEFAULT_PROVIDER",
        pattern=f"^{NAME_PATTERN}$",
        description="Provider used when the client names none (a built-in one or one of PROVIDERS_FILE).",
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

    xai_api_key: SecretStr | None = Field(
        None, alias="XAI_API_KEY", description="xAI's key, used when a client sends no key of its own."
    )
    xai_realtime_url: str = Field(
        "wss://api.x.ai/v1/realtime",
        alias="XAI_REALTIME_URL",
        description="xAI's Grok Voice Agent WebSocket endpoint (provider=xai); ws:// is allowed for "
        "local use.",
    )
    gemini_api_key: SecretStr | None = Field(
        None,
        alias="GEMINI_API_KEY",
        description="Google's Gemini API key (provider=gemini), used when a client sends no key of its own.",
    )
    gemini_live_url: str = Field(
        GEMINI_LIVE_URL,
        alias="GEMINI_LIVE_URL",
        description="Gemini Live's BidiGenerateContent WebSocket endpoint (provider=gemini).",
    )
    gemini_input_rate: int = Field(
        16000,
        alias="GEMINI_INPUT_RATE",
        description="The rate client audio (24 kHz PCM16) reaches Gemini at: 16000 (resampled, Gemini's "
        "native input rate) or 24000 (sent as it came, declared in its MIME type).",
    )
    providers_file: str | None = Field(
        None,
        alias="PROVIDERS_FILE",
        description="A TOML file of more providers ([providers.<name>]: kind, url, auth, key_env, protocol, "
        "aliases; see docs/providers.md). Read once at start.",
    )
    providers_toml: str | None = Field(
        None,
        alias="PROVIDERS_TOML",
        description="The same TOML as PROVIDERS_FILE's, as the value itself (the Worker has no files).",
    )

    fallback_providers: dict[str, tuple[str, ...]] = Field(
        {},
        alias="FALLBACK_PROVIDERS",
        description="provider=next|next pairs, comma-separated (openai=azure|xai,azure=openai): when a "
        "provider fails before its first event (unreachable, 5xx, 429, timeout; not 401/403/404), the "
        "next is tried with the operator's key for it, within UPSTREAM_CONNECT_TIMEOUT_SECONDS overall "
        "(/v1/realtime only).",
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
    max_http_body_bytes: int = Field(
        1 * MiB,
        alias="MAX_HTTP_BODY_BYTES",
        gt=0,
        description="Largest request body the HTTP endpoints relay (client secrets, SDP offers, call "
        "control); a bigger one gets 413. An SDP offer is a few KiB.",
    )
    upstream_http_timeout_seconds: float = Field(
        30.0,
        alias="UPSTREAM_HTTP_TIMEOUT_SECONDS",
        gt=0,
        description="How long the provider may take to answer a relayed HTTP request (and between two "
        "reads of its answer) before the client gets 504 upstream_timeout.",
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
        description="Sessions open at once per gateway-token subject, across the fleet with REDIS_URL "
        "(on Cloudflare: the FLEET Durable Object), else per process; the next one gets "
        "too_many_sessions and a close 1013. Sessions without a token are not counted per subject. "
        "0: no limit.",
    )
    sessions_per_minute_per_subject: int = Field(
        30,
        alias="SESSIONS_PER_MINUTE_PER_SUBJECT",
        ge=0,
        description="Sessions a gateway-token subject may open in any 60 s (sliding window; across "
        "the fleet as MAX_SESSIONS_PER_SUBJECT); the next one gets rate_limited and a close 1013. "
        "0: no limit.",
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

    # Fleet-wide limits (shared.fleet): Redis on VMs, the FLEET Durable Object on Cloudflare.
    redis_url: SecretStr | None = Field(
        None,
        alias="REDIS_URL",
        description="Standalone: redis://[:password@]host:port/db. When set, MAX_SESSIONS_PER_SUBJECT, "
        "SESSIONS_PER_MINUTE_PER_SUBJECT and token revocation hold across every process and machine "
        "using this Redis. A secret (it may hold a password).",
    )
    redis_failure_mode: FailureMode = Field(
        "open",
        alias="REDIS_FAILURE_MODE",
        description="When Redis (on Cloudflare: the FLEET Durable Object) is unreachable or slow: open "
        "(serve with per-process limits, logged and counted in /debug/stats) or closed (refuse new "
        "sessions with a gateway token: fleet_unavailable and a close 1013).",
    )
    redis_timeout_seconds: float = Field(
        0.25,
        alias="REDIS_TIMEOUT_SECONDS",
        gt=0,
        description="Longest any Redis call may take (connect included) before it counts as a failure.",
    )
    redis_key_prefix: str = Field(
        "rgw:",
        alias="REDIS_KEY_PREFIX",
        description="Prefix of every key the gateway writes to Redis (several deployments can share "
        "one Redis with different prefixes).",
    )
    durable_object_timeout_seconds: float = Field(
        2.0,
        alias="DURABLE_OBJECT_TIMEOUT_SECONDS",
        gt=0,
        description="Worker: longest a call to the FLEET Durable Object may take before it counts as a "
        "failure (REDIS_FAILURE_MODE then decides, as for Redis).",
    )
    fleet_slot_ttl_seconds: float = Field(
        30.0,
        alias="FLEET_SLOT_TTL_SECONDS",
        gt=0,
        description="A session's place in the fleet-wide per-subject count expires this long after "
        "its process last refreshed it (every REVOCATION_POLL_SECONDS), so a process that dies "
        "gives its places back within this. At least 3 x REVOCATION_POLL_SECONDS.",
    )
    revocation_poll_seconds: float = Field(
        1.0,
        alias="REVOCATION_POLL_SECONDS",
        gt=0,
        description="How often open sessions are checked against revoked tokens (and their "
        "fleet-wide places refreshed); a revoked token's sessions end within about this long.",
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

    @field_validator("gemini_input_rate")
    @classmethod
    def _gemini_rate(cls, value: int) -> int:
        if value not in (16000, 24000):
            raise ValueError("GEMINI_INPUT_RATE must be 16000 or 24000")
        return value

    @field_validator("fallback_providers", mode="before")
    @classmethod
    def _parse_fallbacks(cls, value: Any) -> Any:
        if not isinstance(value, str):
            return value
        chains: dict[str, tuple[str, ...]] = {}
        for pair in filter(None, (item.strip() for item in value.split(","))):
            name, equals, chain = pair.partition("=")
            targets = tuple(filter(None, (target.strip() for target in chain.split("|"))))
            if not equals or not name.strip() or not targets:
                raise ValueError(f"expected provider=next|next, got {pair!r}")
            chains[name.strip()] = targets
        return chains

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
        if self.fleet_slot_ttl_seconds < 3 * self.revocation_poll_seconds:
            # A place is refreshed every poll: a TTL this short would let live places expire.
            raise ValueError("FLEET_SLOT_TTL_SECONDS must be at least 3 x REVOCATION_POLL_SECONDS")
        return self

    _registry: dict[str, ProviderSpec] = PrivateAttr(default_factory=dict)

    @model_validator(mode="after")
    def _build_registry(self, info: ValidationInfo) -> Settings:
        environ = (info.context or {}).get("environ", {})
        registry = builtin_providers(self)
        for text in self._provider_documents():
            try:
                registry.update(parse_providers(text, environ))
            except RegistryError as error:
                raise ValueError(str(error)) from None
        if self.default_provider not in registry:
            raise ValueError(
                f"DEFAULT_PROVIDER={self.default_provider!r} is no provider: use one of {', '.join(registry)}"
            )
        named = {name for chain in self.fallback_providers.items() for name in (chain[0], *chain[1])}
        unknown = sorted(named - set(registry))
        if unknown:
            raise ValueError(f"FALLBACK_PROVIDERS names no such provider: {', '.join(unknown)}")
        self._registry = registry
        return self

    def _provider_documents(self) -> list[str]:
        documents = []
        if self.providers_file is not None:
            try:
                with open(self.providers_file, encoding="utf-8") as file:
                    documents.append(file.read())
            except OSError as error:
                raise ValueError(f"PROVIDERS_FILE: {error.strerror}") from None
        if self.providers_toml is not None:
            documents.append(self.providers_toml)
        return documents

    @property
    def registry(self) -> dict[str, ProviderSpec]:
        """Every provider a client may name: the built-in ones, then PROVIDERS_FILE's."""
        return self._registry

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
        "xai_api_key",
        "gemini_api_key",
        "providers_file",
        "providers_toml",
        "gateway_secret",
        "gateway_admin_key",
        "auth_mode",
        "redis_url",
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
    def provider_key_names(cls, values: Mapping[str, Any]) -> list[str]:
        """The names PROVIDERS_TOML's providers read their keys from (``key_env``), for a runtime that
        reads only the names it is told (the Worker's ``env``)."""
        text = values.get("PROVIDERS_TOML")
        return key_names(text) if isinstance(text, str) else []

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> Settings:
        """Settings from ``os.environ``, a Worker ``env`` copied into a dict, or a test dict."""
        known = {name: values[name] for name in cls.names() if name in values}
        # The environment goes along for the operator keys PROVIDERS_FILE names (``key_env``).
        return cls.model_validate(known, context={"environ": values})

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
