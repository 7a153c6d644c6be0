"""Accounts and delegation: registration, grants to delegates, agents, logins.

The owner grants a delegate a chosen set of services for an establishment, optionally
dated; the delegate confirms; the grant holds until revoked or expired
(mlsd.gov.sa/en/queries/establishment-permissions-management, official).
"""

from __future__ import annotations

from domain.account import Account
from domain.decision import Decision
from domain.identifiers import account_stream
from domain.refusals import refuse, require

PORTAL_ROLES = frozenset({"owner", "delegate", "agent"})


def register(d: Decision) -> None:
    actor = d.request.actor
    require(actor.role in PORTAL_ROLES, "AUTH_ROLE_MISMATCH",
            f"a {actor.role} is provisioned, not registered")
    if d.request.service == "account.owner_registered":
        require(actor.role == "owner", "AUTH_ROLE_MISMATCH", "owners register as owners")
    require(d.account(actor.account_id) is None, "ACCOUNT_EXISTS",
            f"account {actor.account_id} exists")
    d.open(Account, account_stream(actor.account_id), "account.registered",
           {"account_id": actor.account_id, "role": actor.role, "email": d.payload.email,
            "credential_id": d.request.auth.credential_id})


def _delegate(d: Decision, account_id: str) -> Account:
    account = d.account(account_id)
    if account is None or account.role != "delegate":
        refuse("ACCOUNT_NOT_DELEGATE", f"{account_id} is not a registered delegate")
    return account


def grant(d: Decision) -> None:
    p = d.payload
    delegate = _delegate(d, p.delegate_account_id)
    d.record(delegate, "account.delegation_granted",
             {"owner_account_id": d.request.actor.account_id,
              "establishment_id": d.request.establishment_id, "services": p.services,
              "valid_from": p.valid_from.isoformat() if p.valid_from else None,
              "valid_until": p.valid_until.isoformat() if p.valid_until else None})


def confirm(d: Decision) -> None:
    delegate = _delegate(d, d.request.actor.account_id)
    number = d.request.establishment_id or ""
    grant_ = delegate.grants.get(number)
    require(grant_ is not None and not grant_["revoked"], "AUTH_DELEGATE_NO_GRANT",
            f"no grant for {number} to confirm")
    d.record(delegate, "account.delegation_confirmed", {"establishment_id": number})


def revoke(d: Decision) -> None:
    delegate = _delegate(d, d.payload.delegate_account_id)
    number = d.request.establishment_id or ""
    grant_ = delegate.grants.get(number)
    require(grant_ is not None and not grant_["revoked"], "AUTH_DELEGATE_NO_GRANT",
            f"{delegate.account_id} holds no grant for {number}")
    d.record(delegate, "account.delegation_revoked", {"establishment_id": number})


def appoint_agent(d: Decision) -> None:
    agent_id = d.payload.agent_account_id
    agent = d.account(agent_id)
    if agent is None or agent.role != "agent":
        refuse("ACCOUNT_NOT_AGENT", f"{agent_id} is not a registered agent")
    d.record(agent, "account.agent_appointed", {"owner_account_id": d.request.actor.account_id})


def _own_account(d: Decision) -> Account:
    account = d.account(d.request.actor.account_id)
    assert account is not None, "authorize() admits only registered accounts here"
    return account


def login(d: Decision) -> None:
    d.record(_own_account(d), "account.logged_in", {})


def login_failed(d: Decision) -> None:
    d.record(_own_account(d), "account.login_failed", {"reason": d.payload.reason})


def password_changed(d: Decision) -> None:
    d.record(_own_account(d), "account.password_changed",
             {"new_credential_id": d.payload.new_credential_id})


def email_changed(d: Decision) -> None:
    d.record(_own_account(d), "account.email_changed", {"email": d.payload.email})
