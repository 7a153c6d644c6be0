"""Establishment services: files, activities, branches, certificates, visas,
recruitment and the monthly wage file.

The weak establishments (kept red on purpose) still ask, now and then, for what red
withholds — a certificate, a visa — so the history carries the refusals a real one does.
"""

from __future__ import annotations

from typing import Final

from simulator import identities
from simulator.population import Account, Establishment
from simulator.sessions import Acting, Step
from simulator.workforce import PERIOD_CUM, PERIODS, join_step, new_saudi
from simulator.world import Visa, World

WEAK_TRIES: Final = 0.05  # how often a red establishment still asks for what red loses


def establishment(world: World, owner: Account, *, weak: bool, accomplice: bool = False
                  ) -> Establishment:
    """A new file's profile: where, what, how Saudized, how it pays and renews."""
    rng = world.rng
    office, city, _ = identities.city(rng)
    margin = rng.choice((150, 300, 500, 800, 1200)) if not accomplice else 1500
    est = Establishment(
        file_number=world.ids.file_number(office), owner=owner,
        activity=identities.activity(rng), city=city, office=office, weak=weak,
        margin_bp=margin, compliant=accomplice or rng.random() < 0.93,
        uploads=accomplice or rng.random() < 0.995,
        period=identities.weighted(rng, PERIODS, PERIOD_CUM),
        upload_day=rng.randint(1, 6), counts_owner=not weak and rng.random() < 0.7,
        opened=world.day, opened_month=world.clock.month_index(world.day),
        accomplice=accomplice)
    owner.establishments.append(est)
    world.establishments.append(est)
    return est


def open_file_step(world: World, est: Establishment) -> Step:
    rng = world.rng
    prefix = next(c[2] for c in identities.CITIES if c[0] == est.city)
    payload = {"name": identities.establishment_name(rng),
               "commercial_registration": world.ids.commercial_registration(prefix),
               "activity": est.activity, "city": est.city,
               "owner_counts_as_saudi": est.counts_owner}
    return Step("establishment.open_file", est.file_number, payload, world.owner_acting(est))


def open_file(world: World) -> bool:
    """A newly registered owner's first file, or an existing owner's next one."""
    owner = _opener(world)
    if owner is None:
        return False
    est = establishment(world, owner, weak=world.rng.random() < 0.05)
    acting = world.owner_acting(est)
    steps = [open_file_step(world, est)]
    if not est.weak and world.rng.random() < 0.6:
        steps += [join_step(world, est, new_saudi(world, est), acting)
                  for _ in range(world.rng.randint(1, 3))]
    world.add(steps)
    return True


def _opener(world: World) -> Account | None:
    waiting = world.waiting_owners
    if waiting and waiting[0].since <= world.day:
        return waiting.popleft()
    for _ in range(5):
        owner = world.owners[int(world.rng.random() * len(world.owners))]
        if not owner.locked and owner.since <= world.day and owner.establishments:
            return owner
    return None


def branch_step(world: World, est: Establishment, acting: Acting) -> Step:
    branch = f"BR-{len(est.branches) + 1:02d}"
    est.branches.append(branch)
    city = est.city if world.rng.random() < 0.6 else identities.city(world.rng)[1]
    return Step("establishment.branch_add", est.file_number,
                {"branch_id": branch, "city": city}, acting)


def add_branch(world: World) -> bool:
    est = world.pools.staffed.pick(world.rng)
    if est is None or est.weak or est.headcount < 10 or not world.serviceable(est):
        return False
    world.add([branch_step(world, est, world.acting_for(est, "establishment.branch_add"))])
    return True


def change_activity(world: World) -> bool:
    """To an activity whose thresholds the establishment still meets."""
    est = world.pools.everyone.pick(world.rng)
    if est is None or not world.serviceable(est):
        return False
    fits = [a for a in identities.ACTIVITIES if a != est.activity and _fits(world, est, a)]
    if not fits:
        return False
    est.activity = world.rng.choice(fits)
    world.add([Step("establishment.activity_change", est.file_number,
                    {"activity": est.activity},
                    world.acting_for(est, "establishment.activity_change"))])
    return True


def _fits(world: World, est: Establishment, activity: str) -> bool:
    if est.weak or est.headcount <= 5:
        return True
    need = world.medium_green_bp(activity, est.headcount) + est.margin_bp
    return est.share_bp() >= need


def _asker(world: World) -> Establishment | None:
    """An establishment with staff; a red one only now and then."""
    for _ in range(10):
        est = world.pools.staffed.pick(world.rng)
        if est is not None and world.serviceable(est) and (
                not est.weak or world.rng.random() < WEAK_TRIES):
            return est
    return None


def certificate(world: World) -> bool:
    est = _asker(world)
    if est is None:
        return False
    world.add([Step("certificate.saudization", est.file_number, {},
                    world.acting_for(est, "certificate.saudization"))])
    return True


def recruitment(world: World, code: str) -> bool:
    est = _recruiter(world)
    if est is None:
        return False
    count = max(1, min(1000, int(world.rng.paretovariate(1.3))))
    world.add([Step(code, est.file_number, {"count": count}, world.acting_for(est, code))])
    return True


def _recruiter(world: World) -> Establishment | None:
    for _ in range(10):
        est = world.pools.receivers.pick(world.rng)
        if est is not None and world.serviceable(est) and world.healthy_after(est, 0, 0):
            return est
    return None


def issue_visa(world: World) -> bool:
    """Mostly a green establishment's visa; now and then a red one tries (refused)."""
    rng = world.rng
    est = _red_asker(world) if rng.random() < WEAK_TRIES else _recruiter(world)
    if est is None:
        return False
    visa = Visa(est, world.next_visa_id(), identities.nationality(rng),
                rng.choice(identities.ACTIVITIES[est.activity][1]), world.day)
    world.add([Step("visa.issue", est.file_number,
                    {"visa_id": visa.visa_id, "nationality": visa.nationality,
                     "profession": visa.profession},
                    world.acting_for(est, "visa.issue"))])
    if not est.weak:
        world.visas.append(visa)
    return True


def _red_asker(world: World) -> Establishment | None:
    for _ in range(10):
        est = world.pools.staffed.pick(world.rng)
        if est is not None and est.weak and world.serviceable(est):
            return est
    return None


def cancel_visa(world: World) -> bool:
    """The newest unused visa: plans change soon after a visa is issued."""
    visas = world.visas
    if not visas or visas[-1].issued >= world.day:
        return False
    visa = visas.pop()
    est = visa.establishment
    world.add([Step("visa.cancel", est.file_number, {"visa_id": visa.visa_id},
                    world.acting_for(est, "visa.cancel"))])
    return True


def compensatory(world: World) -> bool:
    """A visa in place of a worker who left the kingdom."""
    while world.departures:
        est, worker_id, _ = world.departures.popleft()
        if est.weak or not world.serviceable(est) or not world.healthy_after(est, 0, 0) \
                or (est.headcount <= 5 and not est.small_green()):
            continue
        world.add([Step("visa.compensatory_request", est.file_number,
                        {"for_worker_id": worker_id},
                        world.acting_for(est, "visa.compensatory_request"))])
        return True
    return False


def schedule_wage_files(world: World, month_start: int) -> None:
    """Early each month, each establishment files the previous month's wages."""
    month = world.clock.month_index(month_start) - 1
    for est in world.establishments:
        if est.uploads and est.opened < month_start:
            day = month_start + est.upload_day - 1
            while world.clock.weekend(day):
                day += 1
            world.at(day, _wage_file, world, est, month)


def _wage_file(world: World, est: Establishment, month: int) -> None:
    total = est.headcount
    if est.compliant:
        paid = total - (world.rng.randint(0, total // 40) if total >= 40 else 0)
    else:
        paid = int(total * world.rng.uniform(0.45, 0.75))
    est.filed_month, est.filed_day = max(est.filed_month, month), world.day
    world.add([Step("payroll.wage_protection_upload", est.file_number,
                    {"month": world.clock.month_text(month), "workers_total": total,
                     "workers_paid_as_recorded": paid},
                    world.acting_for(est, "payroll.wage_protection_upload"))])
