"""Each account's requests as the credential audit lists them, stored side by side.

The fraud analyst's question (seed 001: which transactions did the thief make with the
leaked password, and what did they change?) is asked of one account since one moment.
Answered from the store, each of the window's events is a read of its own: an owner of
a 3,000-worker establishment makes a thousand requests a month, scattered through a
store far larger than memory at the ministry's volume, and at F = 0.2 those reads were
the audit's slowest step from a cold disk (bench/RESULTS.md, Queries). Here a row a
request is keyed by (actor account, time, request), in a SQLite table without rowid, so
that the B-tree is the table and an account's window is one range of adjacent pages.

A row holds what `replay/credential_audit.py` needs of the request and nothing it does
not: the first event as the detector sees it (without the user agent and the request's
own payload), then each event's position, type and stream, with the payload only where
the audit's effects read it, and the account id of each account stream that its events
do not name (the request's payload does). Whose a worker's stream is, the audit asks
of the workers read model when it lists the rows: folded here, this projection would
read that model, and the rebuild could not build it in a process of its own (the part
that holds the workers was the rebuild's longest, bench/RESULTS.md). The audit takes
the rows only when their positions are exactly the window's in the store's index;
otherwise it reads the store, as before.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import orjson
from sqlalchemy import Column, Connection, Index, String, Table, Text, and_, select

from domain.identifiers import account_stream
from projections.database import METADATA
from projections.rows import Key, Projection, Record, Rows

ACCOUNT_REQUESTS = Table(
    "account_requests", METADATA,
    # "<account> <occurred_at> <request_id>": one column, so that the runner finds a row
    # with the index of one key (SQLite scans a whole table for a multi-column key `IN`,
    # EXPLAIN QUERY PLAN 3.40), ordered as the three columns (a space sorts below every
    # character of an account id; every timestamp has the contract's 27 characters).
    Column("key", String(224), primary_key=True),
    Column("account_id", String(64), nullable=False),  # the actor's
    Column("occurred_at", String(27), nullable=False),  # every event of a request's
    Column("request_id", String(128), nullable=False),
    Column("credential_id", String(128)),
    Column("events", Text, nullable=False),  # JSON: see `fold`
    Column("names", Text, nullable=False),  # JSON: account stream -> account id
    Index("account_requests_by_credential", "credential_id", "occurred_at"),
    sqlite_with_rowid=False,
)

# Events whose stream is a worker's or an account's and whose payload does not name it:
# the audit says whose it was (replay/credential_audit.py, effects_of).
NAMELESS = frozenset({"worker.final_exit_requested", "worker.absence_reported",
                      "worker.service_transferred", "worker.absence_cancelled",
                      "worker.permit_issued", "worker.permit_renewed",
                      "worker.profession_changed", "account.delegation_granted",
                      "account.delegation_revoked", "account.agent_appointed"})
# Events whose payload the audit's effects read (the rest keep their type and stream).
WITH_PAYLOAD = NAMELESS | {"worker.joined", "account.password_changed",
                           "account.email_changed", "establishment.worker_left"}


def key_of(record: Record) -> Key:
    q = record["request"]
    return (f"{q['actor']['account_id']} {record['occurred_at']} {q['request_id']}",)


def reads(record: Record) -> Iterable[tuple[str, Key]]:
    return [("account_requests", key_of(record))]


# A row's later events are lists, these fields in this order, cut after the position
# for the events the effects do not read. Short rows matter: SQLite keeps at most about
# 1,000 bytes of a row of a table without rowid in its page (4 KiB pages) and spills the
# rest to an overflow page of its own; rows of 1.1 KB cost 1.95 KB each at F = 0.2.
LATER = ("position", "event_type", "stream", "establishment_id", "payload")
# The payload fields the effects read, where they read only some.
PAYLOAD_READ = {"establishment.worker_left": ("worker_id",)}


def first_event(record: Record) -> Record:
    """The request's first event as the detector and the audit read it (its time is the
    row's)."""
    q = record["request"]
    client = q["client"]
    skipped = ("payload", "client", "establishment_id")
    return {
        "event_type": record["event_type"], "stream": record["stream"],
        "establishment_id": record["establishment_id"], "position": record["position"],
        "request": {**{k: v for k, v in q.items() if k not in skipped},
                    "client": {"ip": client["ip"], "device_id": client["device_id"]}},
        "payload": record["payload"],
    }


def later_event(record: Record) -> list[Any]:
    t, payload = record["event_type"], record["payload"]
    if t not in WITH_PAYLOAD:
        return [record["position"]]
    if t in PAYLOAD_READ:
        payload = {k: payload[k] for k in PAYLOAD_READ[t] if k in payload}
    return [record["position"], t, record["stream"], record["establishment_id"], payload]


def _position(event: Record | list[Any]) -> int:
    return int(event["position"] if isinstance(event, dict) else event[0])


def expanded(events: list[Any], occurred_at: str) -> list[Record]:
    """A row's events as records the audit reads: the first whole, the rest with what
    they kept."""
    blank: Record = {"event_type": "", "stream": "", "establishment_id": None, "payload": {}}
    return [{**events[0], "occurred_at": occurred_at},
            *({**blank, **dict(zip(LATER, e, strict=False))} for e in events[1:])]


def account_of(record: Record) -> str | None:
    """Whose account stream a nameless event is on: the account the request named whose
    stream it is (a delegation names the delegate's account in its payload)."""
    for value in (record["request"].get("payload") or {}).values():
        if isinstance(value, str) and str(account_stream(value)) == record["stream"]:
            return value
    return None


def fold(rows: Rows, record: Record) -> None:
    key = key_of(record)
    row = rows.get("account_requests", key)
    if row is None:
        q = record["request"]
        row = {"key": key[0], "account_id": q["actor"]["account_id"],
               "occurred_at": record["occurred_at"], "request_id": q["request_id"],
               "credential_id": q["auth"].get("credential_id"),
               "events": "[]", "names": "{}"}
    events: list[Any] = orjson.loads(row["events"])
    if any(_position(e) == record["position"] for e in events):
        return
    # Partitions are consumed apart: a request's later event may come first, and the
    # row must not depend on that order (DESIGN.md invariant 5). The first keeps all.
    events = sorted([*events, first_event(record)], key=_position)
    events = [events[0], *(later_event(e) if isinstance(e, dict) else e
                           for e in events[1:])]
    row["events"] = orjson.dumps(events).decode()
    if (record["event_type"] in NAMELESS and record["event_type"].startswith("account.")
            and (name := account_of(record))):
        row["names"] = orjson.dumps({**orjson.loads(row["names"]), record["stream"]: name},
                                    option=orjson.OPT_SORT_KEYS).decode()
    rows.put("account_requests", key, row)


def requests_of(conn: Connection, account_id: str, credentials: Sequence[str], start: str,
                end: str | None) -> list[tuple[list[Record], dict[str, str]]]:
    """The window's rows: the account's own requests (one range of the table), then
    others' that presented one of its credentials; each as (events, names)."""
    t = ACCOUNT_REQUESTS.c
    window = [t.occurred_at >= start, *([t.occurred_at <= end] if end is not None else [])]
    last = f"{account_id} {end}!" if end is not None else f"{account_id}!"
    found = list(conn.execute(select(t.events, t.names, t.occurred_at).where(
        t.key >= f"{account_id} {start}", t.key < last)))
    if credentials:
        found += conn.execute(select(t.events, t.names, t.occurred_at).where(and_(
            t.credential_id.in_(list(credentials)), t.account_id != account_id,
            *window))).all()
    return [(expanded(orjson.loads(events), at), orjson.loads(names))
            for events, names, at in found]


PROJECTION = Projection("account_requests", (ACCOUNT_REQUESTS,), reads, fold)

__all__ = ["ACCOUNT_REQUESTS", "NAMELESS", "PROJECTION", "WITH_PAYLOAD", "requests_of"]
