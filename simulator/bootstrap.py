"""The bootstrap: the ministry as it stands when the history begins.

The ledger starts empty, so every owner, file and worker already in business must
enter through requests: in the first days the owners register, open their files,
add branches and enter their workers (big employers through their HR connector), and
the expatriates' current permits are issued. Their delegates and agents follow a day
later. These set-up requests are counted apart from the activity in the plan.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from domain.nitaqat import Workforce
from simulator.accounts import appointment, grant, new_account, registration
from simulator.employers import branch_step, establishment, open_file_step
from simulator.identities import between
from simulator.population import RULES, Account, Establishment, Worker
from simulator.sessions import Acting, Step
from simulator.workforce import (
    issue_step,
    join_step,
    months_for,
    new_expat,
    new_saudi,
)
from simulator.world import World

FOUNDING_DAYS: Final = 5  # owners found their files on days 0-4; grants follow a day later
SIZE_CAP: Final = 3000  # the largest establishment's workforce
SIZE_SCALE: Final = 1.6  # Pareto scale: most files have 1-10 workers
SIZE_SHAPE: Final = 0.9  # Pareto shape: a few have hundreds or thousands
WEAK_SHARE: Final = 0.10  # kept red: too few Saudis
WEAK_CAP: Final = 40
API_ABOVE: Final = 80  # bigger employers enter their workforce through a connector


@dataclass(frozen=True)
class Founder:
    owner_index: int
    files: int
    accomplice: bool = False


def plan(world: World, establishments: int, accomplices: int) -> dict[int, list[Founder]]:
    """Which owner founds how many files on which day of the bootstrap."""
    rng = world.rng
    days: dict[int, list[Founder]] = {}
    left, index = establishments, 0
    while left > 0:
        files = min(left, rng.choices((1, 2, 3, 4), weights=(80, 14, 4, 2))[0])
        days.setdefault(rng.randrange(FOUNDING_DAYS), []).append(Founder(index, files))
        left, index = left - files, index + 1
    for _ in range(accomplices):
        days.setdefault(rng.randrange(FOUNDING_DAYS), []).append(Founder(index, 1, True))
        index += 1
    return days


def register_agents(world: World, owners: int) -> None:
    """Accounting firms acting for owners register on the first day."""
    for _ in range(max(1, owners // 40)):
        agent = new_account(world, "agent")
        world.agents.append(agent)
        world.add([registration(world, agent, "portal.registration")])


def found(world: World, founder: Founder) -> None:
    owner = new_account(world, "owner")
    world.owners.append(owner)
    world.add([registration(world, owner, "account.owner_registered")])
    for _ in range(founder.files):
        _one_file(world, owner, founder.accomplice)
    if world.agents and not founder.accomplice and world.rng.random() < 0.06:
        agent = world.agents[int(world.rng.random() * len(world.agents))]
        world.at(world.day + 1, _appoint, world, owner, agent)


def _one_file(world: World, owner: Account, accomplice: bool) -> None:
    """The file opened, its Saudis entered, then its branches (a file without workers
    counts red and may add none), then its expatriates."""
    rng = world.rng
    weak = not accomplice and rng.random() < WEAK_SHARE
    est = establishment(world, owner, weak=weak, accomplice=accomplice)
    size = _size(world, weak, accomplice)
    world.add([open_file_step(world, est)])
    acting = world.owner_acting(est, "api" if size > API_ABOVE else "portal")
    saudis = _saudis(world, est, size)
    for w in saudis:
        world.add([join_step(world, est, w, acting)])
    if not weak and _branches(size):
        owner_acting = world.owner_acting(est)
        world.add([branch_step(world, est, owner_acting) for _ in range(_branches(size))])
    for _ in range(size - len(saudis)):
        world.add(_expat(world, est, acting))
    if size >= 20 and not accomplice and rng.random() < 0.5:
        for _ in range(1 if size < 200 else 2):
            _delegate(world, est)


def _size(world: World, weak: bool, accomplice: bool) -> int:
    if accomplice:
        return world.rng.randint(8, 20)
    size = max(1, int(SIZE_SCALE * world.rng.paretovariate(SIZE_SHAPE)))
    return min(size, WEAK_CAP if weak else SIZE_CAP)


def _branches(size: int) -> int:
    if size < 15:
        return 0
    return min(8, 2 + (size // 60).bit_length())


def _saudis(world: World, est: Establishment, size: int) -> list[Worker]:
    if est.weak:
        return []
    if size <= 5:
        return [] if est.counts_owner else [new_saudi(world, est)]
    need = world.medium_green_bp(est.activity, size) + est.margin_bp
    chosen: list[Worker] = []
    weight, disabled = 0, 0
    while len(chosen) < size:
        wf = Workforce(len(chosen), weight, disabled, size - len(chosen))
        if wf.percentage_bp(RULES) >= need:
            break
        w = new_saudi(world, est)
        _, milli, pool = w.weight()
        weight, disabled = weight + (0 if pool else milli), disabled + pool
        chosen.append(w)
    return chosen


def _expat(world: World, est: Establishment, acting: Acting) -> list[Step]:
    """An expatriate already at work: arrived lately with a permit to issue, or long ago
    (then without one, waiting for a temporary permit)."""
    rng, d = world.rng, world.day
    recent = rng.random() < (0.2 if est.weak else 0.97)
    w = new_expat(world, est, border=recent and rng.random() < 0.1)
    arrival = d - (between(rng, 3, 80) if recent else between(rng, 120, 1500))
    w.iqama_until = d + between(rng, 30, 420)
    w.contract_end = d + between(rng, 20, 730)
    join = join_step(world, est, w, acting, arrival=arrival)
    if not recent:
        if not est.weak:
            world.unpermitted.append(w)
        return [join]
    return [join, issue_step(world, w, acting, months_for(world, est))]


def _delegate(world: World, est: Establishment) -> None:
    delegate = new_account(world, "delegate")
    world.add([registration(world, delegate, "portal.registration")])
    world.at(world.day + 1, _grant, world, est, delegate)


def _appoint(world: World, owner: Account, agent: Account) -> None:
    world.add([appointment(world, owner, agent)])


def _grant(world: World, est: Establishment, delegate: Account) -> None:
    world.add([grant(world, est, delegate)])
