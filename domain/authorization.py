"""Who may ask for what: owners for their establishments, delegates within their grant,
agents for the owner they represent, integrations for their own services, staff by role.

Staff and integration accounts are provisioned by the ministry, not registered through
the portal: their ids carry a prefix (`sys:` for integrations, `staff:` for clerks and
auditors) and their role must match it.
"""

from __future__ import annotations

from typing import Final

from domain.account import Account
from domain.decision import Decision
from domain.refusals import refuse, require

INTEGRATIONS: Final[dict[str, frozenset[str]]] = {
    "sys:passports": frozenset({"integration.passports_sync"}),
    "sys:nic": frozenset({"integration.imprisonment_flag"}),
    "sys:commerce": frozenset({"establishment.activity_change"}),
}
STAFF_SERVICES: Final[dict[str, frozenset[str] | None]] = {
    "auditor": frozenset({"audit.reversal"}),
    "office_clerk": None,  # any establishment service, at the office
}
AUDIT_ONLY: Final[frozenset[str]] = frozenset({"audit.reversal"})
INTEGRATION_ONLY: Final[frozenset[str]] = frozenset({"integration.passports_sync",
                                                     "integration.imprisonment_flag"})
# Services by which someone becomes an account: nobody is logged in yet.
REGISTRATIONS: Final[frozenset[str]] = frozenset({"portal.registration",
                                                  "account.owner_registered"})
OWNER_ONLY: Final[frozenset[str]] = frozenset({
    "account.delegate_registered", "account.delegate_revoked", "account.agent_registered",
    "establishment.open_file",
})
# Services about the actor's own account, needing no establishment relationship.
SELF_SERVICE: Final[frozenset[str]] = frozenset({
    "account.login", "account.login_failed", "account.password_changed",
    "account.email_changed", "account.delegate_confirmed",
})


def authorize(d: Decision) -> None:
    actor = d.request.actor
    service = d.request.service
    if service in REGISTRATIONS:
        return
    if actor.account_id.startswith("sys:"):
        _integration(d)
    elif actor.account_id.startswith("staff:"):
        _staff(d)
    else:
        account = _portal_account(d)
        if service not in SELF_SERVICE:
            _relationship(d, account)


def _integration(d: Decision) -> None:
    actor = d.request.actor
    require(actor.role == "system", "AUTH_ROLE_MISMATCH",
            f"{actor.account_id} is an integration, not a {actor.role}")
    allowed = INTEGRATIONS.get(actor.account_id, frozenset())
    require(d.request.service in allowed, "AUTH_INTEGRATION_SERVICE",
            f"{actor.account_id} may not request {d.request.service}")


def _staff(d: Decision) -> None:
    actor = d.request.actor
    require(actor.role in STAFF_SERVICES, "AUTH_ROLE_MISMATCH",
            f"{actor.account_id} is staff, not a {actor.role}")
    allowed = STAFF_SERVICES[actor.role]
    service = d.request.service
    require(allowed is None or service in allowed, "AUTH_STAFF_ROLE",
            f"a {actor.role} may not request {service}")
    # Staff have no portal account to log into, only auditors order reversals, and
    # the integrations' feeds are theirs alone.
    clerk_barred = AUDIT_ONLY | INTEGRATION_ONLY
    require(service not in SELF_SERVICE and (allowed is not None or service not in clerk_barred),
            "AUTH_STAFF_ROLE", f"a {actor.role} may not request {service}")
    if allowed is None:
        require(d.request.service not in OWNER_ONLY, "AUTH_OWNER_ONLY",
                f"{d.request.service} is the owner's to request")
        require(d.request.channel == "office", "AUTH_CLERK_CHANNEL",
                "an office clerk acts through the office channel")


def _portal_account(d: Decision) -> Account:
    actor = d.request.actor
    account = d.account(actor.account_id)
    if account is None:
        refuse("AUTH_UNKNOWN_ACCOUNT", f"account {actor.account_id} is not registered")
    require(account.role == actor.role, "AUTH_ROLE_MISMATCH",
            f"account {actor.account_id} is a {account.role}, not a {actor.role}")
    if not _credential_exempt(d):
        require(d.request.auth.credential_id == account.credential_id,
                "AUTH_STALE_CREDENTIAL",
                f"credential {d.request.auth.credential_id} is not the current one")
    return account


def _credential_exempt(d: Decision) -> bool:
    """A failed login carries no valid credential by definition; a password reset through
    national single sign-on is how an owner whose password a thief changed gets back in
    (seed 001: accounts taken over with disclosed passwords)."""
    service, method = d.request.service, d.request.auth.method
    return service == "account.login_failed" or (
        service == "account.password_changed" and method == "national_sso")


def _relationship(d: Decision, account: Account) -> None:
    """The actor's standing with the establishment named on the request."""
    service = d.request.service
    if service in OWNER_ONLY:
        require(account.role == "owner", "AUTH_OWNER_ONLY",
                f"only an owner may request {service}")
    if service == "account.agent_registered" or service == "establishment.open_file":
        return
    est = d.establishment()
    if account.role == "owner":
        require(est.owner_account_id == account.account_id, "AUTH_NOT_OWNER",
                f"{account.account_id} does not own {est.file_number}")
    elif account.role == "delegate":
        problem = account.grant_problem(est.file_number, service, d.today)
        if problem is not None:
            refuse(problem, f"delegate {account.account_id} for {est.file_number}: "
                            f"{service} ({problem})")
    elif account.role == "agent":
        require(est.owner_account_id in account.principals, "AUTH_AGENT_NOT_APPOINTED",
                f"agent {account.account_id} does not represent {est.owner_account_id}")
