"""What the realtime models cost, in USD, and the cost of a response or a Live session from it.

Token prices are per 1,000,000 tokens, by modality, with a cached rate for input. In OpenAI's usage
(``response.done``'s ``usage``) cached tokens are part of their modality's input tokens
(``input_token_details.text_tokens`` includes the cached text tokens), and are priced at the cached
rate instead: a response costs ``(text - cached_text) * input_text + cached_text * input_cached_text
+ ... + output_audio * output_audio``, over a million. GPT-Live models are billed by the session's
duration (``session.usage.updated``'s cumulative ``seconds``), per minute.

The defaults below were read on :data:`PRICES_AS_OF` from OpenAI's model pages
(:data:`PRICES_SOURCE`). ``PRICES_FILE`` (TOML, :func:`parse_prices`) overrides them: a model named
in the file replaces the shipped entry for that model, the others stay. A model with no entry has
no cost (``None``): it is never guessed from a similar name.
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, fields
from types import MappingProxyType

from .counts import TokenCounts

PRICES_AS_OF = "2026-12-03"
PRICES_SOURCE = "https://developers.openai.com/api/docs/models/<model> (each model's Pricing section)"

PER_TOKENS = 1_000_000  # token prices are per this many tokens


@dataclass(frozen=True, slots=True)
class Price:
    """One model's prices; a field left out (None) is a modality the model is not billed for here."""

    input_text: float | None = None
    input_cached_text: float | None = None
    input_audio: float | None = None
    input_cached_audio: float | None = None
    input_image: float | None = None
    input_cached_image: float | None = None
    output_text: float | None = None
    output_audio: float | None = None
    # GPT-Live: per minute of session duration, and per minute of paused inference (WebRTC standby).
    live_per_minute: float | None = None
    live_standby_per_minute: float | None = None

    def response_cost(self, tokens: TokenCounts) -> float | None:
        """USD for one response's usage; None when it used a modality this price does not cover."""
        total = 0.0
        for count, price in (
            (tokens.input_text - tokens.cached_text, self.input_text),
            (tokens.cached_text, self.input_cached_text),
            (tokens.input_audio - tokens.cached_audio, self.input_audio),
            (tokens.cached_audio, self.input_cached_audio),
            (tokens.input_image - tokens.cached_image, self.input_image),
            (tokens.cached_image, self.input_cached_image),
            (tokens.output_text, self.output_text),
            (tokens.output_audio, self.output_audio),
        ):
            if count:
                if price is None:
                    return None
                total += count * price
        return total / PER_TOKENS

    def live_cost(self, seconds: float, paused_seconds: float = 0.0) -> float | None:
        """USD for a Live session's cumulative billable ``seconds`` (``paused_seconds`` of them at the
        standby rate, when the model has one); None when the model has no per-minute price."""
        if self.live_per_minute is None:
            return None
        standby = self.live_standby_per_minute
        if standby is None or not paused_seconds:
            return seconds * self.live_per_minute / 60
        active = max(0.0, seconds - paused_seconds)
        return (active * self.live_per_minute + paused_seconds * standby) / 60


PRICE_FIELDS: tuple[str, ...] = tuple(field.name for field in fields(Price))

_GPT_REALTIME = Price(4.0, 0.4, 32.0, 0.4, 5.0, 0.5, 16.0, 64.0)
_GPT_REALTIME_2 = Price(4.0, 0.4, 32.0, 0.4, 5.0, 0.5, 24.0, 64.0)
_GPT_REALTIME_MINI = Price(0.6, 0.06, 10.0, 0.3, 0.8, 0.08, 2.4, 20.0)
_GPT_4O_REALTIME_PREVIEW = Price(5.0, 2.5, 40.0, 2.5, None, None, 20.0, 80.0)
_GPT_4O_MINI_REALTIME_PREVIEW = Price(0.6, 0.3, 10.0, 0.3, None, None, 2.4, 20.0)
_GPT_LIVE = Price(live_per_minute=0.05, live_standby_per_minute=0.02)

# Read 2026-12-03 from developers.openai.com/api/docs/models/<model>. Snapshots are listed under the
# price of the model page that names them. The retired previews keep their last published prices
# (MODEL_ALIASES sends their names to the GA successors by default). Not priced here: transcription
# and translation models (gpt-live-transcribe, gpt-realtime-whisper, gpt-realtime-translate), billed
# by audio minute, and a realtime session's input transcription, which OpenAI bills apart from
# response.done's usage.
SHIPPED_PRICES: Mapping[str, Price] = MappingProxyType(
    {
        "gpt-realtime": _GPT_REALTIME,
        "gpt-realtime-2025-08-28": _GPT_REALTIME,
        "gpt-realtime-1.5": _GPT_REALTIME,
        "gpt-realtime-2": _GPT_REALTIME_2,
        "gpt-realtime-2.1": _GPT_REALTIME_2,
        "gpt-realtime-mini": _GPT_REALTIME_MINI,
        "gpt-realtime-mini-2025-10-06": _GPT_REALTIME_MINI,
        "gpt-realtime-mini-2025-12-15": _GPT_REALTIME_MINI,
        "gpt-realtime-2.1-mini": _GPT_REALTIME_MINI,
        "gpt-4o-realtime-preview": _GPT_4O_REALTIME_PREVIEW,
        "gpt-4o-realtime-preview-2024-10-01": _GPT_4O_REALTIME_PREVIEW,
        "gpt-4o-realtime-preview-2024-12-17": _GPT_4O_REALTIME_PREVIEW,
        "gpt-4o-realtime-preview-2025-06-03": _GPT_4O_REALTIME_PREVIEW,
        "gpt-4o-mini-realtime-preview": _GPT_4O_MINI_REALTIME_PREVIEW,
        "gpt-4o-mini-realtime-preview-2024-12-17": _GPT_4O_MINI_REALTIME_PREVIEW,
        "gpt-live-1": _GPT_LIVE,
        "gpt-live-1.1": _GPT_LIVE,
    }
)


class PriceTable:
    """The prices in force: the shipped ones, with PRICES_FILE's models in place of theirs."""

    def __init__(self, prices: Mapping[str, Price] = SHIPPED_PRICES) -> None:
        self._prices = dict(prices)

    def get(self, model: str) -> Price | None:
        return self._prices.get(model)

    def models(self) -> list[str]:
        return sorted(self._prices)

    @classmethod
    def with_overrides(cls, toml_text: str | None) -> PriceTable:
        """The shipped prices, with the models of ``toml_text`` (PRICES_FILE's content) replacing theirs."""
        prices = dict(SHIPPED_PRICES)
        if toml_text is not None:
            prices.update(parse_prices(toml_text))
        return cls(prices)


class PricesError(ValueError):
    """PRICES_FILE is not a valid price table: the message says where."""


def parse_prices(text: str) -> dict[str, Price]:
    """The models of a PRICES_FILE: ``[models."<name>"]`` tables of the :class:`Price` fields.

    Unknown keys, negative or non-numeric prices, and a model with no price at all are refused, so a
    typo fails at start-up rather than pricing a modality at nothing.
    """
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise PricesError(f"not valid TOML: {error}") from None
    unknown = set(document) - {"models"}
    if unknown:
        raise PricesError(f'unknown top-level keys {sorted(unknown)}: prices go under [models."<name>"]')
    models = document.get("models", {})
    if not isinstance(models, dict):
        raise PricesError('"models" must be a table of [models."<name>"] tables')
    prices: dict[str, Price] = {}
    for name, entry in models.items():
        if not isinstance(entry, dict):
            raise PricesError(f'models."{name}" must be a table')
        wrong = sorted(set(entry) - set(PRICE_FIELDS))
        if wrong:
            raise PricesError(f'models."{name}": unknown keys {wrong}; known: {", ".join(PRICE_FIELDS)}')
        for key, value in entry.items():
            if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
                raise PricesError(f'models."{name}".{key} must be a number (USD)')
            if value < 0:
                raise PricesError(f'models."{name}".{key} must not be negative')
        if not entry:
            raise PricesError(f'models."{name}" has no price')
        prices[name] = Price(**{key: float(value) for key, value in entry.items()})
    return prices
