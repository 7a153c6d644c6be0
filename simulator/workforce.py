"""Worker services: hiring, permits, absence reports, exits, transfers and changes.

Each function checks the simulator's view of the worker the way the domain will
(domain/permits.py, absence.py, mobility.py, workforce.py), updates that view, and
plans the request; so a request the domain refuses is a refusal the simulator meant
(a red establishment, an imprisoned worker), not a slip.
"""

from __future__ import annotations

from typing import Any

from simulator import identities
from simulator.population import ACTIVE, EXITING, GONE, REPORTED, Establishment, Worker
from simulator.sessions import Acting, Mark, Step
from simulator.world import BOOTSTRAP_DAYS, Visa, World

PERIODS = (3, 6, 9, 12)
PERIOD_CUM = (10, 30, 40, 100)  # most buy a year
CANCELLED_SHARE = 110_613 / 213_979  # seed 002: reports cancelled for reports filed
LATE_CANCELS = 0.03  # owners who try to cancel after the window has closed
PREMATURE_RENEWALS = 0.005  # for each renewal, an attempt with more than 180 days left


# -- joining and leaving ---------------------------------------------------------------
def attach(world: World, est: Establishment, w: Worker) -> None:
    w.est = est
    w.joined = world.day
    w.busy = world.day
    est.workers.add(w)
    est.count(w, +1)
    if not w.saudi:
        world.expats.add(w)


def detach(world: World, w: Worker) -> Establishment | None:
    est = w.est
    if est is None:
        return None
    est.workers.remove(w)
    if w.state != REPORTED:
        est.count(w, -1)
    world.expats.remove(w)
    w.est = None
    return est


def join_step(world: World, est: Establishment, w: Worker, acting: Acting,
              *, arrival: int | None = None, visa_id: str | None = None) -> Step:
    """The worker.join request, and the worker attached to the establishment."""
    text = world.clock.text
    payload: dict[str, Any] = {
        "worker_id": w.worker_id, "nationality": w.nationality,
        "saudi_category": _category(w), "profession": w.profession, "wage_sar": w.wage,
        "part_time": w.part_time, "disabled": w.disabled}
    if est.branches:
        w.branch = est.branches[int(world.rng.random() * len(est.branches))]
        payload["branch_id"] = w.branch
    if arrival is not None:
        payload["arrival_date"] = text(arrival)
        payload["iqama_expiry"] = text(w.iqama_until)
    if w.contract_end is not None:
        payload["contract_end"] = text(w.contract_end)
    if visa_id is not None:
        payload["visa_id"] = visa_id
    attach(world, est, w)
    return Step("worker.join", est.file_number, payload, acting)


def _category(w: Worker) -> str | None:
    if not w.saudi:
        return None
    return "saudi" if w.nationality == "SAU" else "gcc"


def new_saudi(world: World, est: Establishment) -> Worker:
    rng = world.rng
    world.workers += 1
    wage, part_time = identities.saudi_wage(rng)
    if rng.random() < 0.01:
        return Worker(world.ids.iqama(), rng.choice(identities.GCC), True,
                      rng.choice(identities.SAUDI_PROFESSIONS), wage, part_time)
    return Worker(world.ids.national_id(), "SAU", True,
                  rng.choice(identities.SAUDI_PROFESSIONS), wage, part_time,
                  disabled=rng.random() < 0.005 and wage >= 3000)


def new_expat(world: World, est: Establishment, *, border: bool,
              nationality: str | None = None, profession: str | None = None) -> Worker:
    rng = world.rng
    world.workers += 1
    worker_id = world.ids.border_number() if border else world.ids.iqama()
    job = profession or rng.choice(identities.ACTIVITIES[est.activity][1])
    return Worker(worker_id, nationality or identities.nationality(rng), False, job,
                  identities.expat_wage(rng))


def top_up(world: World, est: Establishment, acting: Acting) -> list[Step]:
    """Saudis hired until the establishment is comfortably medium green again."""
    steps: list[Step] = []
    while est.headcount > 5 and not world.healthy_after(est, 0, 0) and len(steps) < 60:
        steps.append(join_step(world, est, new_saudi(world, est), acting))
    return steps


def leave(world: World, w: Worker, kind: str) -> None:
    """The passports authority says the worker left the kingdom."""
    step = Step("integration.passports_sync", None, {"worker_id": w.worker_id, "kind": kind},
                world.system(world.passports))
    world.add([step])
    est = detach(world, w)
    w.state = GONE
    w.token += 1
    if est is not None:
        world.departures.append((est, w.worker_id, world.day))


# -- permits ---------------------------------------------------------------------------
def months_for(world: World, est: Establishment) -> int:
    if world.rng.random() < 0.75:
        return est.period
    return identities.weighted(world.rng, PERIODS, PERIOD_CUM)


def issue_step(world: World, w: Worker, acting: Acting, months: int) -> Step:
    assert w.est is not None
    if not w.est.weak:
        w.permit_until = world.clock.plus_months(world.day, months) - 1
        schedule_renewal(world, w, first=world.day < BOOTSTRAP_DAYS)
    return Step("permit.issue", w.est.file_number,
                {"worker_id": w.worker_id, "months": months}, acting)


def schedule_renewal(world: World, w: Worker, *, first: bool = False) -> None:
    """When the owner renews: usually within a month of expiry, sometimes earlier or
    a little late; the first renewal after the bootstrap anywhere in the window, so
    that renewals do not come in waves."""
    rng, until = world.rng, w.permit_until
    roll = rng.random()
    if first:
        lead = rng.uniform(0, 170)
    elif roll < 0.80:
        lead = rng.uniform(0, 30)
    elif roll < 0.95:
        lead = rng.uniform(30, 120)
    else:
        lead = -rng.uniform(1, 18)
    day = max(int(until - lead), until - 170, world.day + 1, BOOTSTRAP_DAYS)
    token = w.token
    world.at(day, renewal_due, world, w, token, until)
    if w.iqama_until < day + 75:
        sync = max(world.day + 1, day - rng.randint(2, 10))
        world.at(sync, iqama_renewed, world, w)


def renewal_due(world: World, w: Worker, token: int, until: int) -> None:
    d = world.day
    if w.token != token or w.est is None or w.state in (EXITING, GONE):
        return
    late_limit = until + 26
    if w.state == REPORTED or w.busy >= d or (world.clock.weekend(d) and world.rng.random() < 0.85):
        if d + 1 <= late_limit:
            world.at(d + (3 if w.state == REPORTED else 1), renewal_due, world, w, token,
                     until)
        else:
            _lapse(world, w)
        return
    _renew(world, w, w.est, until)


def _renew(world: World, w: Worker, est: Establishment, until: int) -> None:
    d = world.day
    months = months_for(world, est)
    acting = world.acting_for(est, "permit.renew")
    world.add([Step("permit.renew", est.file_number,
                    {"worker_id": w.worker_id, "months": months}, acting)])
    world.renewals_today += 1
    w.busy = d
    if est.weak or w.imprisoned or world.months_late(est) > 3:
        if w.imprisoned and d + 14 <= until + 26:
            token = w.token
            world.at(d + 14, renewal_due, world, w, token, until)
        else:
            _lapse(world, w)
        return
    w.permit_until = world.clock.plus_months(max(until + 1, d), months) - 1
    w.temporary = False
    schedule_renewal(world, w)


def _lapse(world: World, w: Worker) -> None:
    w.token += 1
    if w.est is not None and not w.est.weak:
        world.unpermitted.append(w)


def premature_renewal(world: World) -> bool:
    """An owner who renews too early, with more than 180 days left: refused."""
    d = world.day
    w = world.expats.pick(world.rng, lambda w: movable(w, d) and w.permit_until - d > 200)
    if w is None or w.est is None or w.est.weak or not world.serviceable(w.est):
        return False
    w.busy = d
    world.add([Step("permit.renew", w.est.file_number,
                    {"worker_id": w.worker_id, "months": months_for(world, w.est)},
                    world.acting_for(w.est, "permit.renew"))])
    return True


def iqama_renewed(world: World, w: Worker) -> None:
    if w.state == GONE or w.est is None:
        return
    w.iqama_until = max(w.iqama_until, world.day) + 365 + world.rng.randint(0, 20)
    world.add([Step("integration.passports_sync", None,
                    {"worker_id": w.worker_id, "kind": "iqama_renewed",
                     "iqama_expiry": world.clock.text(w.iqama_until)},
                    world.system(world.passports))])


def temporary(world: World) -> bool:
    d = world.day
    pool = world.unpermitted
    for _ in range(min(30, len(pool))):
        w = _swap_pop(world, pool)
        est = w.est
        if (est is None or est.weak or w.state != ACTIVE or w.imprisoned or w.busy >= d
                or w.permit_until >= d or not world.serviceable(est)):
            continue
        months = world.rng.randint(1, 3)
        acting = world.acting_for(est, "permit.temporary")
        world.add([Step("permit.temporary", est.file_number,
                        {"worker_id": w.worker_id, "months": months}, acting)])
        w.busy, w.temporary = d, True
        w.permit_until = world.clock.plus_months(d, months) - 1
        world.at(w.permit_until + world.rng.randint(1, 30), pool.append, w)
        return True
    return False


def _swap_pop(world: World, pool: list[Worker]) -> Worker:
    index = int(world.rng.random() * len(pool))
    pool[index], pool[-1] = pool[-1], pool[index]
    return pool.pop()


# -- arrivals --------------------------------------------------------------------------
def arrive(world: World) -> bool:
    """A worker arrives on a visa (or, without one, on an older visa) and gets a permit."""
    d = world.day
    visa = _ready_visa(world)
    est = visa.establishment if visa else world.pools.receivers.pick(world.rng)
    if est is None or not _can_grow(world, est):
        return False
    rng = world.rng
    earliest = visa.issued + 1 if visa else d - 30
    arrival = max(earliest, d - rng.randint(0, 25))
    w = new_expat(world, est, border=rng.random() < 0.5,
                  nationality=visa.nationality if visa else None,
                  profession=visa.profession if visa else None)
    w.iqama_until = arrival + 365 + rng.randint(0, 30)
    w.contract_end = arrival + rng.choice((365, 730))
    acting = world.acting_for(est, "permit.issue", "worker.join")
    join = join_step(world, est, w, acting, arrival=arrival,
                     visa_id=visa.visa_id if visa else None)
    issue = issue_step(world, w, acting, months_for(world, est))
    world.add([join, issue, *top_up(world, est, acting)])
    return True


def _ready_visa(world: World) -> Visa | None:
    visas = world.visas
    if visas and visas[0].issued <= world.day - 10:
        return visas.popleft()
    return None


def _can_grow(world: World, est: Establishment) -> bool:
    """Establishments of five or fewer stay that small: their weekly Nitaqat samples
    were taken without the table, and would drag a bigger one into red."""
    if est.weak or not world.serviceable(est):
        return False
    return est.headcount >= 6 or est.headcount + 1 <= 5


# -- absence reports -------------------------------------------------------------------
def reportable(w: Worker, d: int) -> bool:
    return (w.state == ACTIVE and not w.imprisoned and w.busy < d and w.est is not None
            and w.permit_until - d >= 62 and w.iqama_until - d >= 62)


def report_absence(world: World) -> bool:
    d = world.day
    w = world.expats.pick(world.rng, lambda w: reportable(w, d))
    if w is None or w.est is None or not world.serviceable(w.est):
        return False
    est = w.est
    world.cancel_balance += CANCELLED_SHARE
    cancelled = world.cancel_balance >= 1.0
    file_report(world, w, world.acting_for(est, "absence.report"), free=not cancelled)
    if cancelled:
        world.cancel_balance -= 1.0
        late = world.rng.random() < LATE_CANCELS
        when = d + (world.rng.randint(17, 20) if late else world.rng.randint(1, 12))
        world.at(min(when, world.clock.days - 1), cancel_absence, world, w, est, d)
    return True


def file_report(world: World, w: Worker, acting: Acting, mark: Mark | None = None, *,
                free: bool = True) -> Step:
    """The report, and the worker detached from the count; free to take another job
    (unless the report is to be cancelled); absent after 60 days."""
    est = w.est
    assert est is not None
    d = world.day
    payload: dict[str, Any] = {"worker_id": w.worker_id}
    if world.rng.random() < 0.7:
        payload["last_seen_on"] = world.clock.text(d - world.rng.randint(1, 10))
    step = Step("absence.report", est.file_number, payload, acting, mark)
    if mark is None:
        world.add([step])
    est.count(w, -1)
    w.state, w.reported_on, w.reported_by, w.busy = REPORTED, d, est, d
    if free:
        world.free_agents.append(w)
    world.at(d + 60, _absconded, world, w, d)
    return step


def cancel_absence(world: World, w: Worker, est: Establishment, filed: int) -> None:
    d = world.day
    if w.state != REPORTED or w.reported_on != filed or w.est is not est:
        return
    if w.busy >= d:
        if d + 1 - filed <= 13:
            world.at(d + 1, cancel_absence, world, w, est, filed)
        return
    acting = world.acting_for(est, "absence.cancel", "worker.join")
    step = Step("absence.cancel", est.file_number, {"worker_id": w.worker_id}, acting)
    w.busy = d
    if d - filed > 14:  # too late: refused, the report stands
        world.add([step])
        world.free_agents.append(w)
        return
    w.state, w.reported_by = ACTIVE, None
    est.count(w, +1)
    world.add([step, *top_up(world, est, acting)])


def _absconded(world: World, w: Worker, filed: int) -> None:
    """Sixty days on, the worker counts as absent: gone from the simulator's rosters."""
    if w.state == REPORTED and w.reported_on == filed and w.est is not None:
        detach(world, w)
        w.state = GONE
        w.token += 1


# -- exits and moves -------------------------------------------------------------------
def movable(w: Worker, d: int) -> bool:
    return w.state == ACTIVE and not w.imprisoned and w.busy < d and w.est is not None


def final_exit(world: World) -> bool:
    d = world.day
    w = world.expats.pick(world.rng, lambda w: movable(w, d))
    if w is None or w.est is None:
        return False
    request_exit(world, w, world.acting_for(w.est, "permit.final_exit"))
    return True


def request_exit(world: World, w: Worker, acting: Acting, mark: Mark | None = None) -> Step:
    assert w.est is not None
    step = Step("permit.final_exit", w.est.file_number, {"worker_id": w.worker_id}, acting,
                mark)
    if mark is None:
        world.add([step])
    w.state, w.busy = EXITING, world.day
    w.token += 1
    world.at(world.day + world.rng.randint(3, 20), _exit_confirmed, world, w)
    return step


def _exit_confirmed(world: World, w: Worker) -> None:
    if w.state == EXITING:
        leave(world, w, "final_exit_confirmed")


def transfer(world: World) -> bool:
    """Half by the receiving establishment for a worker free to move (contract ended,
    or reported absent by the employer); half released by the employer."""
    if world.rng.random() < 0.45 and _receiver_requests(world):
        return True
    return _employer_releases(world)


def receiver_for(world: World, w: Worker) -> Establishment | None:
    for _ in range(10):
        est = world.pools.receivers.pick(world.rng)
        if (est is not None and est is not w.est and _can_grow(world, est)
                and world.compliant_now(est) and world.healthy_after(est, 0, 0)):
            return est
    return None


def _receiver_requests(world: World) -> bool:
    d = world.day
    w = _reported_free(world) if world.rng.random() < 0.5 else None
    if w is None:
        w = world.expats.pick(world.rng, lambda w: movable(w, d) and w.contract_end is not None
                              and w.contract_end < d)
    if w is None or w.est is None:
        return False
    receiver = receiver_for(world, w)
    if receiver is None:
        return False
    acting = world.acting_for(receiver, "worker.service_transfer", "worker.join")
    move(world, w, receiver, acting, requester=receiver)
    return True


def _reported_free(world: World) -> Worker | None:
    """A worker reported absent in the last 55 days: free to take another job."""
    d, pool = world.day, world.free_agents
    for _ in range(min(20, len(pool))):
        w = _swap_pop(world, pool)
        if (w.state == REPORTED and d - w.reported_on <= 55 and not w.imprisoned
                and w.busy < d and w.est is not None):
            return w
    return None


def _employer_releases(world: World) -> bool:
    d = world.day
    w = world.expats.pick(world.rng, lambda w: movable(w, d))
    if w is None or w.est is None or not world.serviceable(w.est):
        return False
    receiver = receiver_for(world, w)
    if receiver is None:
        return False
    move(world, w, receiver, world.acting_for(w.est, "worker.service_transfer"),
         requester=w.est)
    return True


def move(world: World, w: Worker, receiver: Establishment, acting: Acting, *,
         requester: Establishment, mark: Mark | None = None) -> Step:
    """The transfer request, the worker moved, and the receiver's Saudis topped up (by
    the receiver, in the same session when the receiver asked)."""
    step = Step("worker.service_transfer", requester.file_number,
                {"worker_id": w.worker_id, "to_establishment_id": receiver.file_number,
                 "worker_consent": True}, acting, mark)
    detach(world, w)
    w.state, w.reported_by, w.contract_end, w.branch = ACTIVE, None, None, None
    attach(world, receiver, w)
    if w.permit_until < world.day:
        world.unpermitted.append(w)
    same = requester is receiver and mark is None
    hiring = acting if same else world.acting_for(receiver, "worker.join")
    topped = top_up(world, receiver, hiring)
    if same:
        world.add([step, *topped])
        return step
    if mark is None:
        world.add([step])
    if topped:
        world.add(topped)
    return step


# -- changes ---------------------------------------------------------------------------
def change_profession(world: World) -> bool:
    d = world.day
    w = world.expats.pick(world.rng, lambda w: movable(w, d) and w.iqama_until > d + 2)
    if w is None or w.est is None or not world.serviceable(w.est):
        return False
    jobs = [j for j in identities.ACTIVITIES[w.est.activity][1] if j != w.profession]
    w.profession = world.rng.choice(jobs or list(identities.SAUDI_PROFESSIONS))
    w.busy = d
    world.add([Step("worker.profession_change", w.est.file_number,
                    {"worker_id": w.worker_id, "profession": w.profession},
                    world.acting_for(w.est, "worker.profession_change"))])
    return True


def change_branch(world: World) -> bool:
    d = world.day
    est = world.pools.branched.pick(world.rng)
    if est is None or len(est.branches) < 2 or not world.serviceable(est):
        return False
    w = est.workers.pick(world.rng, lambda w: movable(w, d))
    if w is None:
        return False
    w.branch = world.rng.choice([b for b in est.branches if b != w.branch])
    w.busy = d
    world.add([Step("worker.branch_transfer", est.file_number,
                    {"worker_id": w.worker_id, "branch_id": w.branch},
                    world.acting_for(est, "worker.branch_transfer"))])
    return True


def transfer_dependents(world: World) -> bool:
    d = world.day
    w = world.expats.pick(world.rng, lambda w: movable(w, d) and w.worker_id[0] == "2")
    if w is None or w.est is None or not world.serviceable(w.est):
        return False
    w.busy = d
    world.add([Step("dependents.transfer", w.est.file_number,
                    {"worker_id": w.worker_id, "dependents": world.rng.randint(1, 4)},
                    world.acting_for(w.est, "dependents.transfer"))])
    return True


# -- the passports authority and the national information centre -----------------------
def exit_without_return(world: World) -> bool:
    d = world.day
    w = world.expats.pick(world.rng, lambda w: movable(w, d))
    if w is None:
        return False
    leave(world, w, "exit_without_return")
    return True


def imprison(world: World) -> bool:
    d = world.day
    w = world.expats.pick(world.rng, lambda w: movable(w, d))
    if w is None:
        return False
    _flag(world, w, True)
    world.at(d + world.rng.randint(20, 150), _flag, world, w, False)
    return True


def _flag(world: World, w: Worker, imprisoned: bool) -> None:
    if w.state == GONE or w.imprisoned == imprisoned:
        return
    w.imprisoned = imprisoned
    world.add([Step("integration.imprisonment_flag", None,
                    {"worker_id": w.worker_id, "imprisoned": imprisoned},
                    world.system(world.nic))])
