"""The event contract as models: the record every consumer reads, and the payload of
every event type, exactly as the handlers in domain/ produce them.

DESIGN.md, "The event on Kafka": each event type has a JSON Schema generated from its
pydantic model and kept in the repository (schemas/, written by domain/schemas.py), so
that a consumer in any language can check what it reads. A change to an event's shape
is a new `schema_version` with an upcaster, never an edit of history; the payload models
forbid unknown fields so that a handler adding one fails the tests until it is declared.

The models are strict: integers are integers (never floats or booleans, since the hash
chain carries no floats), booleans are booleans, and dates are ISO 8601 strings
(YYYY-MM-DD) typed `date`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from functools import cache
from typing import Annotated, Any, Final, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    Strict,
    ValidationError,
    create_model,
)

from domain.catalogue import SERVICE_CODES
from domain.context import AuthMethod, Channel, Role, ShortText, normal_ip
from domain.identifiers import IdKind
from domain.nitaqat import Band, SizeCategory
from domain.requests import Code, Email, Month, Nationality, SaudiCategory

StreamKind = Literal["establishment", "worker", "account", "unattributed"]

# -- field types --------------------------------------------------------------------
UUID_PATTERN: Final = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
TIMESTAMP_PATTERN: Final = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{6}Z$"
DATE_PATTERN: Final = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"


def _iso_date_text(value: Any) -> Any:
    """On the record a date is text, YYYY-MM-DD; a date object never reaches a reader."""
    if not isinstance(value, str) or len(value) != 10:
        raise ValueError("a date on the record is an ISO 8601 string, YYYY-MM-DD")
    return value


def _not_bool(value: Any) -> Any:
    if isinstance(value, bool):
        raise ValueError("an integer, not a boolean")
    return value


def _check_ip(value: str) -> str:
    normal_ip(value)  # the contract keeps the address as recorded
    return value


def _no_default(schema: dict[str, Any]) -> None:
    schema.pop("default", None)


IsoDate = Annotated[date, Strict(False), BeforeValidator(_iso_date_text),
                    Field(json_schema_extra={"pattern": DATE_PATTERN})]
EventId = Annotated[str, Field(pattern=UUID_PATTERN, json_schema_extra={"format": "uuid"})]
Hash = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
Timestamp = Annotated[str, Field(pattern=TIMESTAMP_PATTERN,
                                 json_schema_extra={"format": "date-time"})]
WorkerId = Annotated[str, Field(pattern=r"^[1-4][0-9]{9}$")]
EstablishmentId = Annotated[str, Field(pattern=r"^[1-9][0-9]{0,2}-[0-9]{1,7}$")]
AccountId = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9:._@-]{0,63}$")]
CommercialRegistration = Annotated[str, Field(pattern=r"^[0-9]{10}$")]
ServiceCode = Literal[SERVICE_CODES]  # type: ignore[valid-type]
RuleCode = Annotated[str, Field(pattern=r"^[A-Z][A-Z0-9_]*$",
                                description="a code of domain.refusals.RULE_CODES")]
BasisPoints = Annotated[int, Field(ge=0, le=10_000)]
Count = Annotated[int, Field(ge=0)]
Reason = Annotated[str, Field(min_length=1, max_length=500)]


def Absent() -> Any:
    """A key the handler sometimes leaves out (never null when present)."""
    return Field(default=None, json_schema_extra=_no_default)


class ContractModel(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)


# -- the request part of the record (domain.context.RequestContext.as_record) ----------
class Actor(ContractModel):
    account_id: AccountId
    role: Role
    on_behalf_of: AccountId | None = Field(
        description="the account whose authority is used: an agent's principal")


class Auth(ContractModel):
    method: AuthMethod
    credential_id: ShortText


class Client(ContractModel):
    ip: Annotated[str, AfterValidator(_check_ip),
                  Field(json_schema_extra={"anyOf": [{"format": "ipv4"},
                                                     {"format": "ipv6"}]})]
    device_id: ShortText
    user_agent: Annotated[str, Field(max_length=512)]


class RequestRecord(ContractModel):
    """Who made the request and how (DESIGN.md: `request`)."""

    request_id: ShortText
    service: ServiceCode = Field(description="a service code of the catalogue")
    channel: Channel
    actor: Actor
    session_id: ShortText
    auth: Auth
    client: Client
    # What was asked, as validated: with the fields above and the event's occurred_at,
    # the request itself — so that a counterfactual can decide it again.
    establishment_id: str | None = Field(description="the establishment the request named")
    payload: dict[str, Any] = Field(description="the request's payload, as validated")


class EventRecord(ContractModel):
    """One event as Kafka carries it and auditors verify it (domain.envelope)."""

    event_id: EventId
    event_type: Annotated[str, Field(pattern=r"^[a-z_]+\.[a-z_]+$")]
    schema_version: Annotated[int, Field(ge=1), BeforeValidator(_not_bool)]
    stream: EventId = Field(description="the aggregate's stream id")
    stream_version: Annotated[int, Field(ge=1)] = Field(
        description="the event's version within its stream, from 1")
    position: Annotated[int, Field(ge=1)] = Field(  # type: ignore[assignment]
        default=None, json_schema_extra=_no_default,
        description="the store's notification id: one global order (absent before saving)")
    establishment_id: EstablishmentId | None = Field(
        description="the Kafka key: the establishment the event belongs to, if any")
    occurred_at: Timestamp = Field(description="when the request was made (UTC)")
    recorded_at: Timestamp = Field(description="when the ledger recorded the event (UTC)")
    request: RequestRecord
    payload: dict[str, Any] = Field(description="the event's own fields")
    prev_hash: Hash = Field(description="the hash of the stream's previous event "
                                        "(64 zeros for the first)")
    hash: Hash = Field(description="SHA-256 over the canonical JSON of this event "
                                   "without hash and position")


# -- payloads ------------------------------------------------------------------------
class Payload(ContractModel):
    pass


class Contribution(Payload):
    """How one worker counts in Nitaqat (domain.nitaqat.Contribution)."""

    saudi: bool
    weight_milli: Annotated[int, Field(ge=0, le=1000)]
    disabled: bool


class ReversalNote(Payload):
    """The auditor's order a compensating event carries (domain.reversals)."""

    reverses_event_id: EventId
    ordered_by: AccountId
    reason: Reason


# establishment stream
class FileOpened(Payload):
    name: Annotated[str, Field(min_length=1, max_length=200)]
    commercial_registration: CommercialRegistration
    activity: Code
    city: ShortText
    owner_counts_as_saudi: bool
    owner_account_id: AccountId


class ActivityChanged(Payload):
    from_activity: Code
    to_activity: Code


class BranchAdded(Payload):
    branch_id: ShortText
    city: ShortText


class SaudizationCertificateIssued(Payload):
    band: Band
    percentage_bp: BasisPoints
    average_bp: BasisPoints
    valid_until: IsoDate


class EstablishmentWorkerJoined(Payload):
    worker_id: WorkerId
    via: Literal["hire", "absence_cancelled", "absence_reversed", "service_transfer",
                 "reversal"]
    contribution: Contribution
    percentage_bp: BasisPoints = Field(description="the establishment's percentage after")
    visa_id: ShortText | None = Field(default=None, description="on a hire only")
    from_establishment_id: EstablishmentId = Absent()
    reversal: ReversalNote = Absent()


class EstablishmentWorkerLeft(Payload):
    worker_id: WorkerId
    reason: Literal["exit_without_return", "final_exit_confirmed", "absence_report",
                    "service_transfer", "reversal"]
    contribution: Contribution
    counted: bool = Field(description="false when the worker had already stopped counting")
    percentage_bp: BasisPoints = Field(description="the establishment's percentage after")
    to_establishment_id: EstablishmentId = Absent()


class BandChanged(Payload):
    from_band: Band | None  # None: the establishment's first assessment
    to_band: Band
    percentage_bp: BasisPoints
    average_bp: BasisPoints
    headcount: Count
    size: SizeCategory
    cause_event_id: EventId | None


class WageFileUploaded(Payload):
    month: Month
    workers_total: Count
    workers_paid_as_recorded: Count
    compliance_bp: BasisPoints


class VisaIssued(Payload):
    visa_id: ShortText
    nationality: Nationality
    profession: Code


class VisaCancelled(Payload):
    visa_id: ShortText


class CompensatoryVisaRequested(Payload):
    for_worker_id: WorkerId


class RecruitmentBalanceRequested(Payload):
    count: Annotated[int, Field(ge=1, le=1000)]


class RecruitmentDisbursementRequested(Payload):
    count: Annotated[int, Field(ge=1, le=1000)]


# worker stream
class WorkerJoined(Payload):
    id_kind: IdKind
    worker_id: WorkerId
    nationality: Nationality
    saudi_category: SaudiCategory | None
    profession: Code
    wage_sar: Annotated[int, Field(ge=0, le=1_000_000)]
    part_time: bool
    disabled: bool
    branch_id: ShortText | None
    arrival_date: IsoDate | None
    iqama_expiry: IsoDate | None
    contract_end: IsoDate | None
    visa_id: ShortText | None


class ProfessionChanged(Payload):
    from_profession: Code
    to_profession: Code


class BranchTransferred(Payload):
    from_branch_id: ShortText | None
    to_branch_id: ShortText


class DependentsTransferred(Payload):
    dependents: Annotated[int, Field(ge=1, le=20)]


class LeftKingdom(Payload):
    kind: Literal["exit_without_return", "final_exit_confirmed"]


class IqamaRenewed(Payload):
    iqama_expiry: IsoDate


class Returned(Payload):
    pass


class ImprisonmentFlagged(Payload):
    imprisoned: bool


class PermitIssued(Payload):
    permit_type: Literal["standard", "temporary"]
    months: Annotated[int, Field(ge=1, le=24)]
    valid_from: IsoDate
    valid_until: IsoDate
    levy_sar_a_month: Count
    fee_sar: Count


class PermitRenewed(Payload):
    permit_type: Literal["standard"]
    months: Annotated[int, Field(ge=1, le=24)]
    valid_from: IsoDate
    valid_until: IsoDate
    levy_sar_a_month: Count
    fee_sar: Count


class FinalExitRequested(Payload):
    pass


class FinalExitWithdrawn(Payload):
    reversal: ReversalNote


class AbsenceReported(Payload):
    last_seen_on: IsoDate | None


class AbsenceCancelled(Payload):
    report_event_id: EventId
    reversal: ReversalNote = Absent()


class ServiceTransferred(Payload):
    from_establishment_id: EstablishmentId
    to_establishment_id: EstablishmentId
    basis: Literal["employer_release", "absence_report", "wage_arrears", "contract_end",
                   "notice_served", "reversal"]
    employer_months_late: Count
    reversal: ReversalNote = Absent()


# account stream
class AccountRegistered(Payload):
    account_id: AccountId
    role: Literal["owner", "delegate", "agent"]
    email: Email
    credential_id: ShortText


class DelegationGranted(Payload):
    owner_account_id: AccountId
    establishment_id: EstablishmentId
    services: Annotated[list[ServiceCode], Field(min_length=1)]
    valid_from: IsoDate | None
    valid_until: IsoDate | None


class DelegationConfirmed(Payload):
    establishment_id: EstablishmentId


class DelegationRevoked(Payload):
    establishment_id: EstablishmentId
    reversal: ReversalNote = Absent()


class AgentAppointed(Payload):
    owner_account_id: AccountId


class LoggedIn(Payload):
    pass


class LoginFailed(Payload):
    reason: Literal["bad_password", "bad_otp", "locked"]


class PasswordChanged(Payload):
    new_credential_id: ShortText


class EmailChanged(Payload):
    email: Email


# refusals: the establishment's stream, else the actor's account, else unattributed
class RequestRejected(Payload):
    rule: RuleCode
    message: Annotated[str, Field(min_length=1)]
    service: ServiceCode
    request_payload: dict[str, Any] = Field(
        description="the request's payload, as schemas/requests/<service>.json describes it")


# -- the registry --------------------------------------------------------------------
@dataclass(frozen=True)
class EventType:
    name: str
    schema_version: int
    payload_model: type[Payload]
    stream_kind: StreamKind
    description: str
    ar: str = ""
    en: str = ""
    # Other kinds of stream the event may land in (request.rejected falls back).
    also_in: tuple[StreamKind, ...] = ()


_TYPES: Final[tuple[EventType, ...]] = (
    EventType("establishment.file_opened", 1, FileOpened, "establishment",
              "An establishment's file was opened: its stream's first event, naming the "
              "owner and the activity whose Nitaqat thresholds apply.",
              "فتح ملف منشأة", "Establishment file opened"),
    EventType("establishment.activity_changed", 1, ActivityChanged, "establishment",
              "The establishment's economic activity changed, and with it the Nitaqat "
              "thresholds that decide its band.",
              "تغيير نشاط المنشأة", "Establishment activity changed"),
    EventType("establishment.branch_added", 1, BranchAdded, "establishment",
              "A branch was added, to which workers may then be assigned.",
              "إضافة فرع منشأة", "Branch added"),
    EventType("establishment.saudization_certificate_issued", 1,
              SaudizationCertificateIssued, "establishment",
              "A Saudization certificate was issued, attesting a band and percentage until "
              "a date.",
              "إصدار شهادة السعودة", "Saudization certificate issued"),
    EventType("establishment.worker_joined", 1, EstablishmentWorkerJoined, "establishment",
              "A worker now counts in the establishment's workforce, with how they count "
              "and the percentage after, so readers chart Nitaqat without the workforce.",
              "إضافة عامل إلى قوة المنشأة", "Worker counted in"),
    EventType("establishment.worker_left", 1, EstablishmentWorkerLeft, "establishment",
              "A worker no longer counts in the establishment's workforce, with the "
              "percentage after.",
              "خروج عامل من قوة المنشأة", "Worker counted out"),
    EventType("establishment.band_changed", 1, BandChanged, "establishment",
              "The establishment's Nitaqat band changed, after a workforce move or with "
              "time; the band gates its services.",
              "تغير نطاق المنشأة", "Nitaqat band changed"),
    EventType("establishment.wage_file_uploaded", 1, WageFileUploaded, "establishment",
              "A month's wage-protection file was filed with its compliance; unfiled "
              "months suspend services and free workers to transfer.",
              "رفع مسير حماية الأجور", "Wage-protection file uploaded"),
    EventType("establishment.visa_issued", 1, VisaIssued, "establishment",
              "A work visa was issued to the establishment, to be used by a hire.",
              "إصدار تأشيرة", "Visa issued"),
    EventType("establishment.visa_cancelled", 1, VisaCancelled, "establishment",
              "An unused visa was cancelled.",
              "إلغاء تأشيرة", "Visa cancelled"),
    EventType("establishment.compensatory_visa_requested", 1, CompensatoryVisaRequested,
              "establishment",
              "A compensatory visa was requested to replace a worker who left the "
              "establishment's service.",
              "طلب تأشيرة تعويضية", "Compensatory visa requested"),
    EventType("establishment.recruitment_balance_requested", 1,
              RecruitmentBalanceRequested, "establishment",
              "A recruitment balance (number of visas) was requested.",
              "طلب رصيد استقدام", "Recruitment balance requested"),
    EventType("establishment.recruitment_disbursement_requested", 1,
              RecruitmentDisbursementRequested, "establishment",
              "A disbursement from the recruitment balance was requested.",
              "طلب صرف استقدام", "Recruitment disbursement requested"),
    EventType("worker.joined", 1, WorkerJoined, "worker",
              "A person began employment with an establishment: identity, documents and "
              "the terms that decide how they count.",
              "التحاق عامل", "Worker joined"),
    EventType("worker.profession_changed", 1, ProfessionChanged, "worker",
              "The worker's profession on record changed.",
              "تغيير مهنة عامل", "Profession changed"),
    EventType("worker.branch_transferred", 1, BranchTransferred, "worker",
              "The worker moved between branches of the same establishment.",
              "تغيير فرع عامل", "Branch transferred"),
    EventType("worker.dependents_transferred", 1, DependentsTransferred, "worker",
              "Dependants were transferred onto the worker's sponsorship.",
              "نقل خدمة التابعين", "Dependants transferred"),
    EventType("worker.left_kingdom", 1, LeftKingdom, "worker",
              "The passports authority reports the worker left the kingdom, ending "
              "employment.",
              "مغادرة عامل المملكة", "Left the kingdom"),
    EventType("worker.iqama_renewed", 1, IqamaRenewed, "worker",
              "The passports authority reports a renewed iqama and its new expiry.",
              "تجديد الإقامة", "Iqama renewed"),
    EventType("worker.returned", 1, Returned, "worker",
              "The passports authority reports the worker back in the kingdom.",
              "عودة عامل", "Worker returned"),
    EventType("worker.imprisonment_flagged", 1, ImprisonmentFlagged, "worker",
              "The national information centre set or cleared the worker's imprisonment "
              "flag, which stops services for them.",
              "إشعار سجن عامل", "Imprisonment flagged"),
    EventType("worker.permit_issued", 1, PermitIssued, "worker",
              "A work permit (standard or temporary) was issued, with its period and fee.",
              "إصدار رخصة عمل", "Work permit issued"),
    EventType("worker.permit_renewed", 1, PermitRenewed, "worker",
              "A work permit was renewed, with its new period and fee.",
              "تجديد رخصة عمل", "Work permit renewed"),
    EventType("worker.final_exit_requested", 1, FinalExitRequested, "worker",
              "The employer requested a final exit; employment ends when passports "
              "confirm the departure.",
              "طلب خروج نهائي", "Final exit requested"),
    EventType("worker.final_exit_withdrawn", 1, FinalExitWithdrawn, "worker",
              "An auditor reversed a pending final exit, restoring the worker.",
              "سحب الخروج النهائي", "Final exit withdrawn"),
    EventType("worker.absence_reported", 1, AbsenceReported, "worker",
              "The employer reported the worker absent from work, detaching them from its "
              "workforce.",
              "بلاغ تغيب عن العمل", "Absence reported"),
    EventType("worker.absence_cancelled", 1, AbsenceCancelled, "worker",
              "An open absence report was cancelled by its filer or reversed by an "
              "auditor.",
              "إلغاء بلاغ تغيب", "Absence report cancelled"),
    EventType("worker.service_transferred", 1, ServiceTransferred, "worker",
              "The worker's service moved to another establishment, on the stated basis, "
              "or back by an auditor's reversal.",
              "نقل خدمة", "Service transferred"),
    EventType("account.registered", 1, AccountRegistered, "account",
              "A portal account (owner, delegate or agent) was registered with its first "
              "credential.",
              "تسجيل حساب", "Account registered"),
    EventType("account.delegation_granted", 1, DelegationGranted, "account",
              "An owner granted a delegate a set of services for an establishment, "
              "optionally dated.",
              "منح تفويض", "Delegation granted"),
    EventType("account.delegation_confirmed", 1, DelegationConfirmed, "account",
              "The delegate confirmed a grant, which only then takes effect.",
              "تأكيد التفويض", "Delegation confirmed"),
    EventType("account.delegation_revoked", 1, DelegationRevoked, "account",
              "A delegate's grant was revoked by the owner or reversed by an auditor.",
              "إلغاء تفويض", "Delegation revoked"),
    EventType("account.agent_appointed", 1, AgentAppointed, "account",
              "An owner appointed an agent to act for all their establishments.",
              "تعيين وكيل", "Agent appointed"),
    EventType("account.logged_in", 1, LoggedIn, "account",
              "A successful login, kept so that credential misuse can be audited.",
              "تسجيل الدخول", "Logged in"),
    EventType("account.login_failed", 1, LoginFailed, "account",
              "A failed login, kept so that credential attacks can be audited.",
              "محاولة دخول فاشلة", "Login failed"),
    EventType("account.password_changed", 1, PasswordChanged, "account",
              "The account's credential changed; requests with the old one are refused.",
              "تغيير كلمة المرور", "Password changed"),
    EventType("account.email_changed", 1, EmailChanged, "account",
              "The account's e-mail address changed.",
              "تغيير البريد الإلكتروني", "E-mail changed"),
    EventType("request.rejected", 1, RequestRejected, "establishment",
              "A well-formed request was refused by a rule, recorded with the rule and the "
              "request, in the establishment's stream, else the actor's account, else an "
              "unattributed stream.",
              "رفض طلب", "Request rejected", also_in=("account", "unattributed")),
)

EVENT_TYPES: Final[dict[str, EventType]] = {t.name: t for t in _TYPES}


# -- validation ----------------------------------------------------------------------
class InvalidRecord(ValueError):
    """A record that breaks the contract; the message names the event type and fields."""

    def __init__(self, event_type: str, problems: list[str]) -> None:
        super().__init__(f"{event_type}: " + "; ".join(problems))
        self.event_type = event_type
        self.problems = problems


def _model_name(event_type: str, version: int) -> str:
    words = event_type.replace(".", "_").split("_")
    return "".join(w.title() for w in words) + f"V{version}Record"


@cache
def record_model(event_type: str) -> type[EventRecord]:
    """The whole record of one event type: the envelope with its payload model."""
    t = EVENT_TYPES[event_type]
    fields: dict[str, Any] = {
        "event_type": (Literal[t.name], ...),
        "schema_version": (Annotated[Literal[t.schema_version], BeforeValidator(_not_bool)],
                           ...),
        "payload": (t.payload_model, ...),
    }
    model: type[EventRecord] = create_model(
        _model_name(t.name, t.schema_version), __base__=EventRecord, __doc__=t.description,
        **fields)
    return model


def _describe(error: Any) -> str:
    field = ".".join(str(part) for part in error["loc"]) or "(record)"
    return f"{field}: {str(error['msg']).removeprefix('Value error, ')}"


def validate_record(record: dict[str, Any]) -> None:
    """Check one contract record: its envelope, then its payload against its event type.

    Raises InvalidRecord naming the event type and every bad field; an unknown event type
    or schema version is itself an error.
    """
    if not isinstance(record, dict):
        raise InvalidRecord("(record)", [f"a record is an object, not {type(record).__name__}"])
    event_type = record.get("event_type")
    if not isinstance(event_type, str) or event_type not in EVENT_TYPES:
        raise InvalidRecord(str(event_type),
                            [f"event_type: unknown event type {event_type!r}"])
    t = EVENT_TYPES[event_type]
    version = record.get("schema_version")
    if type(version) is not int or version != t.schema_version:
        raise InvalidRecord(event_type, [f"schema_version: {version!r} is not a known "
                                         f"version (known: {t.schema_version})"])
    try:
        record_model(event_type).model_validate(record)
    except ValidationError as error:
        raise InvalidRecord(f"{event_type} v{version}",
                            [_describe(e) for e in error.errors()]) from None


__all__ = ["EVENT_TYPES", "EventRecord", "EventType", "InvalidRecord", "record_model",
           "validate_record"]
