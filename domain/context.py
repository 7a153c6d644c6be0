"""Who made a request and how: the context that every request and every event carries.

Invariant 3 of DESIGN.md: every event says who did it and how. The leaked-credential
audit (seed 001) is only possible because the credential, session, device and ip of
every step are on the record.
"""

from __future__ import annotations

import ipaddress
import re
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field

from domain.identifiers import AccountId

Role = Literal["owner", "delegate", "agent", "office_clerk", "system", "auditor"]
Channel = Literal["portal", "office", "api", "integration"]
AuthMethod = Literal["password", "password_otp", "national_sso", "certificate"]


# A dotted quad without leading zeros, in ASCII digits: what `ipaddress` would print
# back, so most requests' addresses pass without building an IPv4Address (that took 6 %
# of the ingest's deciding process at F = 1.0, py-spy, session 15).
_DOTTED_QUAD = re.compile(r"(?:(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])\.){3}"
                          r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])")


def normal_ip(value: str) -> str:
    """The address as `ipaddress` spells it; ValueError when it is not one."""
    if _DOTTED_QUAD.fullmatch(value):
        return value
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        raise ValueError("not an IPv4 or IPv6 address") from None


def _to_utc(value: datetime) -> datetime:
    return value.astimezone(UTC)


IpAddress = Annotated[str, AfterValidator(normal_ip)]
UtcDatetime = Annotated[AwareDatetime, AfterValidator(_to_utc)]
ShortText = Annotated[str, Field(min_length=1, max_length=128)]


class Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Actor(Frozen):
    account_id: AccountId
    role: Role
    # The account whose authority is used: an agent's principal, an owner for a delegate.
    on_behalf_of: AccountId | None = None


class Auth(Frozen):
    method: AuthMethod
    credential_id: ShortText


class Client(Frozen):
    ip: IpAddress
    device_id: ShortText
    user_agent: Annotated[str, Field(max_length=512)] = ""


class RequestContext(Frozen):
    """The part of a request that says who, when and how, independent of the service."""

    request_id: ShortText
    service: str
    occurred_at: UtcDatetime
    channel: Channel
    actor: Actor
    session_id: ShortText
    auth: Auth
    client: Client

    def as_record(self) -> dict[str, Any]:
        """Who and how: the `request` object of DESIGN.md's event contract, less what
        was asked (RequestBase.as_record adds it; occurred_at travels apart)."""
        return {
            "request_id": self.request_id,
            "service": self.service,
            "channel": self.channel,
            "actor": self.actor.model_dump(),
            "session_id": self.session_id,
            "auth": self.auth.model_dump(),
            "client": self.client.model_dump(),
        }


def iso(moment: datetime) -> str:
    """UTC, ISO 8601 with microseconds and a Z: the one timestamp format on the record."""
    return moment.astimezone(UTC).isoformat(timespec="microseconds")[:-6] + "Z"


def parse_iso(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)
