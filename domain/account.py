"""Accounts: owners, delegates (مفوض) and agents (وكيل), their credentials and grants.

The credential on every request is checked against the account's current one, so a
password change by a thief locks the owner out — and shows on the record (seed 001).
"""

from __future__ import annotations

from datetime import date
from typing import Any, ClassVar

from domain.streams import Folds, Stream


def _registered(a: Account, p: dict[str, Any], _: Stream.Event) -> None:
    a.account_id = p["account_id"]
    a.role = p["role"]
    a.email = p["email"]
    a.credential_id = p["credential_id"]


def _granted(a: Account, p: dict[str, Any], e: Stream.Event) -> None:
    a.grants[p["establishment_id"]] = {
        "owner_account_id": p["owner_account_id"], "services": p["services"],
        "valid_from": p["valid_from"], "valid_until": p["valid_until"],
        "confirmed": False, "revoked": False, "event_id": e.event_id,
    }


def _confirmed(a: Account, p: dict[str, Any], _: Stream.Event) -> None:
    a.grants[p["establishment_id"]]["confirmed"] = True


def _revoked(a: Account, p: dict[str, Any], _: Stream.Event) -> None:
    a.grants[p["establishment_id"]]["revoked"] = True


def _appointed(a: Account, p: dict[str, Any], e: Stream.Event) -> None:
    a.principals[p["owner_account_id"]] = e.event_id


def _password(a: Account, p: dict[str, Any], _: Stream.Event) -> None:
    a.credential_id = p["new_credential_id"]


def _email(a: Account, p: dict[str, Any], _: Stream.Event) -> None:
    a.email = p["email"]


class Account(Stream):
    def __init__(self) -> None:
        super().__init__()
        self.account_id = ""
        self.role = ""
        self.email = ""
        self.credential_id = ""
        self.grants: dict[str, dict[str, Any]] = {}
        self.principals: dict[str, str] = {}

    def grant_problem(self, establishment_id: str, service: str, today: date) -> str | None:
        """The rule a delegate's grant breaks for this service, or None when it holds."""
        grant = self.grants.get(establishment_id)
        if grant is None:
            return "AUTH_DELEGATE_NO_GRANT"
        if grant["revoked"]:
            return "AUTH_DELEGATE_REVOKED"
        if not grant["confirmed"]:
            return "AUTH_DELEGATE_UNCONFIRMED"
        if grant["valid_from"] and today < date.fromisoformat(grant["valid_from"]):
            return "AUTH_DELEGATE_NOT_YET_VALID"
        if grant["valid_until"] and today > date.fromisoformat(grant["valid_until"]):
            return "AUTH_DELEGATE_EXPIRED"
        if service not in grant["services"]:
            return "AUTH_DELEGATE_SERVICE"
        return None

    FOLDS: ClassVar[Folds] = {
        "account.registered": _registered,
        "account.delegation_granted": _granted,
        "account.delegation_confirmed": _confirmed,
        "account.delegation_revoked": _revoked,
        "account.agent_appointed": _appointed,
        "account.password_changed": _password,
        "account.email_changed": _email,
    }


class Unattributed(Stream):
    """Refusals whose establishment and actor are both unknown: still on the record."""

    FOLDS: ClassVar[Folds] = {}
