"""The live fraud detector's verdicts on given requests, read from its tables.

The credential audit (replay/credential_audit.py) must say, for every request made with
a leaked credential since D, which risk signals it carries. Replaying the detector over
the account's whole history costs what that history costs: 10,000-15,000 events for an
owner of a 3,000-worker establishment, over a second. The fraud projection
(projections/fraud_alerts.py) has already scored every request exactly once, in the
store's order, with every account's view (the shared-ip and shared-device rules need
them all): a request's verdict is its own signals (`fraud_request_signals`), its
session's session-wide signals (`fraud_sessions`) and its alert (`fraud_alerts`), put
together by the same `domain.fraud.verdict` as the in-memory detector's. A few indexed
lookups, whatever the history's length.

The projection may lag the store, or belong to another store: `covers` says whether it
has folded every given request (each actor account's `last_position` at or past the
request's first event), and that each account's last scored request is the one its own store
holds at that position; when either fails, the audit replays the detector itself.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import Engine, create_engine, inspect, select
from sqlalchemy.engine import make_url

from domain.fraud import FraudSettings, Scored, alert_id, facts_of, verdict, watched
from projections.account_requests import ACCOUNT_REQUESTS, requests_of
from projections.fraud_alerts import ACCOUNTS, ALERTS, REQUEST_SIGNALS, SESSIONS, SETTINGS
from projections.workers import WORKERS

Record = dict[str, Any]
CHUNK = 500  # keys a statement


class LiveVerdicts:
    """Verdicts from the fraud projection's tables in `engine` (the read models)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._tables: dict[str, bool] = {}  # which optional read models are here
        self.settings: FraudSettings = SETTINGS

    @classmethod
    def open(cls, url: str) -> LiveVerdicts | None:
        """The read models at `url`, or None when they hold no fraud projection (never
        run, or a SQLite file that does not exist: not created by asking)."""
        parsed = make_url(url)
        if parsed.get_backend_name() == "sqlite" and not (
                parsed.database and Path(parsed.database).exists()):
            return None
        engine = create_engine(url)
        if not inspect(engine).has_table(REQUEST_SIGNALS.name):
            engine.dispose()
            return None
        return cls(engine)

    def close(self) -> None:
        self.engine.dispose()

    def folded(self, accounts: Iterable[str]) -> dict[str, tuple[int, str]]:
        """How far the projection has scored each account: the position and request id
        of the last request it observed. The caller checks them against its store, so
        that read models of another store are not taken for this one's."""
        out: dict[str, tuple[int, str]] = {}
        for account_id, position, state in self._rows(
                ACCOUNTS.c.account_id, set(accounts), ACCOUNTS.c.account_id,
                ACCOUNTS.c.last_position, ACCOUNTS.c.state):
            out[account_id] = (position, orjson.loads(state)["last_request_id"])
        return out

    def covers(self, firsts: Sequence[Record],
               held: Callable[[list[int]], dict[int, str]] | None = None) -> bool:
        """Whether the projection has scored every watched request among `firsts` (each
        request's first event, as the detector sees it). With `held` (the store's
        request id at each of some positions), also that each account's last scored
        request is the store's: read models of another store are not this one's."""
        wanted = [f for f in firsts if watched(f)]
        folded = self.folded(f["request"]["actor"]["account_id"] for f in wanted)
        if any(folded.get(f["request"]["actor"]["account_id"], (0, ""))[0] < f["position"]
               for f in wanted):
            return False
        if held is None or not folded:
            return True
        store = held(sorted({position for position, _ in folded.values()}))
        return all(store.get(position) == request for position, request in folded.values())

    def scored(self, firsts: Sequence[Record]) -> dict[str, Scored]:
        """The verdict of each watched request among `firsts`, by request id."""
        wanted = [f for f in firsts if watched(f)]
        ids = {f["request"]["request_id"] for f in wanted}
        own = {r: orjson.loads(s) for r, s in self._rows(
            REQUEST_SIGNALS.c.request_id, ids, REQUEST_SIGNALS.c.request_id,
            REQUEST_SIGNALS.c.signals)}
        alerts = {r: orjson.loads(s) for r, s in self._rows(  # by key: fraud:<request>
            ALERTS.c.alert_id, {alert_id(r) for r in ids}, ALERTS.c.request_id,
            ALERTS.c.signals)}
        sessions = {s: orjson.loads(state)["signals"] for s, state in self._rows(
            SESSIONS.c.session_id, {f["request"]["session_id"] for f in wanted},
            SESSIONS.c.session_id, SESSIONS.c.state)}
        out: dict[str, Scored] = {}
        for first in wanted:
            request_id = first["request"]["request_id"]
            out[request_id] = verdict(
                facts_of(first, self.settings), own.get(request_id, ()),
                sessions.get(first["request"]["session_id"], ()), alerts.get(request_id),
                self.settings)
        return out

    def worker_ids(self, streams: Iterable[str]) -> dict[str, str]:
        """The worker id of each worker stream the workers read model holds, by stream:
        one indexed table, where the store keeps each stream's first event apart. A
        stream's worker id never changes (it names the stream), so a row is never stale;
        a stream not yet projected, or read models without the workers table, are simply
        not in the answer."""
        if not self._holds(WORKERS.name):
            return {}
        return dict(self._rows(WORKERS.c.stream, streams, WORKERS.c.stream,
                               WORKERS.c.worker_id))

    def requests(self, account_id: str, credentials: Sequence[str], start: str,
                 end: str | None) -> list[tuple[list[Record], dict[str, str]]] | None:
        """The account's requests in the window as projections/account_requests.py
        keeps them, each as (events, names); None when the read models do not keep them
        (the caller checks the rows against the store's index)."""
        if not self._holds(ACCOUNT_REQUESTS.name):
            return None
        with self.engine.connect() as conn:
            return requests_of(conn, account_id, credentials, start, end)

    def _holds(self, table: str) -> bool:
        if table not in self._tables:
            self._tables[table] = inspect(self.engine).has_table(table)
        return self._tables[table]

    def _rows(self, key: Any, values: Iterable[Any], *columns: Any) -> list[Any]:
        keys = sorted(values)
        out: list[Any] = []
        with self.engine.connect() as conn:
            for start in range(0, len(keys), CHUNK):
                out += conn.execute(select(*columns).where(
                    key.in_(keys[start:start + CHUNK]))).all()
        return out


__all__ = ["LiveVerdicts"]
