"""The fleet store on Cloudflare: the ``FLEET`` Durable Object, one instance per subject.

Cloudflare runs the Worker in many isolates, each counting its own sessions; a Durable Object is
one instance for the whole deployment, whose calls are delivered one at a time, in order. So the
per-subject limits and revocations live in :class:`FleetObject`, an instance per subject
(``idFromName(subject)``: subjects never contend with each other), whose state is a
:class:`shared.fleet.SubjectLedger` kept in its storage. The Worker reaches it through
:class:`DurableObjectFleetStore`, the :class:`shared.fleet.FleetStore` that
:class:`shared.fleet.SessionGate` calls at admission, at the end, and on each session's
revocation poll, never per frame.

``wrangler.toml`` binds the class as ``FLEET`` (``[[durable_objects.bindings]]``, SQLite-backed:
``new_sqlite_classes``); ``worker/entry.py`` exports it. A Worker deployed without the binding
keeps per-isolate limits.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import Any

from workers import DurableObject

from shared.fleet import Slot, SubjectLedger, SubjectLimits, Verdict
from shared.revocation import Revocation

FLEET_BINDING = "FLEET"
LEDGER_KEY = "ledger"  # the one storage key of an instance: its ledger, as JSON


class FleetObject(DurableObject):
    """One subject's places, recent starts and revoked tokens, for the whole deployment.

    Its methods are called over RPC with plain values (strings, numbers, lists, dicts). Between
    the storage read and write of a call no other call is delivered (workerd's input gate), so
    each call is atomic, as a Redis script is.
    """

    def __init__(self, ctx: Any, env: Any) -> None:
        super().__init__(ctx, env)
        self._ledger: SubjectLedger | None = None  # loaded at the first call

    async def admit(self, slot_id: str, token_id: str | None, limits: dict[str, Any]) -> dict[str, object]:
        ledger = await self._load()
        verdict = ledger.admit(slot_id, token_id, time.time(), _limits(limits))
        await self._save()
        return verdict.to_wire()

    async def release(self, slot_id: str) -> None:
        ledger = await self._load()
        ledger.release(slot_id)
        await self._save()

    async def check(self, slot_ids: list[str], token_ids: list[str], slot_ttl: float) -> list[str]:
        ledger = await self._load()
        revoked = ledger.check(slot_ids, token_ids, time.time(), float(slot_ttl))
        await self._save()
        return revoked

    async def revoke(self, token_id: str, keep_until: float) -> None:
        ledger = await self._load()
        ledger.revoke(token_id, float(keep_until), time.time())
        await self._save()

    async def _load(self) -> SubjectLedger:
        if self._ledger is None:
            self._ledger = SubjectLedger.from_json(await self.ctx.storage.get(LEDGER_KEY))
        return self._ledger

    async def _save(self) -> None:
        assert self._ledger is not None
        if self._ledger.empty:  # nothing left to remember: the instance holds no storage
            await self.ctx.storage.delete(LEDGER_KEY)
        else:
            await self.ctx.storage.put(LEDGER_KEY, self._ledger.to_json())


def _limits(data: dict[str, Any]) -> SubjectLimits:
    return SubjectLimits(int(data["max_sessions"]), int(data["per_minute"]), float(data["slot_ttl"]))


class DurableObjectFleetStore:
    """:class:`shared.fleet.FleetStore` over the ``FLEET`` namespace: a stub per call, made in the
    request that calls (workerd ties I/O objects to the request that made them)."""

    name = "durable_object"

    def __init__(self, namespace: Any, timeout: float) -> None:
        self._namespace = namespace
        self.timeout = timeout

    def _stub(self, subject: str) -> Any:
        return self._namespace.get(self._namespace.idFromName(subject))

    async def admit(self, slot: Slot, limits: SubjectLimits) -> Verdict:
        wire = {
            "max_sessions": limits.max_sessions,
            "per_minute": limits.per_minute,
            "slot_ttl": limits.slot_ttl,
        }
        return Verdict.from_wire(await self._stub(slot.subject).admit(slot.slot_id, slot.token_id, wire))

    async def release(self, slot: Slot) -> None:
        await self._stub(slot.subject).release(slot.slot_id)

    async def check(self, slots: Sequence[Slot], limits: SubjectLimits) -> set[str]:
        by_subject: dict[str, list[Slot]] = {}
        for slot in slots:
            by_subject.setdefault(slot.subject, []).append(slot)
        answers = await asyncio.gather(
            *(
                self._stub(subject).check(
                    [slot.slot_id for slot in held if slot.slot_id is not None],
                    [slot.token_id for slot in held if slot.token_id is not None],
                    limits.slot_ttl,
                )
                for subject, held in by_subject.items()
            )
        )
        return {token_id for answer in answers for token_id in answer}

    async def revoke(self, revocation: Revocation) -> None:
        await self._stub(revocation.subject).revoke(revocation.token_id, revocation.keep_until)

    async def close(self) -> None:
        """Nothing to close: stubs are made per call."""
