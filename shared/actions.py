"""What the relay core asks its adapter to do. Small immutable records, no behaviour."""

from __future__ import annotations

from dataclasses import dataclass

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
class RecordUsage:
    """Write the session's usage to the ledger: a checkpoint, or (``record.final``) how it ended."""

    record: UsageRecord


Action = SendToClient | SendToUpstream | CloseClient | CloseUpstream | RecordUsage
