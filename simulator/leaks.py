"""Leaked-credential campaigns (seed 001: "transactions were submitted without
employers' knowledge because account passwords had been disclosed").

A thief holding an owner's or a delegate's current credential logs in from a device
and an ip the account never used, mostly at night (01:00-04:00 Riyadh), sometimes after
failed logins, sometimes first changing the e-mail or the password, and then reports
workers absent, requests their final exit, or releases them to an establishment an
accomplice owns (a real, green, wage-compliant one, so the transfers pass); the
accomplice may also pick up, that same night, the workers just reported absent. The
real owner keeps working from the usual device — or, locked out by a changed
password, fails to log in and goes to the labour office. The ground truth goes to the
labels file only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial
from typing import Final

from simulator import identities
from simulator.clock import US_PER_MINUTE
from simulator.population import REPORTED, Account, Establishment, Worker
from simulator.sessions import Acting, Client, Mark, Sitting, Step
from simulator.workforce import (
    cancel_absence,
    file_report,
    movable,
    move,
    reportable,
    request_exit,
)
from simulator.world import BOOTSTRAP_DAYS, World

HARMFUL: Final = ("absence.report", "permit.final_exit", "worker.service_transfer")
HOUR_US: Final = 60 * US_PER_MINUTE


@dataclass
class Campaign:
    name: str
    day: int
    accomplice: Establishment
    victim: Account | None = None
    role: str = ""
    establishment: Establishment | None = None
    credential: str = ""
    client: Client | None = None
    leaked_at: int = 0
    password_changed: bool = False
    victims: list[str] = field(default_factory=list)

    def header(self) -> dict[str, object]:
        assert self.victim is not None and self.establishment and self.client
        return {"type": "campaign", "campaign": self.name,
                "account_id": self.victim.account_id, "role": self.role,
                "establishment_id": self.establishment.file_number,
                "leaked_credential_id": self.credential,
                "thief_device_id": self.client.device_id, "thief_ip": self.client.ip,
                "thief_user_agent": self.client.user_agent,
                "accomplice_account_id": self.accomplice.owner.account_id,
                "accomplice_establishment_id": self.accomplice.file_number,
                "password_changed": self.password_changed}


def schedule(world: World, accomplices: list[Establishment]) -> dict[int, list[Campaign]]:
    """Campaign days spread over the history, after the victims have settled in."""
    first = min(BOOTSTRAP_DAYS + 14, world.clock.days - 1)
    last = max(first, world.clock.days - 3)
    days: dict[int, list[Campaign]] = {}
    for n, est in enumerate(accomplices, start=1):
        day = world.rng.randint(first, last)
        days.setdefault(day, []).append(Campaign(f"leak-{n:03d}", day, est))
    return days


def strike(world: World, c: Campaign, struck: set[str]) -> bool:
    """Plan the night's sessions; False when no victim is to be found today."""
    found = _victim(world, struck)
    if found is None:
        return False
    victim, role, est, acting = found
    rng, d = world.rng, world.day
    c.victim, c.role, c.establishment, c.day = victim, role, est, d
    c.credential = victim.credential
    ip = identities.home_ip(rng) if rng.random() < 0.3 else identities.foreign_ip(rng)
    c.client = Client(world.ids.device(), rng.choice(identities.USER_AGENTS), ip)
    minute = rng.uniform(60, 240) if rng.random() < 0.75 else rng.uniform(600, 960)
    c.leaked_at = world.clock.moment(d, minute) - rng.randint(2, 72) * HOUR_US
    struck.add(victim.account_id)
    _sessions(world, c, acting, est, minute)
    return True


def _victim(world: World, struck: set[str]
            ) -> tuple[Account, str, Establishment, Acting] | None:
    rng, d = world.rng, world.day
    for _ in range(80):
        est = world.pools.staffed.pick(rng)
        if (est is None or est.accomplice or est.weak or est.owner.locked
                or est.owner.account_id in struck or not world.serviceable(est)
                or sum(1 for w in est.workers.items[:200] if not w.saudi and movable(w, d)) < 3):
            continue
        if rng.random() < 0.3:
            grants = [g for g in est.grants if g.usable(d, ()) and g.services & set(HARMFUL)
                      and g.delegate.account_id not in struck]
            if grants:
                g = grants[0]
                acting = world.acting(g.delegate, "delegate", est.owner.account_id, "portal")
                return g.delegate, "delegate", est, acting
        return est.owner, "owner", est, world.owner_acting(est)
    return None


def _sessions(world: World, c: Campaign, acting: Acting, est: Establishment,
              minute: float) -> None:
    rng = world.rng
    victim = acting.account
    mark = partial(Mark, c.name, victim.account_id)
    opening = _take_over(world, c, victim, mark)
    harms, reported = _harm(world, c, acting, est, mark)
    sittings = _split(opening, harms, rng.random() < 0.35)
    assert c.client is not None
    at = minute
    for n, tasks in enumerate(sittings):
        failed = rng.randint(1, 3) if n == 0 and rng.random() < 0.4 else 0
        world.book(world.day).sit(victim, Sitting(at, c.client, tasks, failed_logins=failed,
                                                  campaign=mark("login")))
        at += 25 + rng.uniform(0, 60)
    _poach(world, c, reported, at + 20, mark)
    _aftermath(world, c, victim, est, reported)


def _take_over(world: World, c: Campaign, victim: Account, mark: partial[Mark]
               ) -> list[Step]:
    """Some thieves first take the account over: a new e-mail hides the portal's
    notices, a new password locks the owner out."""
    rng = world.rng
    me = world.acting(victim, victim.role, None, "portal")
    steps: list[Step] = []
    if rng.random() < 0.25:
        victim.email = identities.thief_email(rng)
        steps.append(Step("account.email_changed", None, {"email": victim.email}, me,
                          mark("email_changed")))
    if rng.random() < 0.15:
        c.password_changed = victim.locked = True
        steps.append(Step("account.password_changed", None, {}, me, mark("password_changed")))
    return steps


def _split(opening: list[Step], harms: list[Step], two: bool) -> list[list[list[Step]]]:
    tasks = [[s] for s in opening + harms]
    if not two or len(tasks) < 3:
        return [tasks]
    cut = len(tasks) // 2
    return [tasks[:cut], tasks[cut:]]


def _harm(world: World, c: Campaign, acting: Acting, est: Establishment,
          mark: partial[Mark]) -> tuple[list[Step], list[Worker]]:
    """Two to eight blows, each of a kind the stolen credential may deal."""
    rng = world.rng
    kinds = [k for k in HARMFUL if acting.role == "owner" or _granted(est, acting, k)]
    steps: list[Step] = []
    reported: list[Worker] = []
    for _ in range(rng.randint(2, 8)):
        kind = rng.choice(kinds)
        found = _blow(world, c, acting, est, kind, mark)
        if found is not None:
            steps.append(found[0])
            if kind == "absence.report":
                reported.append(found[1])
    return steps, reported


def _blow(world: World, c: Campaign, acting: Acting, est: Establishment, kind: str,
          mark: partial[Mark]) -> tuple[Step, Worker] | None:
    rng, d = world.rng, world.day
    check = reportable if kind == "absence.report" else movable
    w = est.workers.pick(rng, lambda w: not w.saudi and check(w, d))
    if w is None:
        return None
    if kind == "absence.report":
        return file_report(world, w, acting, mark("absence_report")), w
    if kind == "permit.final_exit":
        return request_exit(world, w, acting, mark("final_exit")), w
    if not _accomplice_ready(world, c, w):
        return None
    return move(world, w, c.accomplice, acting, requester=est,
                mark=mark("service_transfer_out")), w


def _granted(est: Establishment, acting: Acting, service: str) -> bool:
    return any(g.delegate is acting.account and service in g.services for g in est.grants)


def _accomplice_ready(world: World, c: Campaign, w: Worker) -> bool:
    acc = c.accomplice
    return (world.compliant_now(acc) and world.healthy_after(acc, 0, 0)
            and acc.headcount >= 6 and w.est is not acc)


def _poach(world: World, c: Campaign, reported: list[Worker], minute: float,
           mark: partial[Mark]) -> None:
    """Some nights the accomplice's establishment asks for the workers just reported."""
    if not reported or world.rng.random() < 0.6:
        return
    acc = c.accomplice
    acting = world.acting(acc.owner, "owner", None, "portal")
    steps = [move(world, w, acc, acting, requester=acc, mark=mark("service_transfer_in"))
             for w in reported if w.state == REPORTED and _accomplice_ready(world, c, w)]
    if steps and c.client is not None:
        world.book(world.day).sit(acc.owner, Sitting(minute, c.client, [[s] for s in steps],
                                                     campaign=mark("login")))


def _aftermath(world: World, c: Campaign, victim: Account, est: Establishment,
               reported: list[Worker]) -> None:
    """The owner, locked out, fails to log in; often cancels the false reports."""
    rng, d = world.rng, world.day
    if c.password_changed:
        device, agent = victim.devices[0]
        world.book(d).sit(victim, Sitting(
            victim.start_minute + rng.uniform(0, 120), Client(device, agent, victim.ips[0]),
            [], failed_logins=2, login=False, presents=victim.version, pace="portal"))
    if rng.random() < 0.5:
        for w in reported:
            if w.state == REPORTED and w.est is est:
                world.at(d + rng.randint(1, 4), cancel_absence, world, w, est, d)
