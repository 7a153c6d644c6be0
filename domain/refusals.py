"""Refusals: every refused request names a stable rule code and says why in words.

The codes are part of the event contract (a `request.rejected` event carries one) and
never change meaning; a new rule gets a new code.
"""

from __future__ import annotations

from typing import NoReturn


class Refused(Exception):
    def __init__(self, rule: str, message: str) -> None:
        super().__init__(f"{rule}: {message}")
        self.rule = rule
        self.message = message


def refuse(rule: str, message: str) -> NoReturn:
    raise Refused(rule, message)


def require(condition: bool, rule: str, message: str) -> None:
    if not condition:
        raise Refused(rule, message)


RULE_CODES: dict[str, str] = {
    "AUTH_UNKNOWN_ACCOUNT": "the acting account is not registered",
    "AUTH_ROLE_MISMATCH": "the account does not hold the role it claims",
    "AUTH_STALE_CREDENTIAL": "the credential is not the account's current one",
    "AUTH_NOT_OWNER": "the owner acts only for establishments they own",
    "AUTH_OWNER_ONLY": "only the establishment's owner may request this service",
    "AUTH_DELEGATE_NO_GRANT": "the delegate holds no grant for this establishment",
    "AUTH_DELEGATE_REVOKED": "the delegate's grant was revoked",
    "AUTH_DELEGATE_UNCONFIRMED": "the delegate has not confirmed the grant",
    "AUTH_DELEGATE_NOT_YET_VALID": "the delegate's grant has not started",
    "AUTH_DELEGATE_EXPIRED": "the delegate's grant has ended",
    "AUTH_DELEGATE_SERVICE": "the service is outside the delegate's grant",
    "AUTH_AGENT_NOT_APPOINTED": "the agent does not represent the establishment's owner",
    "AUTH_INTEGRATION_SERVICE": "an integration acts only for its own services",
    "AUTH_STAFF_ROLE": "this service is not open to this staff role",
    "AUTH_CLERK_CHANNEL": "an office clerk acts only through the office channel",
    "ACCOUNT_EXISTS": "the account is already registered",
    "ACCOUNT_NOT_DELEGATE": "the account named is not a registered delegate",
    "ACCOUNT_NOT_AGENT": "the account named is not a registered agent",
    "ESTABLISHMENT_UNKNOWN": "no establishment has this file number",
    "ESTABLISHMENT_EXISTS": "an establishment already has this file number",
    "ACTIVITY_UNKNOWN": "the economic activity is not in the Nitaqat table",
    "ACTIVITY_UNCHANGED": "the establishment already has this activity",
    "BRANCH_EXISTS": "the establishment already has this branch",
    "BRANCH_UNKNOWN": "the establishment has no such branch",
    "WORKER_UNKNOWN": "no worker has this id",
    "WORKER_EMPLOYED": "the worker is already employed",
    "WORKER_NOT_EMPLOYEE": "the worker is not employed by this establishment",
    "WORKER_NOT_EXPATRIATE": "work permits are for expatriate workers",
    "WORKER_DOCUMENTS": "a national id is a Saudi's; an expatriate joins with an arrival date",
    "WORKER_ABSENCE_OPEN": "an open absence report stops this service for the filer",
    "WORKER_IMPRISONED": "the worker is flagged as imprisoned",
    "WORKER_LEFT_KINGDOM": "the worker has left the kingdom",
    "WORKER_EXIT_PENDING": "a final exit is pending for the worker",
    "WORKER_IQAMA_EXPIRED": "the iqama has expired (platinum and high green are exempt)",
    "PERMIT_PERIOD": "permits are issued for 3, 6, 9 or 12 months",
    "PERMIT_ISSUE_WINDOW": "a permit is issued within 90 days of arrival",
    "PERMIT_VALID": "the worker already holds a valid permit",
    "PERMIT_NONE": "the worker holds no permit to renew",
    "PERMIT_RENEWAL_NOT_OPEN": "renewal opens when 180 days or fewer remain",
    "PERMIT_RENEWAL_LAPSED": "the permit expired too long ago to renew",
    "ABSENCE_OPEN": "the worker already has an open absence report",
    "ABSENCE_NONE": "the worker has no open absence report",
    "ABSENCE_DOCUMENTS": "permit and iqama each need 60 days left to report absence",
    "ABSENCE_NOT_FILER": "only the establishment that filed a report may cancel it",
    "ABSENCE_CANCEL_WINDOW": "the cancellation window has passed",
    "TRANSFER_SAME_EMPLOYER": "the worker already works for the receiving establishment",
    "TRANSFER_WORKER_CONSENT": "the worker must consent to a service transfer",
    "TRANSFER_WORKER_ABSENT": "an absent worker's 60-day transfer window has passed",
    "TRANSFER_RECEIVER_COMPLIANCE": "the receiver is under 80% wage-protection compliance",
    "TRANSFER_FIRST_YEAR": "12 months with the first employer before a transfer",
    "TRANSFER_NOTICE": "the notice period has not been served",
    "NITAQAT_RED_SERVICE": "the red band withdraws this service",
    "NITAQAT_BAND_TOO_LOW": "this service needs medium green or better",
    "WPS_SUSPENDED": "wages two months late suspend every service but work permits",
    "WPS_SUSPENDED_ALL": "wages more than three months late suspend all services",
    "WPS_MONTH_DUPLICATE": "one wage file a month",
    "WPS_MONTH_FUTURE": "a wage file cannot cover a month not yet begun",
    "VISA_EXISTS": "a visa with this id exists",
    "VISA_UNKNOWN": "the establishment has no open visa with this id",
    "VISA_NO_DEPARTURE": "a compensatory visa replaces a worker who left",
    "REVERSAL_NOT_APPLICABLE": "the named event is not one this reversal can undo",
}
