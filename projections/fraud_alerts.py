"""Fraud alerts: the leaked-credential detector (domain/fraud.py, its rules and why)
run as a fold, so that it scores every request exactly once, in the store's order, in
the projections runner's transaction — and so that it rebuilds from offset 0 like any
read model.

State is four tables: per account (trusted devices and ips, habitual hours, what is not
learned yet), per session (counts, session-wide signals, the requests an arriving
session-wide signal may still alert), per ip and per device (the groups of related
accounts seen on it). Beside them, each scored request's own signals
(`fraud_request_signals`, only when it has some): the verdicts the credential audit reads
(projections/fraud_verdicts.py).
Alerts are rows in an outbox (`fraud_alerts`), one per alerted request with a stable id
(`fraud:<request_id>`), which consumers/alerts.py relays to the fraud alerts topic.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable
from typing import Any, TypeVar

import orjson
from sqlalchemy import Boolean, Column, Float, Index, Integer, String, Table, Text

from domain.fraud import (
    AccountState,
    ClientState,
    FraudSettings,
    SessionState,
    is_new_request,
    observe,
    watched,
)
from projections.database import METADATA
from projections.rows import Key, Projection, Record, Row, Rows

ALERTS = Table(
    "fraud_alerts", METADATA,
    Column("alert_id", String(140), primary_key=True),
    Column("kind", String(24), nullable=False),
    Column("request_id", String(128), nullable=False),
    Column("score", Float, nullable=False),
    Column("signals", Text, nullable=False),  # JSON list of signal names
    Column("account_id", String(64), nullable=False),
    Column("credential_id", String(128)),
    Column("session_id", String(128)),
    Column("device_id", String(128)),
    Column("ip", String(45)),
    Column("establishment_id", String(16)),
    Column("service", String(48), nullable=False),
    Column("occurred_at", String(27), nullable=False),
    Column("position", Integer, nullable=False),
    Column("published", Boolean, nullable=False, default=False),
    Index("fraud_alerts_unpublished", "published", "position"),
    Index("fraud_alerts_by_account", "account_id", "occurred_at"),
    Index("fraud_alerts_by_establishment", "establishment_id", "occurred_at"),
)
ACCOUNTS = Table(
    "fraud_accounts", METADATA,
    Column("account_id", String(64), primary_key=True),
    Column("sessions", Integer, nullable=False),
    Column("last_position", Integer, nullable=False),
    Column("state", Text, nullable=False),  # JSON: see domain.fraud.AccountState
)
SESSIONS = Table(
    "fraud_sessions", METADATA,
    Column("session_id", String(128), primary_key=True),
    Column("account_id", String(64), nullable=False),
    Column("started_at", String(27), nullable=False),
    Column("requests", Integer, nullable=False),
    Column("sensitive", Integer, nullable=False),
    Column("alerted", Boolean, nullable=False),
    Column("state", Text, nullable=False),  # JSON: session-wide signals, entries
)
IPS = Table(
    "fraud_ips", METADATA,
    Column("ip", String(45), primary_key=True),
    Column("accounts", Integer, nullable=False),
    Column("groups", Text, nullable=False),  # JSON: lists of related accounts
)
DEVICES = Table(
    "fraud_devices", METADATA,
    Column("device_id", String(128), primary_key=True),
    Column("accounts", Integer, nullable=False),
    Column("groups", Text, nullable=False),  # JSON: lists of related accounts
)
# A request's own signals, as `observe` gave them when it was scored: with its session's
# session-wide signals and its alert (if any) they make its verdict (domain.fraud.verdict),
# which the credential audit reads instead of replaying the account's history. Only
# requests with a signal of their own get a row: most have none.
REQUEST_SIGNALS = Table(
    "fraud_request_signals", METADATA,
    Column("request_id", String(128), primary_key=True),
    Column("account_id", String(64), nullable=False),
    Column("session_id", String(128), nullable=False),
    Column("position", Integer, nullable=False),
    Column("signals", Text, nullable=False),  # JSON list of signal names
)
SETTINGS = FraudSettings()


def reads(record: Record) -> Iterable[tuple[str, Key]]:
    if not watched(record):
        return []
    q = record["request"]
    return [("fraud_accounts", (q["actor"]["account_id"],)),
            ("fraud_sessions", (q["session_id"],)), ("fraud_ips", (q["client"]["ip"],)),
            ("fraud_devices", (q["client"]["device_id"],))]


State = TypeVar("State", AccountState, SessionState, ClientState)


class KeptStates:
    """The state objects the fold last wrote, by the row they were written as.

    Parsing a state's JSON is most of the fold's cost (a session's entries, an account's
    pending devices), and the next request of the same account, session, ip or device
    reads back the row just written: it takes the object instead. An object is taken
    once, since the fold mutates it; a row read again after that (a batch rolled back
    and retried, a row evicted and reloaded, a second reader of the same records) is
    parsed. So a fold sees exactly what parsing its row would give, whoever holds it.
    """

    def __init__(self, capacity: int = 200_000) -> None:
        self.capacity = capacity
        # By table and the identity of the row's JSON text: hashing the text itself
        # would cost more than parsing a small one. The text is kept with the object,
        # alive (so its id is not reused) and compared by identity: only this fold
        # writes these rows, always whole, so a row holding that very text is (a copy
        # of) the row written with the object.
        self.states: OrderedDict[tuple[str, int], tuple[str, Any]] = OrderedDict()

    def take(self, table: str, row: Row, kind: type[State]) -> State | None:
        text = row[JSON_COLUMN[table]]
        found = self.states.pop((table, id(text)), None)
        if found is None or found[0] is not text or not isinstance(found[1], kind):
            return None
        return found[1]

    def keep(self, table: str, row: Row, state: AccountState | SessionState | ClientState
             ) -> None:
        text = row[JSON_COLUMN[table]]
        self.states[(table, id(text))] = (text, state)
        if len(self.states) > self.capacity:
            self.states.popitem(last=False)


JSON_COLUMN = {"fraud_accounts": "state", "fraud_sessions": "state", "fraud_ips": "groups",
               "fraud_devices": "groups"}
KEPT = KeptStates()


def _account(found: Row | None, account_id: str) -> AccountState:
    if found is None:
        return AccountState(account_id)
    return KEPT.take("fraud_accounts", found, AccountState) or AccountState.from_row(found)


def _session(found: Row | None, session_id: str, account_id: str,
             started_at: str) -> SessionState:
    if found is None:
        return SessionState(session_id, account_id, started_at)
    return KEPT.take("fraud_sessions", found, SessionState) or SessionState.from_row(found)


def _client(table: str, column: str, found: Row | None, key: str) -> ClientState:
    if found is None:
        return ClientState(key)
    return KEPT.take(table, found, ClientState) or ClientState.from_row(found, column)


def _unshared(account: AccountState, session: SessionState, device_id: str) -> None:
    """`observe` appends a request's entry to its session's and its new device's lists
    as one dict; as rows they are two, so the kept objects must not share it."""
    pending = account.pending.get(device_id)
    if pending and pending["entries"] and session.entries and (
            pending["entries"][-1] is session.entries[-1]):
        pending["entries"][-1] = dict(pending["entries"][-1])


def fold(rows: Rows, record: Record) -> None:
    if not watched(record):
        return
    q = record["request"]
    account_id, session_id = q["actor"]["account_id"], q["session_id"]
    ip_address, device_id = q["client"]["ip"], q["client"]["device_id"]
    found = rows.get("fraud_accounts", (account_id,))
    account = _account(found, account_id)
    if not is_new_request(account, record):
        if found is not None:
            KEPT.keep("fraud_accounts", found, account)  # untouched: still its row's
        return
    session = _session(rows.get("fraud_sessions", (session_id,)), session_id, account_id,
                       record["occurred_at"])
    ip_row, device_row = rows.get("fraud_ips", (ip_address,)), rows.get("fraud_devices",
                                                                         (device_id,))
    ip = _client("fraud_ips", "ip", ip_row, ip_address)
    device = _client("fraud_devices", "device_id", device_row, device_id)
    ip_groups, device_groups = ip.groups, device.groups
    seen = observe(account, session, ip, device, record, SETTINGS)
    _unshared(account, session, device_id)
    _save(rows, "fraud_accounts", account_id, account.to_row(), account)
    _save(rows, "fraud_sessions", session_id, session.to_row(), session)
    _save_client(rows, "fraud_ips", "ip", ip, ip_row, ip_groups)
    _save_client(rows, "fraud_devices", "device_id", device, device_row, device_groups)
    for alert in seen.alerts:
        rows.append("fraud_alerts", alert)
    if seen.own:
        f = seen.assessment.facts
        rows.append("fraud_request_signals", {
            "request_id": f.request_id, "account_id": f.account_id,
            "session_id": f.session_id, "position": f.position,
            "signals": orjson.dumps(list(seen.own)).decode()})


def _save(rows: Rows, table: str, key: str, row: Row,
          state: AccountState | SessionState | ClientState) -> None:
    rows.put(table, (key,), row)
    KEPT.keep(table, row, state)


def _save_client(rows: Rows, table: str, column: str, client: ClientState,
                 found: Row | None, groups_before: list[list[str]]) -> None:
    """Most requests come from an ip or device that already knows their account: its
    groups are the same list (ClientState.add replaces them when they change), so its
    row stays as it was, not serialized and written again."""
    if found is not None and client.groups is groups_before:
        KEPT.keep(table, found, client)
        return
    _save(rows, table, client.key, client.to_row(column), client)


PROJECTION = Projection("fraud_alerts", (ALERTS, ACCOUNTS, SESSIONS, IPS, DEVICES,
                                         REQUEST_SIGNALS), reads, fold)
# For projections/catalog.py: ALL = (..., *fraud_alerts.PROJECTIONS)
PROJECTIONS: tuple[Projection, ...] = (PROJECTION,)
