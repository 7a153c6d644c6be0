"""The fraud detector's rules: seed 001's "transactions made in owners' names because
their passwords were disclosed", caught on the event stream.

Each rule is a pure function of one request (its first recorded event, in the event
contract's shape) and the state learned from earlier requests; it gives a named signal
whose weight is a setting. A request's score is the sum of the weights of the distinct
signals that apply to it; at `threshold` (a setting, default 0.7) it raises an alert.
The weights below were tuned on a simulated history (bench/audit.py, seed 11) and
checked on another (seed 20250101): see bench/results/audit.json.

The rules, and why each one
---------------------------
unfamiliar_device (0.35)
    The request comes from a device the account has not used in a session that passed a
    day without alert. A thief holds the password, not the owner's laptop: every
    campaign request comes from a device the victim never used. People also buy phones,
    so alone it is not enough. Silent until the account has `min_sessions` learned.
unfamiliar_ip (0.25)
    The same for the client's ip address. Alone it is weaker still: home addresses
    change. A new device on a new address (0.60) is still below the threshold: a
    thief's night needs one more sign.
off_hours (0.30)
    No learned session of the account started within `habit_margin_hours` of this Riyadh
    hour (UTC+3): with `habit_min_sessions` learned, at any hour; with fewer, only at
    night (Riyadh `night_from_hour` to `night_to_hour`). Thieves act while the owner
    sleeps and cannot see the portal's notices; owners keep their hours.
sensitive_burst (0.30, for the whole session)
    At least `burst_min` sensitive requests in one session: the catalogue's `sensitive`
    services (absence reports, final exits, delegate and agent registrations, and
    service transfers where the establishment is the current employer releasing the
    worker — "transfers out"), refused attempts included. Owners file these one at a
    time; a thief empties an establishment in one sitting. It applies to every request
    of the session, the login before the blows included, so those are alerted when the
    burst comes.
after_credential_change (0.25)
    Requests within `after_change_hours` of a password or e-mail change that was made
    from an unfamiliar device, from that device or another unfamiliar one. Taking the
    account over (a new e-mail hides the notices, a new password locks the owner out)
    is how a thief keeps it.
failed_then_success (0.15, for the whole session)
    A successful login after at least `failed_min` failed logins within
    `failed_window_minutes`: trying leaked or guessed passwords. Owners mistype too
    (about one login in fifty), so it only adds to other signs.
shared_ip (0.20)
    The ip has been used by at least `shared_ip_accounts` unrelated accounts. Accounts
    are related when one acts on behalf of the other (an owner, its delegates and its
    agent; an agent and all its principals). One address working many owners' accounts
    is a broker of leaked credentials.
shared_device (0.30)
    The device has been used by at least `shared_device_accounts` unrelated accounts.
    A device is one person's: the thief's phone that then serves the accomplice's
    account, to pick up the workers just reported absent, is the signature of seed
    001's schemes.
delegate_out_of_grant (0.30)
    A delegate refused by an AUTH_DELEGATE_* rule: trying services or establishments
    outside its grant is probing what a stolen delegate credential can do.
alerted_device (0.30)
    The request came from an unfamiliar device that raised an alert on the same account
    within the day, before or after it. A thief's night is one story told over several
    sittings: a first sitting with a single blow is alerted when the second one is.

How it learns, and why that way
-------------------------------
State per account: the devices and ips it trusts, the Riyadh hours its sessions start
at (once a session: a bootstrap's long sitting is one habit, not a hundred), its last
credential change, its recent failed logins, and what it has not learned yet, by
device. A device's sessions teach the account only once the device has been in use for
`learn_after_hours` without raising an alert; a device that raised one never teaches.
So every request of a thief's night is unfamiliar, not just the first, and no thief
trains the detector to trust its phone. State per session: its request and sensitive
counts, its session-wide signals, its first `session_entries_cap` requests (to alert
them when a session-wide signal arrives). State per ip and per device: the groups of
related accounts seen on it. Requests by staff and integrations (office and
integration channels, roles system, office_clerk, auditor) are not scored: no portal
password of theirs can leak.

The same `observe` step runs in the projections runner (projections/fraud_alerts.py,
state in tables, exactly once with the offsets) and in memory (`Detector`: the
credential audit, the benchmark, the tests).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, ClassVar, Final

import orjson
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from domain.catalogue import CATALOGUE

Record = dict[str, Any]
Row = dict[str, Any]

UNFAMILIAR_DEVICE: Final = "unfamiliar_device"
UNFAMILIAR_IP: Final = "unfamiliar_ip"
OFF_HOURS: Final = "off_hours"
SENSITIVE_BURST: Final = "sensitive_burst"
AFTER_CREDENTIAL_CHANGE: Final = "after_credential_change"
FAILED_THEN_SUCCESS: Final = "failed_then_success"
SHARED_IP: Final = "shared_ip"
SHARED_DEVICE: Final = "shared_device"
DELEGATE_OUT_OF_GRANT: Final = "delegate_out_of_grant"
ALERTED_DEVICE: Final = "alerted_device"
SIGNALS: Final = (UNFAMILIAR_DEVICE, UNFAMILIAR_IP, OFF_HOURS, SENSITIVE_BURST,
                  AFTER_CREDENTIAL_CHANGE, FAILED_THEN_SUCCESS, SHARED_IP, SHARED_DEVICE,
                  DELEGATE_OUT_OF_GRANT, ALERTED_DEVICE)
# Signals that, once raised in a session, apply to all of its requests.
SESSION_SIGNALS: Final = frozenset({SENSITIVE_BURST, FAILED_THEN_SUCCESS})
DEFAULT_WEIGHTS: Final[dict[str, float]] = {
    UNFAMILIAR_DEVICE: 0.35, UNFAMILIAR_IP: 0.25, OFF_HOURS: 0.30, SENSITIVE_BURST: 0.30,
    AFTER_CREDENTIAL_CHANGE: 0.25, FAILED_THEN_SUCCESS: 0.15, SHARED_IP: 0.20,
    SHARED_DEVICE: 0.30, DELEGATE_OUT_OF_GRANT: 0.30, ALERTED_DEVICE: 0.30,
}
ALERT_KIND: Final = "credential_misuse"

IGNORED_ROLES: Final = frozenset({"system", "office_clerk", "auditor"})
IGNORED_CHANNELS: Final = frozenset({"office", "integration"})
CREDENTIAL_SERVICES: Final = frozenset({"account.password_changed", "account.email_changed"})
CREDENTIAL_EVENTS: Final = frozenset({"account.password_changed", "account.email_changed"})
TRANSFER: Final = "worker.service_transfer"
FAILED_KEPT: Final = 10
ALERTED_KEPT: Final = 64


class FraudSettings(BaseSettings):
    """The detector's figures; override with SIJIL_FRAUD_<NAME> (weights as JSON)."""

    model_config = SettingsConfigDict(env_prefix="SIJIL_FRAUD_", frozen=True, extra="ignore")

    threshold: float = Field(default=0.7, description="the score at which a request alerts")
    weights: dict[str, float] = Field(default_factory=lambda: dict(DEFAULT_WEIGHTS))
    min_sessions: int = Field(default=1, ge=1, description="learned sessions before a "
                                                            "device or ip can be unfamiliar")
    learn_after_hours: float = 24.0  # a device's sessions teach once it is this old
    habit_min_sessions: int = 10
    habit_margin_hours: int = 2
    night_from_hour: int = 0  # Riyadh, inclusive
    night_to_hour: int = 6  # Riyadh, exclusive
    riyadh_offset_hours: int = 3
    burst_min: int = 2
    after_change_hours: float = 24.0
    failed_window_minutes: float = 30.0
    failed_min: int = 1
    shared_ip_accounts: int = 3
    shared_device_accounts: int = 2
    known_cap: int = 16  # devices and ips trusted per account, the most recent kept
    groups_cap: int = 32  # groups of accounts remembered per ip or device
    session_entries_cap: int = 64
    device_entries_cap: int = 32

    def weight(self, name: str) -> float:
        return float(self.weights.get(name, DEFAULT_WEIGHTS.get(name, 0.0)))

    def score(self, names: Iterable[str]) -> float:
        return round(sum(self.weight(n) for n in set(names)), 4)

    def alerts(self, score: float) -> bool:
        return score >= self.threshold - 1e-9


# -- what one request is --------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Facts:
    """One request as the rules see it, from its first recorded event."""

    request_id: str
    account_id: str
    principal: str | None  # the account it acts on behalf of
    role: str
    channel: str
    credential_id: str | None
    session_id: str
    device_id: str
    ip: str
    occurred_at: str
    hour: int  # Riyadh
    service: str
    event_type: str
    establishment_id: str | None
    sensitive: bool
    refused: bool
    rule: str | None
    position: int


def watched(record: Record) -> bool:
    """Requests made with a portal credential: owners, delegates, agents, their
    connectors. Staff and integrations have no password to leak."""
    q = record["request"]
    return q["actor"]["role"] not in IGNORED_ROLES and q["channel"] not in IGNORED_CHANNELS


def transfer_out(record: Record) -> bool:
    """A service transfer requested by the worker's current employer: a release."""
    p = record["payload"]
    if record["event_type"] == "worker.service_transferred":
        return bool(p.get("basis") == "employer_release")
    if record["event_type"] == "request.rejected" and p.get("service") == TRANSFER:
        to = (p.get("request_payload") or {}).get("to_establishment_id")
        return to is not None and to != record["establishment_id"]
    return False


def sensitive(record: Record) -> bool:
    """The catalogue's sensitive services, transfers only when out; credential changes
    have their own rule."""
    code = record["request"]["service"]
    entry = CATALOGUE.get(code)
    if entry is None or not entry.sensitive or code in CREDENTIAL_SERVICES:
        return False
    return transfer_out(record) if code == TRANSFER else True


def request_establishment(record: Record) -> str | None:
    """The establishment that made the request. A transfer's first event sits with the
    receiver; a release was requested by the employer it leaves."""
    if record["event_type"] == "worker.service_transferred":
        p = record["payload"]
        return str(p["from_establishment_id"] if p.get("basis") == "employer_release"
                   else p["to_establishment_id"])
    establishment: str | None = record["establishment_id"]
    return establishment


def facts_of(record: Record, s: FraudSettings) -> Facts:
    q = record["request"]
    actor = q["actor"]
    at = record["occurred_at"]
    refused = record["event_type"] == "request.rejected"
    return Facts(
        request_id=q["request_id"], account_id=actor["account_id"],
        principal=actor.get("on_behalf_of"), role=actor["role"], channel=q["channel"],
        credential_id=q["auth"].get("credential_id"), session_id=q["session_id"],
        device_id=q["client"]["device_id"], ip=q["client"]["ip"], occurred_at=at,
        hour=(int(at[11:13]) + s.riyadh_offset_hours) % 24, service=q["service"],
        event_type=record["event_type"], establishment_id=request_establishment(record),
        sensitive=sensitive(record), refused=refused,
        rule=record["payload"].get("rule") if refused else None,
        position=record["position"])


def hours_before(moment: str, hours: float) -> str:
    """The contract's timestamp (`%Y-%m-%dT%H:%M:%S.%fZ`) `hours` earlier, in the same
    format, so that the strings compare. `isoformat` rather than `strftime`: the same
    text in less than half the time, and the detector asks this for nearly every request."""
    at = datetime.fromisoformat(moment[:-1] if moment.endswith("Z") else moment)
    earlier = at.replace(tzinfo=None) - timedelta(hours=hours)
    return earlier.isoformat(timespec="microseconds") + "Z"


# -- state ----------------------------------------------------------------------------
@dataclass
class AccountState:
    account_id: str
    sessions: int = 0  # sessions learned
    devices: list[str] = field(default_factory=list)  # trusted, the latest last
    ips: list[str] = field(default_factory=list)
    hours: list[int] = field(default_factory=lambda: [0] * 24)  # sessions by start hour
    change: dict[str, Any] | None = None  # the last credential change: at, device, ...
    failed: list[str] = field(default_factory=list)  # recent failed logins' occurred_at
    # Not learned yet, by device: first_at, sessions, ips, hours, alerted, entries.
    pending: dict[str, dict[str, Any]] = field(default_factory=dict)
    alerted: list[str] = field(default_factory=list)  # request ids lately alerted
    session_id: str = ""  # the session in progress
    last_position: int = 0
    last_request_id: str = ""

    _BODY: ClassVar[tuple[str, ...]] = ("devices", "ips", "hours", "change", "failed",
                                        "pending", "alerted", "session_id",
                                        "last_request_id")

    def to_row(self) -> Row:
        body = {k: getattr(self, k) for k in self._BODY}
        return {"account_id": self.account_id, "sessions": self.sessions,
                "last_position": self.last_position, "state": orjson.dumps(body).decode()}

    @classmethod
    def from_row(cls, row: Row) -> AccountState:
        body = orjson.loads(row["state"])
        return cls(account_id=row["account_id"], sessions=row["sessions"],
                   last_position=row["last_position"], **body)


@dataclass
class SessionState:
    session_id: str
    account_id: str
    started_at: str
    requests: int = 0
    sensitive: int = 0
    alerted: bool = False
    signals: list[str] = field(default_factory=list)  # session-wide
    entries: list[dict[str, Any]] = field(default_factory=list)

    def to_row(self) -> Row:
        return {"session_id": self.session_id, "account_id": self.account_id,
                "started_at": self.started_at, "requests": self.requests,
                "sensitive": self.sensitive, "alerted": self.alerted,
                "state": orjson.dumps({"signals": self.signals,
                                       "entries": self.entries}).decode()}

    @classmethod
    def from_row(cls, row: Row) -> SessionState:
        body = orjson.loads(row["state"])
        return cls(session_id=row["session_id"], account_id=row["account_id"],
                   started_at=row["started_at"], requests=row["requests"],
                   sensitive=row["sensitive"], alerted=bool(row["alerted"]),
                   signals=body["signals"], entries=body["entries"])


@dataclass
class ClientState:
    """An ip address or a device, and the groups of related accounts seen using it."""

    key: str
    groups: list[list[str]] = field(default_factory=list)

    def to_row(self, column: str) -> Row:
        return {column: self.key, "accounts": len(self.groups),
                "groups": orjson.dumps(self.groups).decode()}

    @classmethod
    def from_row(cls, row: Row, column: str) -> ClientState:
        return cls(key=row[column], groups=orjson.loads(row["groups"]))

    def add(self, account_id: str, principal: str | None, cap: int) -> None:
        """Related accounts share a group: an agent for three owners is one group with
        them, not four; so is an owner with its delegates. When the groups change they
        are replaced by a new list, never edited in place: a reader holding the old list
        can tell (projections/fraud_alerts.py does not write an unchanged row again)."""
        # Lists, not sets: a group is a few accounts, and most requests find theirs.
        for group in self.groups:
            if account_id in group and (not principal or principal in group):
                return
        merged = {account_id, principal} if principal else {account_id}
        apart = []
        for group in self.groups:
            if account_id in group or (principal and principal in group):
                merged.update(group)
            else:
                apart.append(group)
        self.groups = [*apart, sorted(merged)]
        del self.groups[:-cap]


def is_new_request(account: AccountState, record: Record) -> bool:
    """The first event of a request not yet observed: a request's events are contiguous
    in the store's order, and a redelivered record is behind the account's position."""
    return bool(record["position"] > account.last_position
                and record["request"]["request_id"] != account.last_request_id)


# -- the rules: pure functions ----------------------------------------------------------
def unfamiliar_device(account: AccountState, f: Facts, s: FraudSettings) -> bool:
    return account.sessions >= s.min_sessions and f.device_id not in account.devices


def unfamiliar_ip(account: AccountState, f: Facts, s: FraudSettings) -> bool:
    return account.sessions >= s.min_sessions and f.ip not in account.ips


def off_hours(account: AccountState, f: Facts, s: FraudSettings) -> bool:
    worked = [w for w in range(24) if account.hours[w]]
    h = f.hour
    distance = min((min((h - w) % 24, (w - h) % 24) for w in worked), default=24)
    if distance <= s.habit_margin_hours:
        return False
    return (account.sessions >= s.habit_min_sessions
            or s.night_from_hour <= h < s.night_to_hour)


def sensitive_burst(session: SessionState, s: FraudSettings) -> bool:
    return session.sensitive >= s.burst_min


def after_credential_change(account: AccountState, f: Facts, s: FraudSettings,
                            device_unfamiliar: bool) -> bool:
    change = account.change
    if not change or not change["unfamiliar"] or f.event_type in CREDENTIAL_EVENTS:
        return False
    if change["at"] < hours_before(f.occurred_at, s.after_change_hours):
        return False
    return f.device_id == change["device"] or device_unfamiliar


def failed_then_success(failed: list[str], f: Facts, s: FraudSettings) -> bool:
    if f.event_type != "account.logged_in":
        return False
    since = hours_before(f.occurred_at, s.failed_window_minutes / 60)
    return sum(1 for t in failed if t >= since) >= s.failed_min


def shared_ip(ip: ClientState, s: FraudSettings) -> bool:
    return len(ip.groups) >= s.shared_ip_accounts


def shared_device(device: ClientState, s: FraudSettings) -> bool:
    return len(device.groups) >= s.shared_device_accounts


def delegate_out_of_grant(f: Facts) -> bool:
    return f.refused and f.role == "delegate" and (f.rule or "").startswith("AUTH_DELEGATE_")


def alerted_device(account: AccountState, f: Facts, device_unfamiliar: bool) -> bool:
    pending = account.pending.get(f.device_id)
    return device_unfamiliar and pending is not None and bool(pending["alerted"])


# -- one request observed ---------------------------------------------------------------
@dataclass(frozen=True)
class Assessment:
    facts: Facts
    signals: tuple[str, ...]  # the request's own and its session's, so far
    score: float
    alerted: bool


@dataclass
class Observation:
    assessment: Assessment
    own: tuple[str, ...]
    alerts: list[Row]


def observe(account: AccountState, session: SessionState, ip: ClientState,
            device: ClientState, record: Record, s: FraudSettings) -> Observation:
    """Score a request's first event and learn from it: mutates the states and returns
    the alert rows to write — this request's, and earlier ones that a session-wide
    signal or an alert on the same new device just lifted over the threshold."""
    f = facts_of(record, s)
    _mature(account, f, s)
    ip.add(f.account_id, f.principal, s.groups_cap)
    device.add(f.account_id, f.principal, s.groups_cap)

    device_new = unfamiliar_device(account, f, s)
    checks = (
        (UNFAMILIAR_DEVICE, device_new),
        (UNFAMILIAR_IP, unfamiliar_ip(account, f, s)),
        (OFF_HOURS, off_hours(account, f, s)),
        (AFTER_CREDENTIAL_CHANGE, after_credential_change(account, f, s, device_new)),
        (SHARED_IP, shared_ip(ip, s)),
        (SHARED_DEVICE, shared_device(device, s)),
        (DELEGATE_OUT_OF_GRANT, delegate_out_of_grant(f)),
        (ALERTED_DEVICE, alerted_device(account, f, device_new)),
    )
    own = tuple(name for name, fired in checks if fired)

    before = set(session.signals)
    session.requests += 1
    session.sensitive += int(f.sensitive)
    if sensitive_burst(session, s):
        _add(session.signals, SENSITIVE_BURST)
    if failed_then_success(account.failed, f, s):
        _add(session.signals, FAILED_THEN_SUCCESS)
    _learn_request(account, f, device_new)

    signals = tuple(sorted(set(own) | set(session.signals)))
    score = s.score(signals)
    alerted = s.alerts(score)
    entry = {**_alert_fields(f), "own": list(own), "alerted": alerted}
    alerts: list[Row] = []
    if set(session.signals) != before:  # a session-wide signal: earlier requests too
        for earlier in session.entries:
            _escalate(account, earlier, session.signals, s, alerts)
    if alerted:
        account.alerted = [*account.alerted, f.request_id][-ALERTED_KEPT:]
        alerts.append(alert_row(entry, score, signals))
    pending = account.pending[f.device_id]
    if alerted and device_new and not pending["alerted"]:
        pending["alerted"] = True  # earlier requests from this new device too
        for earlier in pending["entries"]:
            _escalate(account, earlier, [ALERTED_DEVICE], s, alerts)
    if len(session.entries) < s.session_entries_cap:
        session.entries.append(entry)
    if device_new and len(pending["entries"]) < s.device_entries_cap:
        pending["entries"].append(entry)
    session.alerted = session.alerted or bool(alerts)
    account.last_position = f.position
    account.last_request_id = f.request_id
    return Observation(Assessment(f, signals, score, alerted), own, alerts)


def _escalate(account: AccountState, entry: dict[str, Any], extra: Iterable[str],
              s: FraudSettings, alerts: list[Row]) -> None:
    """An earlier request, with signals that arrived since: alerted once at most."""
    if entry["alerted"] or entry["request_id"] in account.alerted:
        entry["alerted"] = True
        return
    names = sorted(set(entry["own"]) | set(extra))
    score = s.score(names)
    if s.alerts(score):
        entry["alerted"] = True
        entry["own"] = names
        account.alerted = [*account.alerted, entry["request_id"]][-ALERTED_KEPT:]
        alerts.append(alert_row(entry, score, names))


def _add(names: list[str], name: str) -> None:
    if name not in names:
        names.append(name)


def _remember(items: list[str], item: str, cap: int) -> None:
    """Keep the most recent `cap` distinct items, the latest last."""
    if item in items:
        items.remove(item)
    items.append(item)
    del items[:-cap]


def _mature(account: AccountState, f: Facts, s: FraudSettings) -> None:
    """Devices in use for `learn_after_hours` teach the account their sessions, unless
    they raised an alert; then note this request's device, ip and session."""
    if account.pending:
        cutoff = hours_before(f.occurred_at, s.learn_after_hours)
        for name in [d for d, p in account.pending.items() if p["first_at"] < cutoff]:
            done = account.pending.pop(name)
            if done["alerted"]:
                continue
            account.sessions += done["sessions"]
            _remember(account.devices, name, s.known_cap)
            for ip in done["ips"]:
                _remember(account.ips, ip, s.known_cap)
            for hour in done["hours"]:
                account.hours[hour] += 1
    p = account.pending.get(f.device_id)
    if p is None:
        p = account.pending[f.device_id] = {"first_at": f.occurred_at, "sessions": 0,
                                            "ips": [], "hours": [], "alerted": False,
                                            "entries": []}
    if f.session_id != account.session_id:
        account.session_id = f.session_id
        p["sessions"] += 1
        p["hours"].append(f.hour)
    if f.ip not in p["ips"]:
        p["ips"].append(f.ip)


def _learn_request(account: AccountState, f: Facts, device_new: bool) -> None:
    if f.event_type == "account.login_failed":
        account.failed = [*account.failed, f.occurred_at][-FAILED_KEPT:]
    elif f.event_type == "account.logged_in":
        account.failed = []
    if f.event_type in CREDENTIAL_EVENTS:
        account.change = {"at": f.occurred_at, "device": f.device_id, "kind": f.event_type,
                          "unfamiliar": device_new}


def _alert_fields(f: Facts) -> dict[str, Any]:
    return {"request_id": f.request_id, "account_id": f.account_id,
            "credential_id": f.credential_id, "session_id": f.session_id,
            "device_id": f.device_id, "ip": f.ip, "establishment_id": f.establishment_id,
            "service": f.service, "occurred_at": f.occurred_at, "position": f.position}


def alert_id(request_id: str) -> str:
    """A request's alert's id: one alert a request, so readers dedupe and look it up."""
    return f"fraud:{request_id}"


def alert_row(entry: dict[str, Any], score: float, signals: Iterable[str]) -> Row:
    """The outbox row of one alerted request; its id is stable, so readers dedupe."""
    return {"alert_id": alert_id(entry["request_id"]), "kind": ALERT_KIND,
            "request_id": entry["request_id"], "score": score,
            "signals": orjson.dumps(sorted(signals)).decode(),
            "account_id": entry["account_id"], "credential_id": entry["credential_id"],
            "session_id": entry["session_id"], "device_id": entry["device_id"],
            "ip": entry["ip"], "establishment_id": entry["establishment_id"],
            "service": entry["service"], "occurred_at": entry["occurred_at"],
            "position": entry["position"], "published": False}


# -- in memory ------------------------------------------------------------------------
@dataclass
class Scored:
    """A request's verdict at the end: its own signals, its session's, and those its
    alert was raised with."""

    facts: Facts
    signals: tuple[str, ...]
    score: float
    alerted: bool


def verdict(facts: Facts, own: Iterable[str], session_signals: Iterable[str],
            alert_signals: Iterable[str] | None, s: FraudSettings) -> Scored:
    """A request's verdict from what the detector kept of it: its own signals when it was
    observed, its session's session-wide signals as they stand now, and the signals of
    its alert if one was raised (None: no alert). The in-memory detector and the read
    models (projections/fraud_verdicts.py) keep the same three things."""
    signals = tuple(sorted(set(own) | set(session_signals) | set(alert_signals or ())))
    return Scored(facts, signals, s.score(signals), alert_signals is not None)


class Detector:
    """The detector over records in memory, in store order: the same `observe` the
    projection folds, with the state in dicts."""

    def __init__(self, settings: FraudSettings | None = None, *,
                 keep_requests: bool = True) -> None:
        self.settings = settings or FraudSettings()
        self.accounts: dict[str, AccountState] = {}
        self.sessions: dict[str, SessionState] = {}
        self.ips: dict[str, ClientState] = {}
        self.devices: dict[str, ClientState] = {}
        self.alerts: list[Row] = []
        self.keep_requests = keep_requests
        self._requests: dict[str, tuple[Facts, tuple[str, ...]]] = {}
        self._alerted: dict[str, tuple[str, ...]] = {}

    def feed(self, record: Record) -> Observation | None:
        if not watched(record):
            return None
        q = record["request"]
        account_id = q["actor"]["account_id"]
        account = self.accounts.get(account_id)
        if account is None:
            account = self.accounts[account_id] = AccountState(account_id)
        if not is_new_request(account, record):
            return None
        session = self.sessions.get(q["session_id"])
        if session is None:
            session = self.sessions[q["session_id"]] = SessionState(
                q["session_id"], account_id, record["occurred_at"])
        seen = observe(account, session, _client(self.ips, q["client"]["ip"]),
                       _client(self.devices, q["client"]["device_id"]), record,
                       self.settings)
        self.alerts += seen.alerts
        if self.keep_requests:
            self._requests[seen.assessment.facts.request_id] = (seen.assessment.facts,
                                                                seen.own)
            for alert in seen.alerts:
                self._alerted[alert["request_id"]] = tuple(orjson.loads(alert["signals"]))
        return seen

    def run(self, records: Iterable[Record]) -> Detector:
        for record in records:
            self.feed(record)
        return self

    def alerted_requests(self) -> set[str]:
        return {a["request_id"] for a in self.alerts}

    def scored(self, request_id: str) -> Scored | None:
        found = self._requests.get(request_id)
        if found is None:
            return None
        facts, own = found
        session = self.sessions.get(facts.session_id)
        return verdict(facts, own, session.signals if session else (),
                       self._alerted.get(request_id), self.settings)

    def all_scored(self) -> list[Scored]:
        out = [self.scored(r) for r in self._requests]
        return [s for s in out if s is not None]


def _client(table: dict[str, ClientState], key: str) -> ClientState:
    found = table.get(key)
    if found is None:
        found = table[key] = ClientState(key)
    return found


__all__ = ["ALERT_KIND", "SIGNALS", "AccountState", "Assessment", "ClientState", "Detector",
           "Facts", "FraudSettings", "Observation", "Scored", "SessionState",
           "after_credential_change", "alert_id", "alerted_device", "delegate_out_of_grant",
           "facts_of", "failed_then_success", "is_new_request", "observe", "off_hours",
           "request_establishment", "sensitive", "sensitive_burst", "shared_device",
           "shared_ip", "transfer_out", "unfamiliar_device", "unfamiliar_ip", "verdict",
           "watched"]
