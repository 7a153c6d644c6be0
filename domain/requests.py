"""The e-service requests: one pydantic model a service, all sharing the request context.

A request that fails these models is malformed: it is reported with its field and
rule and never recorded. A well-formed request that the rules refuse is recorded as a
refusal (see domain/refusals.py); that is a different thing.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal, TypeAlias, Union

from pydantic import (
    Field,
    TypeAdapter,
    ValidationError,
    create_model,
    field_validator,
    model_validator,
)

from domain.catalogue import CATALOGUE
from domain.context import Frozen, RequestContext, ShortText
from domain.identifiers import (
    AccountId,
    CommercialRegistration,
    EstablishmentId,
    WorkerId,
)

Nationality = Annotated[str, Field(pattern=r"^[A-Z]{3}$", description="ISO 3166 alpha-3")]
Month = Annotated[str, Field(pattern=r"^\d{4}-(0[1-9]|1[0-2])$", description="YYYY-MM")]
Code = Annotated[str, Field(pattern=r"^[a-z0-9_]{2,40}$")]
Email = Annotated[str, Field(pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$", max_length=254)]

# Who counts as Saudi in Nitaqat besides Saudi nationals (Qiwa, March 2024).
SaudiCategory = Literal[
    "saudi", "gcc", "investor_owner", "saudi_mother_child",
    "widow_or_mother_of_saudi", "displaced_tribe",
]


class Empty(Frozen):
    pass


class OpenFile(Frozen):
    name: Annotated[str, Field(min_length=1, max_length=200)]
    commercial_registration: CommercialRegistration
    activity: Code
    city: ShortText
    # Small establishments are green with one Saudi, "the owner may count" (jisr.net).
    owner_counts_as_saudi: bool = False


class ActivityChange(Frozen):
    activity: Code


class BranchAdd(Frozen):
    branch_id: ShortText
    city: ShortText


class Registration(Frozen):
    email: Email


class DelegateRegistered(Frozen):
    delegate_account_id: AccountId
    services: Annotated[list[str], Field(min_length=1)]
    valid_from: date | None = None
    valid_until: date | None = None

    @field_validator("services")
    @classmethod
    def _known_services(cls, value: list[str]) -> list[str]:
        unknown = sorted(set(value) - set(CATALOGUE))
        if unknown:
            raise ValueError(f"unknown service codes {unknown}")
        return sorted(set(value))

    @model_validator(mode="after")
    def _period(self) -> DelegateRegistered:
        if self.valid_from and self.valid_until and self.valid_until < self.valid_from:
            raise ValueError("valid_until is before valid_from")
        return self


class DelegateRevoked(Frozen):
    delegate_account_id: AccountId


class AgentRegistered(Frozen):
    agent_account_id: AccountId


class LoginFailed(Frozen):
    reason: Literal["bad_password", "bad_otp", "locked"] = "bad_password"


class PasswordChanged(Frozen):
    new_credential_id: ShortText


class EmailChanged(Frozen):
    email: Email


class WorkerJoin(Frozen):
    worker_id: WorkerId
    nationality: Nationality
    saudi_category: SaudiCategory | None = None
    profession: Code
    wage_sar: Annotated[int, Field(ge=0, le=1_000_000)]
    part_time: bool = False
    disabled: bool = False
    branch_id: ShortText | None = None
    arrival_date: date | None = None
    iqama_expiry: date | None = None
    contract_end: date | None = None
    visa_id: ShortText | None = None


class WorkerRef(Frozen):
    worker_id: WorkerId


class PermitPeriod(Frozen):
    worker_id: WorkerId
    months: Annotated[int, Field(ge=1, le=24)]


class AbsenceReport(Frozen):
    worker_id: WorkerId
    last_seen_on: date | None = None


class ProfessionChange(Frozen):
    worker_id: WorkerId
    profession: Code


class BranchTransfer(Frozen):
    worker_id: WorkerId
    branch_id: ShortText


class ServiceTransfer(Frozen):
    """Requested by the receiving establishment, or by the current employer releasing
    the worker (which is the employer's consent)."""

    worker_id: WorkerId
    to_establishment_id: EstablishmentId
    worker_consent: bool
    notice_given_on: date | None = None


class DependentsTransfer(Frozen):
    worker_id: WorkerId
    dependents: Annotated[int, Field(ge=1, le=20)]


class VisaIssue(Frozen):
    visa_id: ShortText
    nationality: Nationality
    profession: Code


class VisaRef(Frozen):
    visa_id: ShortText


class CompensatoryVisa(Frozen):
    for_worker_id: WorkerId


class RecruitmentCount(Frozen):
    count: Annotated[int, Field(ge=1, le=1000)]


class WageFile(Frozen):
    month: Month
    workers_total: Annotated[int, Field(ge=0)]
    workers_paid_as_recorded: Annotated[int, Field(ge=0)]

    @model_validator(mode="after")
    def _paid_within_total(self) -> WageFile:
        if self.workers_paid_as_recorded > self.workers_total:
            raise ValueError("workers_paid_as_recorded exceeds workers_total")
        return self


class PassportsSync(Frozen):
    worker_id: WorkerId
    kind: Literal["exit_without_return", "final_exit_confirmed", "returned", "iqama_renewed"]
    iqama_expiry: date | None = None


class ImprisonmentFlag(Frozen):
    worker_id: WorkerId
    imprisoned: bool


class Reversal(Frozen):
    reverses_event_id: Annotated[str, Field(pattern=r"^[0-9a-f-]{36}$")]
    reason: Annotated[str, Field(min_length=1, max_length=500)]
    worker_id: WorkerId | None = None
    delegate_account_id: AccountId | None = None


PAYLOADS: dict[str, type[Frozen]] = {
    "establishment.open_file": OpenFile,
    "establishment.activity_change": ActivityChange,
    "establishment.branch_add": BranchAdd,
    "portal.registration": Registration,
    "account.owner_registered": Registration,
    "account.delegate_registered": DelegateRegistered,
    "account.delegate_confirmed": Empty,
    "account.delegate_revoked": DelegateRevoked,
    "account.agent_registered": AgentRegistered,
    "account.login": Empty,
    "account.login_failed": LoginFailed,
    "account.password_changed": PasswordChanged,
    "account.email_changed": EmailChanged,
    "worker.join": WorkerJoin,
    "permit.issue": PermitPeriod,
    "permit.renew": PermitPeriod,
    "permit.temporary": PermitPeriod,
    "permit.final_exit": WorkerRef,
    "absence.report": AbsenceReport,
    "absence.cancel": WorkerRef,
    "worker.profession_change": ProfessionChange,
    "worker.branch_transfer": BranchTransfer,
    "worker.service_transfer": ServiceTransfer,
    "dependents.transfer": DependentsTransfer,
    "visa.issue": VisaIssue,
    "visa.cancel": VisaRef,
    "visa.compensatory_request": CompensatoryVisa,
    "recruitment.balance_request": RecruitmentCount,
    "recruitment.disbursement_request": RecruitmentCount,
    "certificate.saudization": Empty,
    "payroll.wage_protection_upload": WageFile,
    "integration.passports_sync": PassportsSync,
    "integration.imprisonment_flag": ImprisonmentFlag,
    "audit.reversal": Reversal,
}
assert set(PAYLOADS) == set(CATALOGUE), "every catalogue service has a request model"

# Services that act for an establishment and so must name it.
WITHOUT_ESTABLISHMENT = frozenset({
    "portal.registration", "account.owner_registered", "account.agent_registered",
    "account.login", "account.login_failed", "account.password_changed",
    "account.email_changed", "integration.passports_sync",
    "integration.imprisonment_flag", "audit.reversal",
})


class RequestBase(RequestContext):
    establishment_id: EstablishmentId | None = None
    payload: Any

    def as_record(self) -> dict[str, Any]:
        """The event contract's `request`: who, how, and what was asked."""
        return {**super().as_record(), "establishment_id": self.establishment_id,
                "payload": self.payload.model_dump(mode="json")}

    @model_validator(mode="after")
    def _establishment_named(self) -> RequestBase:
        if self.service not in WITHOUT_ESTABLISHMENT and self.establishment_id is None:
            raise ValueError(f"establishment_id is required for {self.service}")
        return self


def _request_model(code: str, payload: type[Frozen]) -> type[RequestBase]:
    name = "".join(part.title() for part in code.replace(".", "_").split("_")) + "Request"
    tag: Any = Literal[code]
    return create_model(name, __base__=RequestBase, service=(tag, ...), payload=(payload, ...))


REQUEST_MODELS: dict[str, type[RequestBase]] = {
    code: _request_model(code, payload) for code, payload in PAYLOADS.items()
}

Request: TypeAlias = RequestBase


def _union_adapter() -> TypeAdapter[RequestBase]:
    union: Any = Union[tuple(REQUEST_MODELS.values())]  # noqa: UP007
    tagged: Any = Annotated[union, Field(discriminator="service")]
    return TypeAdapter(tagged)


_ADAPTER = _union_adapter()


class MalformedRequest(ValueError):
    """A line that is not a well-formed request; the message names each field and rule."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


def _describe(error: Any) -> str:
    if error["type"] == "union_tag_invalid":
        return f"service: unknown service code {error['input'].get('service')!r}"
    if error["type"] == "union_tag_not_found":
        return "service: field required"
    loc = [str(part) for part in error["loc"]]
    if loc and loc[0] in REQUEST_MODELS:
        loc = loc[1:]
    field = ".".join(loc) or "(request)"
    message = str(error["msg"]).removeprefix("Value error, ")
    return f"{field}: {message}"


def parse_request(data: bytes | str | dict[str, Any]) -> RequestBase:
    """Validate one request; raise MalformedRequest naming every bad field."""
    try:
        if isinstance(data, dict):
            return _ADAPTER.validate_python(data)
        return _ADAPTER.validate_json(data)
    except ValidationError as error:
        raise MalformedRequest([_describe(e) for e in error.errors()]) from None


def request_of(record: dict[str, Any]) -> dict[str, Any]:
    """The request an event was decided from, as a request line (for counterfactuals)."""
    q = record["request"]
    return {"request_id": q["request_id"], "service": q["service"],
            "occurred_at": record["occurred_at"], "channel": q["channel"],
            "actor": q["actor"], "session_id": q["session_id"], "auth": q["auth"],
            "client": q["client"], "establishment_id": q["establishment_id"],
            "payload": q["payload"]}


def request_json_schema() -> dict[str, Any]:
    return _ADAPTER.json_schema()
