"""The records of ``zc.agreements`` and ``zc.sharing-audit``: how grants, revocations and
releases are written, read back and folded into what is in force.

``zc.agreements`` is compacted by agreement uid: the latest record of an agreement says
whether it is granted (with its document) or revoked. The audit topic keeps everything.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sharing.agreements import Agreement, AgreementError, parse_agreement
from sharing.sharing_engine import ReleaseTally


@dataclass(frozen=True)
class AgreementState:
    """An agreement's latest record: granted (``agreement`` set) or revoked."""

    uid: str
    agreement: Agreement | None
    at: str
    revoked_reason: str | None = None
    refused: str | None = None  # why a granted document did not load (it grants nothing)


def grant_record(agreement: Agreement, now: datetime) -> bytes:
    return _json(
        {"action": "grant", "uid": agreement.uid, "at": now.isoformat(), "document": agreement.document}
    )


def revoke_record(uid: str, reason: str, now: datetime) -> bytes:
    return _json({"action": "revoke", "uid": uid, "at": now.isoformat(), "reason": reason})


def read_agreement_record(
    key: bytes | None, value: bytes | None, indicators: Iterable[str]
) -> AgreementState:
    """One record of ``zc.agreements``; a document that no longer loads is kept as refused."""
    uid = (key or b"").decode("utf-8", errors="replace")
    try:
        record: dict[str, Any] = json.loads(value or b"")
    except ValueError:
        return AgreementState(uid, None, "", refused="the record is not JSON")
    at = str(record.get("at", ""))
    if record.get("action") == "revoke":
        return AgreementState(uid, None, at, revoked_reason=str(record.get("reason", "")))
    try:
        return AgreementState(uid, parse_agreement(record.get("document"), indicators), at)
    except AgreementError as exc:
        return AgreementState(uid, None, at, refused=str(exc))


def audit_release(agreement: Agreement, tally: ReleaseTally, now: datetime, key_version: int) -> bytes:
    """What one agreement released since the previous audit record, and under which pseudonym
    key (sharing/key_history.py)."""
    return _json(
        {
            "event": "release",
            "party": agreement.party,
            "agreement": agreement.uid,
            "version": agreement.version,
            "records": tally.records,
            "items": tally.items,
            "secret": tally.secret,
            "first_time": tally.first_time.isoformat() if tally.first_time else None,
            "last_time": tally.last_time.isoformat() if tally.last_time else None,
            "pseudonym_key": key_version,
            "at": now.isoformat(),
        }
    )


def audit_change(
    event: str, party: str, uid: str, version: str | None, now: datetime, reason: str = ""
) -> bytes:
    """A grant, revocation, expiry or refusal, as the audit keeps it."""
    return _json(
        {
            "event": event,
            "party": party,
            "agreement": uid,
            "version": version,
            "reason": reason,
            "at": now.isoformat(),
        }
    )


def _json(value: dict[str, Any]) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()
