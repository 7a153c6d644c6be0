"""The simulated ministry's accounts, establishments and workers, as mutable state.

Each generated request must pass the domain's rules at the moment it is stamped, so the
simulator keeps its own view of every permit, report, grant and Nitaqat count and
updates it as it plans; per worker it keeps only ids and small integers, so that twenty
thousand establishments and their workers fit in memory.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final

from domain.nitaqat import Workforce, contribution
from domain.rules import Rules

# Worker states, as the simulator tracks them.
ACTIVE, REPORTED, EXITING, GONE = range(4)
NEVER: Final = -(10**6)
RULES: Final = Rules()


def credential_id(account_id: str, version: int) -> str:
    return f"cred-{account_id}-{version}"


@dataclass(slots=True, eq=False)
class Account:
    """A portal account (owner, delegate, agent) or a provisioned staff or system one."""

    account_id: str
    role: str
    email: str
    devices: list[tuple[str, str]]  # (device id, user agent), the first one habitual
    ips: list[str]
    start_minute: int  # Riyadh minute of day the working day begins
    span_minutes: int
    method: str = "password_otp"
    version: int = 1
    since: int = 0  # the first day it may act
    locked: bool = False  # a thief changed its password: the owner is locked out
    establishments: list[Establishment] = field(default_factory=list)
    agent: Account | None = None
    agent_since: int = NEVER
    logs_in: bool = True

    @property
    def credential(self) -> str:
        return credential_id(self.account_id, self.version)


@dataclass(slots=True, eq=False)
class Grant:
    """An owner's grant of services for one establishment to a delegate."""

    delegate: Account
    establishment: Establishment
    services: frozenset[str]
    granted: int
    confirmed: int | None = None
    revoked: int | None = None
    valid_until: int | None = None

    def usable(self, day: int, services: tuple[str, ...]) -> bool:
        """Confirmed on an earlier day, neither revoked nor expired, covering `services`."""
        return (self.confirmed is not None and self.confirmed < day
                and self.revoked is None and not self.delegate.locked
                and (self.valid_until is None or day < self.valid_until)
                and all(s in self.services for s in services))


@dataclass(slots=True, eq=False)
class Worker:
    worker_id: str
    nationality: str
    saudi: bool
    profession: str
    wage: int
    part_time: bool = False
    disabled: bool = False
    est: Establishment | None = None
    branch: str | None = None
    state: int = ACTIVE
    permit_until: int = NEVER  # the day index of the permit's valid_until
    temporary: bool = False
    iqama_until: int = NEVER
    contract_end: int | None = None
    joined: int = 0
    busy: int = NEVER  # the last day a request touched the worker
    token: int = 0  # bumped when a scheduled renewal goes stale
    reported_on: int = NEVER
    reported_by: Establishment | None = None
    imprisoned: bool = False
    pos_est: int = -1
    pos_all: int = -1

    def weight(self) -> tuple[bool, int, bool]:
        """(counts as Saudi, weight in thousandths, in the disability pool)."""
        c = contribution(saudi=self.saudi, wage_sar=self.wage, part_time=self.part_time,
                         disabled=self.disabled, rules=RULES)
        return c.saudi, c.weight_milli, c.disabled


class Roster:
    """Workers in a list, with O(1) removal and random picks: the simulator draws far
    more often than it hires or loses."""

    __slots__ = ("_slot", "items")

    def __init__(self, slot: str) -> None:
        self._slot = slot
        self.items: list[Worker] = []

    def __len__(self) -> int:
        return len(self.items)

    def add(self, worker: Worker) -> None:
        setattr(worker, self._slot, len(self.items))
        self.items.append(worker)

    def remove(self, worker: Worker) -> None:
        index = getattr(worker, self._slot)
        if index < 0:
            return
        last = self.items.pop()
        if last is not worker:
            self.items[index] = last
            setattr(last, self._slot, index)
        setattr(worker, self._slot, -1)

    def pick(self, rng: random.Random, accept: Callable[[Worker], bool],
             tries: int = 30) -> Worker | None:
        items = self.items
        if not items:
            return None
        for _ in range(tries):
            worker = items[int(rng.random() * len(items))]
            if accept(worker):
                return worker
        return None


@dataclass(slots=True, eq=False)
class Establishment:
    file_number: str
    owner: Account
    activity: str
    city: str
    office: int
    weak: bool  # kept red on purpose: too few Saudis
    margin_bp: int  # how far above medium green its Saudization is kept
    compliant: bool  # pays at least 80% of its workers as recorded
    uploads: bool  # files its wage file every month
    period: int  # the permit period it usually buys, in months
    upload_day: int
    counts_owner: bool
    opened: int
    opened_month: int
    branches: list[str] = field(default_factory=list)
    saudis: int = 0
    saudi_weight_milli: int = 0
    disabled_saudis: int = 0
    expats: int = 0
    filed_month: int = NEVER  # the latest month whose wage file is uploaded
    filed_day: int = NEVER  # and the day it was
    accomplice: bool = False
    workers: Roster = field(default_factory=lambda: Roster("pos_est"))
    grants: list[Grant] = field(default_factory=list)
    departed: list[str] = field(default_factory=list)

    @property
    def headcount(self) -> int:
        return self.saudis + self.expats

    def workforce(self) -> Workforce:
        return Workforce(self.saudis, self.saudi_weight_milli, self.disabled_saudis,
                         self.expats)

    def share_bp(self) -> int:
        return self.workforce().percentage_bp(RULES)

    def count(self, worker: Worker, sign: int) -> None:
        """Add or remove the worker from the Nitaqat counts, as domain/establishment.py."""
        saudi, weight, disabled = worker.weight()
        if not saudi:
            self.expats += sign
        elif disabled:
            self.saudis += sign
            self.disabled_saudis += sign
        else:
            self.saudis += sign
            self.saudi_weight_milli += sign * weight

    def small_green(self) -> bool:
        return self.saudis > 0 or self.counts_owner
