"""What the relay core asks its adapter to do. Small immutable records, no behaviour."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .providers import UpstreamRequest

from .usage.record import UsageRecord


@dataclass(frozen=True, slots=True)
class SendToClient:
    data: str | bytes


@dataclass(frozen=True, slots=True)
class SendToUpstream:
    data: str | bytes


@dataclass(frozen=True, slots=True)
class CloseClient:
    code: int
    reason: str


@dataclass(frozen=True, slots=True)
class CloseUpstream:
    """Close the provider socket, or abandon it if it is still connecting."""

    code: int
    reason: str


@dataclass(frozen=True, slots=True)
class ReconnectUpstream:
    """Move to a new provider connection (Gemini's session resumption, or the next provider after a
    failure at connect): open ``request``, send ``first_frame`` (if any) first on it, then every
    ``SendToUpstream`` that follows (held until it opens); close or abandon the old connection
    (1000) and report nothing more from it. Its opening or failure is reported as the first's."""

    request: UpstreamRequest
    first_frame: str | None = None


@dataclass(frozen=True, slots=True)
class RecordUsage:
    """Write the session's usage to the ledger: a checkpoint, or (``record.final``) how it ended."""

    record: UsageRecord


Action = SendToClient | SendToUpstream | CloseClient | CloseUpstream | ReconnectUpstream | RecordUsage
