"""Account services: registrations, delegates and agents, password and e-mail changes.

The domain admits a delegate only after the owner's grant and the delegate's
confirmation on an earlier request, and an agent only after the owner's appointment;
these functions space the steps over days so that no actor acts before it may.
"""

from __future__ import annotations

from typing import Final

from simulator import identities
from simulator.population import Account, Establishment, Grant
from simulator.sessions import EMPTY, Step
from simulator.world import World

PERMITS: Final = ("permit.issue", "permit.renew", "permit.temporary", "worker.join")
PEOPLE: Final = ("worker.profession_change", "worker.branch_transfer", "absence.report",
                 "absence.cancel", "dependents.transfer", "permit.final_exit",
                 "worker.service_transfer")
OFFICE: Final = ("payroll.wage_protection_upload", "certificate.saudization", "visa.issue",
                 "visa.cancel", "visa.compensatory_request", "recruitment.balance_request",
                 "recruitment.disbursement_request", "establishment.activity_change",
                 "establishment.branch_add")
# The grants owners give: the permits clerk, the HR officer, or the general manager.
GRANTS: Final = ((35, frozenset(PERMITS)), (25, frozenset(PERMITS + PEOPLE)),
                 (40, frozenset(PERMITS + PEOPLE + OFFICE)))


def new_account(world: World, role: str) -> Account:
    """A person with one or two devices and ip addresses and a habit of hours."""
    rng = world.rng
    account_id = world.ids.national_id()
    devices = [(world.ids.device(), rng.choice(identities.USER_AGENTS))
               for _ in range(1 if rng.random() < 0.6 else 2)]
    ips = [identities.home_ip(rng) for _ in range(1 if rng.random() < 0.5 else 2)]
    start, span = _hours(world, role)
    account = Account(account_id, role, identities.email(rng, account_id), devices, ips,
                      start, span, method="password_otp" if rng.random() < 0.8 else "password",
                      since=world.day + 1)
    world.accounts.append(account)
    return account


def _hours(world: World, role: str) -> tuple[int, int]:
    """Office hours for most (Riyadh 08:00-17:00); some owners work evenings or early."""
    roll = world.rng.random()
    if role == "owner" and roll < 0.2:
        return 18 * 60 + world.rng.randint(0, 60), 240
    if role == "owner" and roll < 0.3:
        return 6 * 60 + 30, 180
    return 7 * 60 + 30 + world.rng.randint(0, 90), 420


def registration(world: World, account: Account, service: str) -> Step:
    acting = world.acting(account, account.role, None, "portal")
    return Step(service, None, {"email": account.email}, acting)


def register_portal(world: World) -> bool:
    """A delegate-to-be or an agent-to-be registers; most never get a grant."""
    role = "agent" if world.rng.random() < 0.2 else "delegate"
    account = new_account(world, role)
    world.add([registration(world, account, "portal.registration")])
    (world.waiting_agents if role == "agent" else world.waiting_delegates).append(account)
    return True


def register_owner(world: World) -> bool:
    account = new_account(world, "owner")
    world.add([registration(world, account, "account.owner_registered")])
    world.owners.append(account)
    world.waiting_owners.append(account)
    return True


def grant(world: World, est: Establishment, delegate: Account) -> Step:
    """The owner's grant; the delegate confirms one to three days later."""
    rng, d = world.rng, world.day
    services = rng.choices([g[1] for g in GRANTS], weights=[g[0] for g in GRANTS])[0]
    record = Grant(delegate, est, services, d)
    payload: dict[str, object] = {"delegate_account_id": delegate.account_id,
                                  "services": sorted(services)}
    if rng.random() < 0.5:
        payload["valid_from"] = world.clock.text(d)
    if rng.random() < 0.3:
        record.valid_until = d + rng.randint(180, 365)
        payload["valid_until"] = world.clock.text(record.valid_until)
    est.grants.append(record)
    world.at(d + rng.randint(1, 3), confirm, world, record)
    return Step("account.delegate_registered", est.file_number, payload,
                world.owner_acting(est))


def confirm(world: World, record: Grant) -> None:
    if record.revoked is not None or record.delegate.locked:
        return
    record.confirmed = world.day
    acting = world.acting(record.delegate, "delegate", None, "portal")
    world.add([Step("account.delegate_confirmed", record.establishment.file_number, EMPTY,
                    acting)])


def grant_delegate(world: World) -> bool:
    """An owner of an establishment with staff to spare grants a waiting delegate."""
    waiting = world.waiting_delegates
    if not waiting or waiting[0].since > world.day:
        return False
    for _ in range(10):
        est = world.pools.staffed.pick(world.rng)
        if est is not None and not est.owner.locked and est.owner.since < world.day \
                and all(g.delegate is not waiting[0] for g in est.grants):
            world.add([grant(world, est, waiting.popleft())])
            return True
    return False


def appoint_agent(world: World) -> bool:
    waiting = world.waiting_agents
    if not waiting or waiting[0].since > world.day:
        return False
    for _ in range(10):
        owner = world.owners[int(world.rng.random() * len(world.owners))]
        if owner.agent is None and not owner.locked and owner.establishments \
                and owner.since < world.day:
            world.add([appointment(world, owner, waiting.popleft())])
            return True
    return False


def appointment(world: World, owner: Account, agent: Account) -> Step:
    owner.agent, owner.agent_since = agent, world.day
    if agent not in world.agents:
        world.agents.append(agent)
    return Step("account.agent_registered", None, {"agent_account_id": agent.account_id},
                world.acting(owner, "owner", None, "portal"))


def revoke(world: World) -> bool:
    for _ in range(10):
        est = world.pools.staffed.pick(world.rng)
        live = [g for g in est.grants if g.revoked is None] if est else []
        if est is None or not live or est.owner.locked:
            continue
        record = live[0]
        record.revoked = world.day
        world.add([Step("account.delegate_revoked", est.file_number,
                        {"delegate_account_id": record.delegate.account_id},
                        world.owner_acting(est))])
        return True
    return False


def change_password(world: World) -> bool:
    account = _someone(world)
    if account is None:
        return False
    acting = world.acting(account, account.role, None, "portal")
    # The new credential is decided when stamped: sessions of the day may come first.
    world.add([Step("account.password_changed", None, {}, acting)])
    return True


def change_email(world: World) -> bool:
    account = _someone(world)
    if account is None:
        return False
    account.email = identities.email(world.rng, account.account_id)
    world.add([Step("account.email_changed", None, {"email": account.email},
                    world.acting(account, account.role, None, "portal"))])
    return True


def _someone(world: World) -> Account | None:
    for _ in range(5):
        account = world.accounts[int(world.rng.random() * len(world.accounts))]
        if account.since < world.day and not account.locked:
            return account
    return None
