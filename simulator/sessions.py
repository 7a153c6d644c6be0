"""Sessions: each actor's work of a day, laid out in its habitual hours and stamped.

The simulator first decides what every actor does in a day (against the state of that
day), then lays each actor's requests out in sessions: a login, then requests a few
seconds apart, in the actor's working hours, from one of its usual devices. An
account's sessions are stamped in time order, so a password a thief changes at 02:00
is already changed for whatever that account does at 09:00.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Final

from simulator.clock import US_PER_MINUTE, US_PER_SECOND, Clock
from simulator.population import Account, credential_id

EMPTY: Final[dict[str, Any]] = {}
PASSWORD_CHANGED: Final = "account.password_changed"
# No login before these: the account does not exist yet.
REGISTRATIONS: Final = frozenset({"portal.registration", "account.owner_registered"})
# Requests in one session at most, by channel: people batch, connectors batch more.
SESSION_SIZE: Final[dict[str, int]] = {"portal": 25, "api": 400, "office": 40,
                                       "integration": 1_000_000}
# Minutes between two sessions of one actor, about: a connector's batches follow closely.
BREAK_MINUTES: Final[dict[str, float]] = {"portal": 60.0, "api": 2.0, "office": 20.0,
                                          "integration": 1.0}
LATE_MINUTE: Final = 21 * 60  # Riyadh 21:00
# (fixed, mean of the exponential part) seconds between two requests of a session.
PACE: Final[dict[str, tuple[float, float]]] = {
    "portal": (6.0, 40.0), "api": (0.2, 0.6), "office": (45.0, 90.0),
    "integration": (0.05, 0.25), "thief": (15.0, 60.0),
}


class Acting:
    """Who acts, in which role, for whom, through which channel."""

    __slots__ = ("account", "actor", "channel", "on_behalf_of", "role")

    def __init__(self, account: Account, role: str, on_behalf_of: str | None,
                 channel: str) -> None:
        self.account = account
        self.role = role
        self.on_behalf_of = on_behalf_of
        self.channel = channel
        self.actor: dict[str, str | None] = {
            "account_id": account.account_id, "role": role, "on_behalf_of": on_behalf_of}


@dataclass(slots=True, frozen=True)
class Mark:
    """The ground truth of one campaign request; it goes to the labels file only."""

    campaign: str
    account_id: str  # whose credential leaked
    kind: str


@dataclass(slots=True)
class Step:
    service: str
    establishment_id: str | None
    payload: dict[str, Any]
    acting: Acting
    mark: Mark | None = None


@dataclass(slots=True, frozen=True)
class Client:
    device_id: str
    user_agent: str
    ip: str

    def record(self) -> dict[str, str]:
        return {"ip": self.ip, "device_id": self.device_id, "user_agent": self.user_agent}


@dataclass(slots=True)
class Sitting:
    """A session with its own time and client: a thief's, or a locked-out owner's."""

    minute: float
    client: Client
    tasks: list[list[Step]]
    failed_logins: int = 0
    failure: str = "bad_password"
    login: bool = True
    presents: int | None = None  # a credential version other than the current one
    campaign: Mark | None = None  # labels the session's logins
    pace: str = "thief"


@dataclass(slots=True)
class Desk:
    """One account's work of one day."""

    account: Account
    tasks: list[tuple[str, list[Step]]] = field(default_factory=list)
    sittings: list[Sitting] = field(default_factory=list)


class DayBook:
    def __init__(self) -> None:
        self.desks: dict[str, Desk] = {}

    def desk(self, account: Account) -> Desk:
        found = self.desks.get(account.account_id)
        if found is None:
            found = self.desks[account.account_id] = Desk(account)
        return found

    def add(self, steps: list[Step]) -> None:
        """One task: requests that belong together in one session, in this order."""
        acting = steps[0].acting
        self.desk(acting.account).tasks.append((acting.channel, steps))

    def sit(self, account: Account, sitting: Sitting) -> None:
        self.desk(account).sittings.append(sitting)


class Context:
    __slots__ = ("auth", "channel", "client", "session_id")

    def __init__(self, channel: str, session_id: str, auth: dict[str, str],
                 client: dict[str, str]) -> None:
        self.channel = channel
        self.session_id = session_id
        self.auth = auth
        self.client = client


Pending = tuple[int, int, Step, Context]


class Stamper:
    """Gives every planned request its moment, session, credential and client."""

    def __init__(self, clock: Clock, rng: random.Random, seed: int) -> None:
        self.clock = clock
        self.rng = rng
        self.seed = seed
        self.pending: list[Pending] = []
        self._seq = 0
        self._sessions = 0
        self._selves: dict[str, Acting] = {}
        self._clients: dict[Client, dict[str, str]] = {}
        self._counts: Counter[str] = Counter()

    def stamp(self, day: int, book: DayBook, counts: Counter[str]) -> None:
        self._counts = counts
        for desk in book.desks.values():
            self._stamp_desk(day, desk)

    # -- laying out a desk ---------------------------------------------------------
    def _stamp_desk(self, day: int, desk: Desk) -> None:
        account = desk.account
        rng = self.rng
        chunks = _chunks(desk.tasks)
        sittings = sorted(desk.sittings, key=lambda s: s.minute)
        routine_at = self.clock.moment(
            day, account.start_minute + rng.random() * account.span_minutes * 0.95)
        cursor = 0
        while chunks or sittings:
            sitting_at = self.clock.moment(day, sittings[0].minute) if sittings else None
            if chunks and (sitting_at is None or routine_at <= sitting_at):
                channel, tasks = chunks.pop(0)
                start = max(routine_at, cursor + US_PER_MINUTE)
                cursor = self._routine(account, channel, tasks, start)
                routine_at = cursor + self._break(day, channel, cursor)
            else:
                assert sitting_at is not None
                start = max(sitting_at, cursor + US_PER_MINUTE)
                cursor = self._sitting(account, sittings.pop(0), start)

    def _break(self, day: int, channel: str, now: int) -> int:
        """A pause between two sessions; short late in the evening, so that a long day's
        work ends before the next day's (and the night's feeds) begin."""
        minutes = BREAK_MINUTES[channel] * (0.2 + self.rng.random())
        if now > self.clock.moment(day, LATE_MINUTE):
            minutes = 1.0
        return int(minutes * US_PER_MINUTE)

    def _routine(self, account: Account, channel: str, tasks: list[list[Step]],
                 start: int) -> int:
        client = self._habitual(account, channel)
        first = tasks[0][0].service
        login = channel == "portal" and account.logs_in and first not in REGISTRATIONS
        failed = 1 if login and self.rng.random() < 0.02 else 0
        return self._session(account, channel, tasks, start, client, failed, login,
                             "bad_password", None, None, channel)

    def _sitting(self, account: Account, sitting: Sitting, start: int) -> int:
        return self._session(account, "portal", sitting.tasks, start, sitting.client,
                             sitting.failed_logins, sitting.login, sitting.failure,
                             sitting.presents, sitting.campaign, sitting.pace)

    # -- one session ---------------------------------------------------------------
    def _session(self, account: Account, channel: str, tasks: list[list[Step]], start: int,
                 client: Client, failed: int, login: bool, failure: str,
                 presents: int | None, campaign: Mark | None, pace: str) -> int:
        ctx = self._context(account, channel, client, presents)
        ts = start
        fixed, mean = PACE[pace]
        me = self._self(account)
        for _ in range(failed):
            ts = self._put(ts, Step("account.login_failed", None, {"reason": failure}, me,
                                    _relabel(campaign, "login_failed")), ctx)
            ts += int((20 + self.rng.random() * 60) * US_PER_SECOND)
        if login:
            ts = self._put(ts, Step("account.login", None, EMPTY, me,
                                    _relabel(campaign, "login")), ctx)
        for task in tasks:
            for step in task:
                ts += int((fixed + self.rng.expovariate(1.0 / mean)) * US_PER_SECOND)
                if step.service == PASSWORD_CHANGED:
                    account.version += 1
                    step.payload = {"new_credential_id": account.credential}
                    ts = self._put(ts, step, ctx)
                    ctx = self._context(account, channel, client, None, ctx.session_id)
                    continue
                ts = self._put(ts, step, ctx)
        return ts

    def _put(self, ts: int, step: Step, ctx: Context) -> int:
        self.pending.append((ts, self._seq, step, ctx))
        self._seq += 1
        self._counts[step.service] += 1
        return ts

    def _context(self, account: Account, channel: str, client: Client,
                 presents: int | None, session_id: str | None = None) -> Context:
        if session_id is None:
            self._sessions += 1
            session_id = f"s{self.seed}-{self._sessions:08d}"
        version = account.version if presents is None else presents
        method = account.method if channel in ("portal", "api") else "certificate"
        if channel == "office":
            method = "password"
        auth = {"method": method, "credential_id": credential_id(account.account_id, version)}
        record = self._clients.get(client)
        if record is None:
            record = self._clients[client] = client.record()
        return Context(channel, session_id, auth, record)

    def _self(self, account: Account) -> Acting:
        found = self._selves.get(account.account_id)
        if found is None:
            found = Acting(account, account.role, None, "portal")
            self._selves[account.account_id] = found
        return found

    def _habitual(self, account: Account, channel: str) -> Client:
        """Mostly the first device and ip; now and then the other ones."""
        rng = self.rng
        devices, ips = account.devices, account.ips
        device, agent = devices[0] if rng.random() < 0.85 else rng.choice(devices)
        ip = ips[0] if rng.random() < 0.8 else rng.choice(ips)
        return Client(device, agent, ip)


def _relabel(mark: Mark | None, kind: str) -> Mark | None:
    return None if mark is None else Mark(mark.campaign, mark.account_id, kind)


def _chunks(tasks: list[tuple[str, list[Step]]]) -> list[tuple[str, list[list[Step]]]]:
    """Consecutive tasks of one channel, cut where a session would grow too long."""
    out: list[tuple[str, list[list[Step]]]] = []
    size = 0
    for channel, steps in tasks:
        if not out or out[-1][0] != channel or size + len(steps) > SESSION_SIZE[channel]:
            out.append((channel, []))
            size = 0
        out[-1][1].append(steps)
        size += len(steps)
    return out
