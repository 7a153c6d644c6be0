"""Fraud alerts: the leaked-credential detector (domain/fraud.py, its rules and why)
run as a fold, so that it scores every request exactly once, in the store's order, in
the projections runner's transaction — and so that it rebuilds from offset 0 like any
read model.

State is four tables: per account (trusted devices and ips, habitual hours, what is not
learned yet), per session (counts, session-wide signals, the requests an arriving
session-wide signal may still alert), per ip and per device (the groups of related
accounts seen on it).
Alerts are rows in an outbox (`fraud_alerts`), one per alerted request with a stable id
(`fraud:<request_id>`), which consumers/alerts.py relays to the fraud alerts topic.
"""

from __future__ import annotations

from collections.abc import Iterable

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
from projections.rows import Key, Projection, Record, Rows

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
SETTINGS = FraudSettings()


def reads(record: Record) -> Iterable[tuple[str, Key]]:
    if not watched(record):
        return []
    q = record["request"]
    return [("fraud_accounts", (q["actor"]["account_id"],)),
            ("fraud_sessions", (q["session_id"],)), ("fraud_ips", (q["client"]["ip"],)),
            ("fraud_devices", (q["client"]["device_id"],))]


def fold(rows: Rows, record: Record) -> None:
    if not watched(record):
        return
    q = record["request"]
    account_id, session_id = q["actor"]["account_id"], q["session_id"]
    ip_address, device_id = q["client"]["ip"], q["client"]["device_id"]
    found = rows.get("fraud_accounts", (account_id,))
    account = AccountState.from_row(found) if found else AccountState(account_id)
    if not is_new_request(account, record):
        return
    found = rows.get("fraud_sessions", (session_id,))
    session = (SessionState.from_row(found) if found
               else SessionState(session_id, account_id, record["occurred_at"]))
    found = rows.get("fraud_ips", (ip_address,))
    ip = ClientState.from_row(found, "ip") if found else ClientState(ip_address)
    found = rows.get("fraud_devices", (device_id,))
    device = ClientState.from_row(found, "device_id") if found else ClientState(device_id)
    seen = observe(account, session, ip, device, record, SETTINGS)
    rows.put("fraud_accounts", (account_id,), account.to_row())
    rows.put("fraud_sessions", (session_id,), session.to_row())
    rows.put("fraud_ips", (ip_address,), ip.to_row("ip"))
    rows.put("fraud_devices", (device_id,), device.to_row("device_id"))
    for alert in seen.alerts:
        rows.append("fraud_alerts", alert)


PROJECTION = Projection("fraud_alerts", (ALERTS, ACCOUNTS, SESSIONS, IPS, DEVICES), reads,
                        fold)
# For projections/catalog.py: ALL = (..., *fraud_alerts.PROJECTIONS)
PROJECTIONS: tuple[Projection, ...] = (PROJECTION,)
