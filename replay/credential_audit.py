"""The fraud analyst's question (DESIGN.md, seed 001): "an owner's password leaked on
date D: which transactions did the thief make, and what did they change?"

`audit_credential(ledger, account_id, since)` answers it from the event store, the
system of record: the store's own index (domain/persistence.py, EVENT_INDEX) is asked
for the account's events (index by account) and for every event made with one of the
account's credentials since D (index by credential), and only those events are read.
A couple of queries, whatever the size of the store.

For each request made with the account's credentials since D (its own requests,
accepted and refused, in every session it opened, and any request that presented one
of its credentials): the establishment and service, the outcome, what it changed
(workers transferred out or in, absence reports filed or cancelled, final exits
requested, permissions granted or revoked, agents appointed, password and e-mail
changes, hires and permits) and the risk signals the fraud detector's rules give it.
`Audit.suspicious` is the subset that scores at the alert threshold.

Where the signals come from (`Audit.source`). Given the read models (`verdicts`,
projections/fraud_verdicts.py) and when the fraud projection has scored every request
of the window, they are the live detector's verdicts: only the window's events are
read, a few lookups whatever the account's history (an owner of a 3,000-worker
establishment has 10,000-15,000 events), and they agree with the alerts the analysts
were sent, shared-ip and shared-device rules included. Otherwise (no read models, the
projection behind the store, or other detector settings) the detector is replayed here
(domain/fraud.py, in memory) over the account's whole history: exact for the account's
own rules, linear in that history.

The shared-ip and shared-device rules need every account's use of an ip or device,
which the index does not key: a replayed audit sees only the account's own, so they are
the live detector's alone.

Where the requests come from (`Audit.requests_from`). With the read models, the window's
requests are first taken from the account's rows (projections/account_requests.py): one
range of adjacent pages, where the store would be read an event at a time from all over
its file. They are taken only when their events are exactly those the store's index
lists for the window, so a lagging or foreign read model is never believed; otherwise
the window's events are read from the store.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, Select, and_, select

from domain.collector import collector_paused
from domain.context import iso, parse_iso
from domain.fraud import Detector, FraudSettings, Scored, request_establishment
from domain.ledger import Ledger
from domain.persistence import ACCOUNT_CREDENTIALS, EVENT_INDEX
from projections.account_requests import NAMELESS
from projections.fraud_verdicts import LiveVerdicts

Record = dict[str, Any]

# Where an audit's signals come from.
LIVE = "live"  # the fraud projection's verdicts (projections/fraud_verdicts.py)
REPLAYED = "replayed"  # the detector replayed here over the account's history
# Where an audit's requests come from.
STORE = "store"  # the window's events, read from the event store
READ_MODELS = "read models"  # the account's rows (projections/account_requests.py)

# Effects a fraud analyst asks about first (seed 001: what the thief changed).
HARMFUL = frozenset({"transfer_out", "absence_report", "final_exit", "permission_granted",
                     "agent_appointed", "password_changed", "email_changed"})


@dataclass(frozen=True)
class Effect:
    """One thing a request changed."""

    kind: str
    worker_id: str | None = None
    establishment_id: str | None = None
    counterpart: str | None = None  # the other establishment, delegate or agent
    detail: str | None = None

    def describe(self) -> str:
        text = self.kind.replace("_", " ")
        if self.worker_id:
            text += f" {self.worker_id}"
        if self.counterpart:
            arrow = {"transfer_out": "→", "transfer_in": "←"}.get(self.kind, "")
            text += f" {arrow} {self.counterpart}".replace("  ", " ")
        if self.detail:
            text += f" ({self.detail})"
        return text


@dataclass(frozen=True)
class AuditedRequest:
    request_id: str
    occurred_at: str
    service: str
    establishment_id: str | None
    outcome: str  # accepted, refused
    rule: str | None
    actor_account_id: str
    role: str
    credential_id: str | None
    session_id: str
    device_id: str
    ip: str
    channel: str
    positions: tuple[int, ...]
    effects: tuple[Effect, ...]
    signals: tuple[str, ...]
    score: float
    suspicious: bool


@dataclass
class Audit:
    account_id: str
    since: str
    until: str | None
    credentials: tuple[str, ...]
    threshold: float
    requests: list[AuditedRequest] = field(default_factory=list)
    history_events: int = 0  # events read from the store
    source: str = "replayed"  # where the signals come from: LIVE or REPLAYED
    requests_from: str = "store"  # where the requests come from: STORE or READ_MODELS

    @property
    def suspicious(self) -> list[AuditedRequest]:
        return [r for r in self.requests if r.suspicious]

    def groups(self, requests: Iterable[AuditedRequest] | None = None
               ) -> dict[tuple[str, str], list[AuditedRequest]]:
        """Requests by establishment and service, in time order within each."""
        out: dict[tuple[str, str], list[AuditedRequest]] = {}
        for r in self.requests if requests is None else requests:
            out.setdefault((r.establishment_id or "-", r.service), []).append(r)
        return dict(sorted(out.items()))

    def effect_totals(self, requests: Iterable[AuditedRequest] | None = None
                      ) -> Counter[str]:
        return Counter(e.kind for r in (self.requests if requests is None else requests)
                       for e in r.effects)

    def to_json(self) -> dict[str, Any]:
        def one(r: AuditedRequest) -> dict[str, Any]:
            body = asdict(r)
            body["effects"] = [{**asdict(e), "text": e.describe()} for e in r.effects]
            return body

        return {
            "account_id": self.account_id, "since": self.since, "until": self.until,
            "credentials": list(self.credentials), "threshold": self.threshold,
            "requests": [one(r) for r in self.requests],
            "suspicious": [r.request_id for r in self.suspicious],
            "groups": [{"establishment_id": est, "service": svc,
                        "requests": [r.request_id for r in rs]}
                       for (est, svc), rs in self.groups().items()],
            "effects": dict(self.effect_totals()),
            "suspicious_effects": dict(self.effect_totals(self.suspicious)),
            "history_events": self.history_events, "signals_from": self.source,
            "requests_from": self.requests_from,
        }


def _moment(value: str | datetime) -> str:
    return iso(value if isinstance(value, datetime) else parse_iso(value))


def _engine(ledger: Ledger) -> Engine:
    engine: Engine = ledger.recorder.datastore.engine  # type: ignore[attr-defined]
    return engine


@collector_paused
def audit_credential(ledger: Ledger, account_id: str, since: str | datetime, *,
                     until: str | datetime | None = None,
                     settings: FraudSettings | None = None,
                     verdicts: LiveVerdicts | None = None) -> Audit:
    """Every request made with `account_id`'s credentials since `since` (and up to
    `until`), with its effects and risk signals; see the module docstring. With
    `verdicts` (the read models) the signals are the live detector's when it has scored
    the window; otherwise, or with other `settings`, the detector is replayed here."""
    start = _moment(since)
    end = _moment(until) if until is not None else None
    credentials, window = _index(ledger, account_id, start)
    # The read models answer only with the settings the live detector ran with.
    trusted = verdicts if verdicts is not None and settings in (None, verdicts.settings) \
        else None
    if trusted is not None:
        kept = _from_read_models(ledger, trusted, account_id, credentials, window,
                                 start, end)
        if kept is not None:
            return kept
    records = _read(ledger, [position for position, _ in window])
    chosen = _chosen(records, account_id, set(credentials), start, end)
    firsts = [r[0] for r in chosen]
    if trusted is not None and _live(ledger, trusted, firsts):
        scores = trusted.scored(firsts)
        settings, source, read = trusted.settings, LIVE, len(records)
    else:
        settings = settings or FraudSettings()
        records = _read(ledger, _before(ledger, account_id, start)) + records
        records.sort(key=lambda r: r["position"])
        detector = Detector(settings).run(records)
        scores = {f["request"]["request_id"]: s for f in firsts
                  if (s := detector.scored(f["request"]["request_id"]))}
        source, read = REPLAYED, len(records)
    names = _stream_names(ledger, [e for r in chosen for e in r],
                          verdicts if source == LIVE else None)
    audit = Audit(account_id, start, end, tuple(credentials), settings.threshold,
                  history_events=read, source=source)
    return _listing(audit, [(r, names) for r in chosen], scores)


def _listing(audit: Audit, chosen: list[tuple[list[Record], dict[str, str]]],
             scores: dict[str, Scored]) -> Audit:
    """The audit with its requests: each request's events, with the names of their
    streams, and its verdict."""
    audit.requests = [_audited(events, scores.get(events[0]["request"]["request_id"]),
                               names) for events, names in chosen]
    return audit


def _from_read_models(ledger: Ledger, verdicts: LiveVerdicts, account_id: str,
                      credentials: list[str], window: list[tuple[int, str]], start: str,
                      end: str | None) -> Audit | None:
    """The audit from the read models alone (projections/account_requests.py), when they
    hold exactly the window's events that the store's index lists and the fraud
    projection has scored them; None otherwise, and the store is read."""
    chosen = verdicts.requests(account_id, credentials, start, end)
    if chosen is None:
        return None
    held = {e["position"] for events, _ in chosen for e in events}
    if held != {p for p, at in window if end is None or at <= end}:
        return None
    chosen.sort(key=lambda row: row[0][0]["position"])
    firsts = [events[0] for events, _ in chosen]
    if not _live(ledger, verdicts, firsts):
        return None
    # The rows name the account streams; whose each worker stream is, the workers read
    # model says (projections/account_requests.py: why the rows do not).
    named = {stream for _, names in chosen for stream in names}
    workers = _stream_names(ledger, [e for events, _ in chosen for e in events
                                     if e["stream"] not in named], verdicts)
    audit = Audit(account_id, start, end, tuple(credentials), verdicts.settings.threshold,
                  history_events=0, source=LIVE, requests_from=READ_MODELS)
    return _listing(audit, [(events, {**names, **workers}) for events, names in chosen],
                    verdicts.scored(firsts))


def _live(ledger: Ledger, verdicts: LiveVerdicts, firsts: list[Record]) -> bool:
    """The read models have scored every request of the window, and are this store's."""
    def held(positions: list[int]) -> dict[int, str]:
        idx = EVENT_INDEX.c
        with _engine(ledger).connect() as conn:
            return {row.position: row.request_id for row in conn.execute(
                select(idx.position, idx.request_id).where(idx.position.in_(positions)))}

    return verdicts.covers(firsts, held)


def _index(ledger: Ledger, account_id: str, start: str
           ) -> tuple[list[str], list[tuple[int, str]]]:
    """From the store's index: the account's credentials, and the positions (with their
    times) since `start` of its own events and of those that presented one of its
    credentials."""
    idx = EVENT_INDEX.c
    with _engine(ledger).connect() as conn:
        credentials = sorted(conn.execute(_credentials_of(account_id)).scalars())
        own = conn.execute(select(idx.position, idx.occurred_at).where(and_(
            idx.account_id == account_id, idx.occurred_at >= start))).all()
        presented = conn.execute(select(idx.position, idx.occurred_at).where(and_(
            idx.credential_id.in_(credentials), idx.occurred_at >= start))).all() \
            if credentials else []
    return credentials, sorted({(p, at) for p, at in [*own, *presented]})


def _credentials_of(account_id: str) -> Select[tuple[str]]:
    """The account's credentials from the store's pairs (domain/persistence.py
    ACCOUNT_CREDENTIALS): a handful of rows, where the index holds every event's."""
    pairs = ACCOUNT_CREDENTIALS.c
    return select(pairs.credential_id).where(pairs.account_id == account_id)


def _before(ledger: Ledger, account_id: str, start: str) -> list[int]:
    """The positions of the account's events before `start`: its history."""
    idx = EVENT_INDEX.c
    with _engine(ledger).connect() as conn:
        return sorted(conn.execute(select(idx.position).where(and_(
            idx.account_id == account_id, idx.occurred_at < start))).scalars().all())


def _read(ledger: Ledger, positions: list[int]) -> list[Record]:
    notes = ledger.recorder.select_notifications_by_ids(positions)  # type: ignore[attr-defined]
    return [ledger.record_of(n) for n in notes]


def _chosen(records: list[Record], account_id: str, mine: set[str], start: str,
            end: str | None) -> list[list[Record]]:
    """The requests the audit lists: in the window, made by the account or with one of
    its credentials."""
    out = []
    for request in _requests(records):
        q = request[0]["request"]
        at = request[0]["occurred_at"]
        if at < start or (end is not None and at > end):
            continue
        if q["actor"]["account_id"] == account_id or q["auth"]["credential_id"] in mine:
            out.append(request)
    return out


def _requests(records: list[Record]) -> list[list[Record]]:
    """Records grouped by request, in the order of each request's first event."""
    out: dict[str, list[Record]] = {}
    for r in records:
        out.setdefault(r["request"]["request_id"], []).append(r)
    return list(out.values())


def _audited(events: list[Record], scored: Scored | None, names: dict[str, str]
             ) -> AuditedRequest:
    first = events[0]
    q = first["request"]
    refused = first["event_type"] == "request.rejected"
    signals = scored.signals if scored else ()
    score = scored.score if scored else 0.0
    return AuditedRequest(
        request_id=q["request_id"], occurred_at=first["occurred_at"], service=q["service"],
        establishment_id=request_establishment(first),
        outcome="refused" if refused else "accepted",
        rule=first["payload"].get("rule") if refused else None,
        actor_account_id=q["actor"]["account_id"], role=q["actor"]["role"],
        credential_id=q["auth"].get("credential_id"), session_id=q["session_id"],
        device_id=q["client"]["device_id"], ip=q["client"]["ip"], channel=q["channel"],
        positions=tuple(r["position"] for r in events),
        effects=tuple(effects_of(events, names)), signals=signals, score=score,
        suspicious=bool(scored and scored.alerted))


def _stream_names(ledger: Ledger, records: list[Record],
                  verdicts: LiveVerdicts | None = None) -> dict[str, str]:
    """The worker or account id of each stream whose events name neither: from the
    workers read model when the audit reads the live read models (at scale, a thousand
    first events scattered through the store were the cold audit's slowest read), else
    from the stream's first event (worker.joined, account.registered), one query for all."""
    wanted = sorted({r["stream"] for r in records if r["event_type"] in NAMELESS})
    known = verdicts.worker_ids(wanted) if verdicts is not None and wanted else {}
    wanted = [stream for stream in wanted if stream not in known]
    if not wanted:
        return known
    idx = EVENT_INDEX.c
    with _engine(ledger).connect() as conn:
        firsts = [row.position for start in range(0, len(wanted), 500)
                  for row in conn.execute(select(idx.position).where(and_(
                      idx.stream.in_(wanted[start:start + 500]), idx.version == 1)))]
    notes = ledger.recorder.select_notifications_by_ids(firsts)  # type: ignore[attr-defined]
    out = dict(known)
    for note in notes:
        record = ledger.record_of(note)
        p = record["payload"]
        name = p.get("worker_id") or p.get("account_id")
        if name:
            out[record["stream"]] = str(name)
    return out


def effects_of(events: list[Record], names: dict[str, str]) -> list[Effect]:
    """What one request's events changed, from their types and payloads."""
    out: list[Effect] = []
    for r in events:
        t, p = r["event_type"], r["payload"]
        who = names.get(r["stream"])
        if t == "worker.service_transferred":
            released = p.get("basis") == "employer_release"
            out.append(Effect("transfer_out" if released else "transfer_in", who,
                              p["from_establishment_id"] if released
                              else p["to_establishment_id"],
                              p["to_establishment_id"] if released
                              else p["from_establishment_id"], p.get("basis")))
        elif t == "worker.absence_reported":
            out.append(Effect("absence_report", who, _worker_employer(events, who)))
        elif t == "worker.absence_cancelled":
            out.append(Effect("absence_cancel", who))
        elif t == "worker.final_exit_requested":
            out.append(Effect("final_exit", who))
        elif t == "account.delegation_granted":
            out.append(Effect("permission_granted", None, p["establishment_id"], who,
                              ", ".join(p["services"])))
        elif t == "account.delegation_revoked":
            out.append(Effect("permission_revoked", None, p["establishment_id"], who))
        elif t == "account.agent_appointed":
            out.append(Effect("agent_appointed", None, None, who))
        elif t == "account.password_changed":
            out.append(Effect("password_changed", detail=p["new_credential_id"]))
        elif t == "account.email_changed":
            out.append(Effect("email_changed", detail=p["email"]))
        elif t == "worker.joined":
            out.append(Effect("hire", p["worker_id"], r["establishment_id"]))
        elif t in ("worker.permit_issued", "worker.permit_renewed"):
            out.append(Effect(t.split(".")[1], who, r["establishment_id"],
                              detail=f"{p['months']} months"))
        elif t == "worker.profession_changed":
            out.append(Effect("profession_changed", who,
                              detail=f"{p['from_profession']} → {p['to_profession']}"))
    return out


def _worker_employer(events: list[Record], worker: str | None) -> str | None:
    for r in events:
        if r["event_type"] == "establishment.worker_left" and \
                r["payload"]["worker_id"] == worker:
            employer: str | None = r["establishment_id"]
            return employer
    return None


__all__ = ["HARMFUL", "LIVE", "READ_MODELS", "REPLAYED", "STORE", "Audit", "AuditedRequest",
           "Effect", "audit_credential", "effects_of"]

