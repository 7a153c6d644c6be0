"""The simulation's world: its state, its calendar of pending work, and who acts.

One object holds everything the services read and change, so the order in which they
draw from the one seeded generator is the order of the code, never of a hash.
"""

from __future__ import annotations

import bisect
import random
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import accumulate
from typing import Any, Final

from domain.authorization import OWNER_ONLY
from domain.nitaqat import ThresholdTable, Workforce
from simulator import identities
from simulator.clock import Clock
from simulator.figures import office_share
from simulator.identities import Ids
from simulator.population import RULES, Account, Establishment, Roster, Worker
from simulator.sessions import Acting, DayBook, Step

BOOTSTRAP_DAYS: Final = 7  # owners found their files on days 0-4; grants follow
CLERKS_AN_OFFICE: Final = 3


@dataclass(slots=True, frozen=True)
class Visa:
    establishment: Establishment
    visa_id: str
    nationality: str
    profession: str
    issued: int


class Draw:
    """Establishments weighted for drawing, rebuilt weekly as they grow and change."""

    __slots__ = ("_cum", "_items")

    def __init__(self, items: list[Establishment], weights: list[float]) -> None:
        self._items = items
        self._cum = list(accumulate(weights))

    def __len__(self) -> int:
        return len(self._items)

    def pick(self, rng: random.Random) -> Establishment | None:
        if not self._items:
            return None
        index = bisect.bisect_right(self._cum, rng.random() * self._cum[-1])
        return self._items[min(index, len(self._items) - 1)]


@dataclass
class Pools:
    receivers: Draw = field(default_factory=lambda: Draw([], []))  # may take workers
    branched: Draw = field(default_factory=lambda: Draw([], []))  # two branches or more
    everyone: Draw = field(default_factory=lambda: Draw([], []))
    staffed: Draw = field(default_factory=lambda: Draw([], []))  # anyone with workers


class World:
    def __init__(self, seed: int, clock: Clock) -> None:
        self.seed = seed
        self.rng = random.Random(seed)
        self.clock = clock
        self.ids = Ids(self.rng)
        self.table = ThresholdTable.shipped()
        self.year = clock.date(clock.days - 1).year
        self.day = 0
        self.books: dict[int, DayBook] = {}
        self.calendar: dict[int, list[tuple[Callable[..., object], tuple[Any, ...]]]] = {}
        self.establishments: list[Establishment] = []
        self.owners: list[Account] = []
        self.accounts: list[Account] = []
        self.waiting_owners: deque[Account] = deque()
        self.waiting_delegates: deque[Account] = deque()
        self.waiting_agents: deque[Account] = deque()
        self.agents: list[Account] = []
        self.expats = Roster("pos_all")
        self.free_agents: list[Worker] = []  # may move without the employer's consent
        self.unpermitted: list[Worker] = []  # candidates for a temporary permit
        self.visas: deque[Visa] = deque()
        self.departures: deque[tuple[Establishment, str, int]] = deque()
        self.pools = Pools()
        self.renewals_today = 0
        self.workers = 0  # workers ever created
        self.cancel_balance = 0.5  # seed 002's cancelled reports, spread evenly
        self._clerks: dict[int, list[Account]] = {}
        self._actings: dict[tuple[str, str, str | None, str], Acting] = {}
        self._visa_serial = 0
        self.passports = self._system("sys:passports")
        self.nic = self._system("sys:nic")

    # -- time and plans ------------------------------------------------------------
    def book(self, day: int) -> DayBook:
        found = self.books.get(day)
        if found is None:
            found = self.books[day] = DayBook()
        return found

    def at(self, day: int, job: Callable[..., object], *args: Any) -> None:
        """Run `job(*args)` when the simulation reaches `day` (dropped beyond the
        history). A tuple, not a closure: hundreds of thousands wait at once."""
        if day < self.clock.days:
            self.calendar.setdefault(max(day, self.day + 1), []).append((job, args))

    def add(self, steps: list[Step]) -> None:
        self.book(self.day).add(steps)

    def next_visa_id(self) -> str:
        self._visa_serial += 1
        return f"V{self.seed}-{self._visa_serial:08d}"

    # -- who acts ------------------------------------------------------------------
    def acting(self, account: Account, role: str, on_behalf_of: str | None,
               channel: str) -> Acting:
        key = (account.account_id, role, on_behalf_of, channel)
        found = self._actings.get(key)
        if found is None:
            found = self._actings[key] = Acting(account, role, on_behalf_of, channel)
        return found

    def owner_acting(self, est: Establishment, channel: str = "portal") -> Acting:
        return self.acting(est.owner, "owner", None, channel)

    def acting_for(self, est: Establishment, *services: str) -> Acting:
        """The office for its share of the service; else the owner's agent or a delegate
        now and then; else the owner. A locked-out owner goes to the office."""
        rng = self.rng
        owner = est.owner
        if owner.locked and not OWNER_ONLY.intersection(services):
            return self.clerk(est.office)
        share = min(office_share(s) for s in services)
        if share and rng.random() < share:
            return self.clerk(est.office)
        agent = owner.agent
        if agent is not None and agent.since < self.day and owner.agent_since < self.day \
                and rng.random() < 0.85:
            return self.acting(agent, "agent", owner.account_id, "portal")
        if est.grants and rng.random() < 0.7:
            usable = [g for g in est.grants if g.usable(self.day, services)]
            if usable:
                grant = usable[int(rng.random() * len(usable))]
                return self.acting(grant.delegate, "delegate", owner.account_id, "portal")
        return self.owner_acting(est)

    def clerk(self, office: int) -> Acting:
        clerks = self._clerks.get(office)
        if clerks is None:
            clerks = self._clerks[office] = [self._staff(office, n)
                                             for n in range(CLERKS_AN_OFFICE)]
        clerk = clerks[int(self.rng.random() * len(clerks))]
        return self.acting(clerk, "office_clerk", None, "office")

    def system(self, account: Account) -> Acting:
        return self.acting(account, "system", None, "integration")

    def _staff(self, office: int, n: int) -> Account:
        number = office * 10 + n
        device = (f"office-{office:02d}-pc{n}", identities.USER_AGENTS[0])
        return Account(f"staff:clerk-{number:03d}", "office_clerk", "", [device],
                       [f"10.{office}.1.{10 + n}"], 8 * 60, 300, method="password",
                       logs_in=False)

    def _system(self, account_id: str) -> Account:
        name = account_id.removeprefix("sys:")
        device = (f"int-{name}", f"nic-gateway/2.3 ({name})")
        # The nightly feeds run at 02:30 Riyadh, after the evening owners have logged off.
        return Account(account_id, "system", "", [device], ["10.250.0.10"], 150, 30,
                       method="certificate", logs_in=False)

    # -- Nitaqat -------------------------------------------------------------------
    def medium_green_bp(self, activity: str, headcount: int) -> int:
        """The medium-green threshold in the history's last year (thresholds rise)."""
        return self.table.thresholds_bp(activity, self.year, max(headcount, 1))["medium_green"]

    def healthy_after(self, est: Establishment, expats: int, saudi_milli: int) -> bool:
        """Would the establishment stay comfortably medium green with this change?"""
        if est.weak:
            return False
        saudis = est.saudis + (1 if saudi_milli else 0)
        head = saudis + est.expats + expats
        if head <= 5:
            return est.small_green() or saudi_milli > 0
        after = Workforce(saudis, est.saudi_weight_milli + saudi_milli, est.disabled_saudis,
                          est.expats + expats)
        share = after.percentage_bp(RULES)
        return share >= self.medium_green_bp(est.activity, head) + est.margin_bp

    # -- wage protection -----------------------------------------------------------
    def months_late(self, est: Establishment) -> int:
        """Whole months of wage files due but missing, as domain/eligibility.py counts."""
        last = max(est.filed_month, est.opened_month - 1)
        return max(0, self.clock.month_index(self.day) - last - 1)

    def serviceable(self, est: Establishment) -> bool:
        return self.months_late(est) < 2

    def compliant_now(self, est: Establishment) -> bool:
        """At least 80% over the last three months: every month since opening filed, the
        last one on an earlier day (a file uploaded today may be stamped after noon)."""
        month = self.clock.month_index(self.day)
        return est.compliant and est.uploads and (
            est.opened_month >= month
            or (est.filed_month >= month - 1 and est.filed_day < self.day))
