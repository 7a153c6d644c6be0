"""The ministry's identifiers, checked where they enter.

A worker is known by a Saudi national id (starts with 1), a resident id or iqama
(starts with 2), or a border number (starts with 3 or 4) before an iqama exists; all
are ten digits. An establishment's labour-office file number is `<office>-<serial>`.
"""

from __future__ import annotations

import re
import uuid
from functools import lru_cache
from hashlib import sha1
from typing import Annotated, Literal

from pydantic import AfterValidator

_TEN_DIGITS = re.compile(r"^[0-9]{10}$")
_FILE_NUMBER = re.compile(r"^[1-9][0-9]{0,2}-[0-9]{1,7}$")
_ACCOUNT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9:._@-]{0,63}$")

IdKind = Literal["national_id", "iqama", "border_number"]

# One namespace for the deterministic stream ids, so that an establishment's stream can
# be found from its file number without an index.
SIJIL_NAMESPACE = uuid.UUID("5b1d3c2e-5a1f-4c1e-9d0e-53494a494c00")
_NAMESPACE_BYTES = SIJIL_NAMESPACE.bytes


def worker_id_kind(value: str) -> IdKind:
    """Which document a worker id is, from its first digit."""
    if not _TEN_DIGITS.match(value):
        raise ValueError("must be 10 digits")
    first = value[0]
    if first == "1":
        return "national_id"
    if first == "2":
        return "iqama"
    if first in "34":
        return "border_number"
    raise ValueError("must start with 1 (national id), 2 (iqama) or 3/4 (border number)")


def _check_worker_id(value: str) -> str:
    worker_id_kind(value)
    return value


def _check_national_id(value: str) -> str:
    if not _TEN_DIGITS.match(value) or value[0] != "1":
        raise ValueError("a Saudi national id is 10 digits starting with 1")
    return value


def _check_iqama(value: str) -> str:
    if not _TEN_DIGITS.match(value) or value[0] != "2":
        raise ValueError("an iqama (resident id) is 10 digits starting with 2")
    return value


def _check_file_number(value: str) -> str:
    if not _FILE_NUMBER.match(value):
        raise ValueError("an establishment file number is <office>-<serial>, e.g. 1-123456")
    return value


def _check_commercial_registration(value: str) -> str:
    if not _TEN_DIGITS.match(value):
        raise ValueError("a commercial registration is 10 digits")
    return value


def _check_account_id(value: str) -> str:
    if not _ACCOUNT_ID.match(value):
        raise ValueError("an account id is 1-64 letters, digits or ':._@-'")
    return value


WorkerId = Annotated[str, AfterValidator(_check_worker_id)]
NationalId = Annotated[str, AfterValidator(_check_national_id)]
Iqama = Annotated[str, AfterValidator(_check_iqama)]
EstablishmentId = Annotated[str, AfterValidator(_check_file_number)]
CommercialRegistration = Annotated[str, AfterValidator(_check_commercial_registration)]
AccountId = Annotated[str, AfterValidator(_check_account_id)]


@lru_cache(maxsize=200_000)
def establishment_stream(file_number: str) -> uuid.UUID:
    return uuid.uuid5(SIJIL_NAMESPACE, f"establishment:{file_number}")


@lru_cache(maxsize=200_000)
def worker_stream(worker_id: str) -> uuid.UUID:
    return uuid.uuid5(SIJIL_NAMESPACE, f"worker:{worker_id}")


@lru_cache(maxsize=200_000)
def account_stream(account_id: str) -> uuid.UUID:
    return uuid.uuid5(SIJIL_NAMESPACE, f"account:{account_id}")


def refusal_stream(account_id: str) -> uuid.UUID:
    """Where a refusal goes when neither its establishment nor its actor is known."""
    return uuid.uuid5(SIJIL_NAMESPACE, f"unattributed:{account_id}")


def event_id(stream: uuid.UUID, version: int) -> str:
    """An event's id: unique in the store because (stream, version) is, and the same
    however the requests were batched, so two recordings of one history compare equal.

    It is uuid5(SIJIL_NAMESPACE, f"event:{stream}:{version}") (RFC 4122, section 4.3),
    spelled out: ingest names every event, and the uuid module's objects cost more than
    the hash."""
    digest = bytearray(sha1(_NAMESPACE_BYTES + f"event:{stream}:{version}".encode()).digest())
    digest[6] = (digest[6] & 0x0F) | 0x50  # version 5
    digest[8] = (digest[8] & 0x3F) | 0x80  # the RFC 4122 variant
    h = digest[:16].hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"
