"""The daily round: what the ministry's users ask for on each day of the history.

Renewals come from the permits' own calendar. Every other service the ministry counted
(seed 002) is scaled to them: each day adds the service's ratio to renewals times the
day's renewals to a balance, and as many whole requests as the balance holds are made.
So the history's mix follows the published one however big it is, and still varies by
day and by weekday as renewals do.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Final

from simulator import accounts, bootstrap, employers, leaks, workforce
from simulator.figures import SERVICE_COUNTS, per_renewal
from simulator.population import Establishment
from simulator.world import BOOTSTRAP_DAYS, Draw, Pools, World

Job = Callable[[World], bool]


@dataclass
class Quota:
    """A service's running balance: how many requests it is owed."""

    code: str
    ratio: float
    job: Job
    balance: float = 0.5

    def run(self, world: World, amount: float) -> int:
        self.balance += self.ratio * amount
        done = 0
        while self.balance >= 1.0 and self.job(world):
            self.balance -= 1.0
            done += 1
        return done


def _quota(code: str, job: Job) -> Quota:
    return Quota(code, per_renewal(code), job)


def _counted_quotas() -> list[Quota]:
    """Seed 002's services, but for renewals (the anchor) and cancellations (which
    follow the reports)."""
    jobs: dict[str, Job] = {
        "permit.issue": workforce.arrive,
        "permit.temporary": workforce.temporary,
        "permit.final_exit": workforce.final_exit,
        "worker.branch_transfer": workforce.change_branch,
        "establishment.activity_change": employers.change_activity,
        "worker.profession_change": workforce.change_profession,
        "worker.service_transfer": workforce.transfer,
        "portal.registration": accounts.register_portal,
        "account.delegate_registered": accounts.grant_delegate,
        "account.agent_registered": accounts.appoint_agent,
        "account.owner_registered": accounts.register_owner,
        "visa.compensatory_request": employers.compensatory,
        "certificate.saudization": employers.certificate,
        "visa.cancel": employers.cancel_visa,
        "absence.report": workforce.report_absence,
        "dependents.transfer": workforce.transfer_dependents,
        "establishment.open_file": employers.open_file,
        "recruitment.balance_request": partial(employers.recruitment,
                                               code="recruitment.balance_request"),
        "recruitment.disbursement_request": partial(employers.recruitment,
                                                    code="recruitment.disbursement_request"),
    }
    assert set(jobs) | {"permit.renew", "absence.cancel"} == set(SERVICE_COUNTS)
    return [_quota(code, jobs[code]) for code in SERVICE_COUNTS if code in jobs]


# Services the ministry did not count, at rates of their own: per renewal for visas,
# per account, grant or worker a day for the rest.
VISAS_PER_RENEWAL: Final = 1.1 * (per_renewal("permit.issue") + per_renewal("visa.cancel"))
PASSWORD_CHANGES_A_DAY: Final = 1 / 200  # per account
EMAIL_CHANGES_A_DAY: Final = 1 / 1500  # per account
REVOCATIONS_A_DAY: Final = 1 / 2000  # per establishment
BRANCHES_A_DAY: Final = 1 / 1500  # per establishment
EXITS_WITHOUT_RETURN_A_DAY: Final = 0.015 / 365  # per expatriate
IMPRISONMENTS_A_DAY: Final = 0.002 / 365  # per expatriate
WEEKEND_SCALE: Final = 0.25  # people's own errands on Friday and Saturday


class Activity:
    def __init__(self, world: World, founders: dict[int, list[bootstrap.Founder]],
                 campaigns: dict[int, list[leaks.Campaign]]) -> None:
        self.world = world
        self.founders = founders
        self.campaigns = campaigns
        self.struck: list[leaks.Campaign] = []
        self.setup_counts: Counter[str] = Counter()  # requests stamped in the bootstrap
        self.activity_counts: Counter[str] = Counter()  # and after it
        self._victims: set[str] = set()
        self.quotas = _counted_quotas()
        self.visas = Quota("visa.issue", VISAS_PER_RENEWAL, employers.issue_visa)
        self.mistakes = Quota("permit.renew", workforce.PREMATURE_RENEWALS,
                              workforce.premature_renewal)
        self.rates = [Quota("account.password_changed", PASSWORD_CHANGES_A_DAY,
                            accounts.change_password),
                      Quota("account.email_changed", EMAIL_CHANGES_A_DAY, accounts.change_email),
                      Quota("account.delegate_revoked", REVOCATIONS_A_DAY, accounts.revoke),
                      Quota("establishment.branch_add", BRANCHES_A_DAY, employers.add_branch)]
        self.integrations = [
            Quota("exit_without_return", EXITS_WITHOUT_RETURN_A_DAY,
                  workforce.exit_without_return),
            Quota("imprisonment", IMPRISONMENTS_A_DAY, workforce.imprison)]
        self._month_starts = set(world.clock.month_starts())

    def run(self, day: int) -> None:
        world = self.world
        world.day, world.renewals_today = day, 0
        if day < bootstrap.FOUNDING_DAYS:
            self._found(day)
        if day >= BOOTSTRAP_DAYS and (day - BOOTSTRAP_DAYS) % 7 == 0:
            rebuild_pools(world)
        if day in self._month_starts:
            employers.schedule_wage_files(world, day)
        if day >= BOOTSTRAP_DAYS:
            self._strike(day)
            self._accounts()
        for job, args in world.calendar.pop(day, []):
            job(*args)
        if day >= BOOTSTRAP_DAYS:
            self._daily(day)

    def _found(self, day: int) -> None:
        world = self.world
        if day == 0:
            owners = sum(1 for founders in self.founders.values() for _ in founders)
            bootstrap.register_agents(world, owners)
        for founder in self.founders.get(day, []):
            bootstrap.found(self.world, founder)

    def _strike(self, day: int) -> None:
        for campaign in self.campaigns.pop(day, []):
            if leaks.strike(self.world, campaign, self._victims):
                self.struck.append(campaign)
            elif day + 1 < self.world.clock.days:
                self.campaigns.setdefault(day + 1, []).append(campaign)

    def _accounts(self) -> None:
        """Before anything else of the day: a delegate revoked today must not have been
        given today's work."""
        world = self.world
        scale = WEEKEND_SCALE if world.clock.weekend(world.day) else 1.0
        self.rates[0].run(world, scale * len(world.accounts))
        self.rates[1].run(world, scale * len(world.accounts))
        self.rates[2].run(world, scale * len(world.establishments))

    def _daily(self, day: int) -> None:
        world = self.world
        renewals = world.renewals_today
        for quota in self.quotas:
            quota.run(world, renewals)
        self.visas.run(world, renewals)
        self.mistakes.run(world, renewals)
        scale = WEEKEND_SCALE if world.clock.weekend(day) else 1.0
        self.rates[3].run(world, scale * len(world.establishments))
        for quota in self.integrations:
            quota.run(world, len(world.expats))


def rebuild_pools(world: World) -> None:
    """Who may take workers, who has branches, who has staff: redrawn weekly."""
    receivers: list[Establishment] = []
    receiver_weights: list[float] = []
    branched: list[Establishment] = []
    branch_weights: list[float] = []
    staffed: list[Establishment] = []
    for est in world.establishments:
        head = est.headcount
        if head:
            staffed.append(est)
        if len(est.branches) >= 2 and head:
            branched.append(est)
            branch_weights.append(head)
        if not est.weak and not est.accomplice and est.compliant and est.uploads \
                and (head >= 6 or 0 < head <= 4):
            receivers.append(est)
            receiver_weights.append(head ** 0.8)
    world.pools = Pools(receivers=Draw(receivers, receiver_weights),
                        branched=Draw(branched, branch_weights),
                        everyone=Draw(world.establishments, [1.0] * len(world.establishments)),
                        staffed=Draw(staffed, [1.0] * len(staffed)))
