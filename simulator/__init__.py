"""A ministry's worth of realistic e-service requests, for demos, tests and benchmarks.

`simulate(establishments=..., months=..., seed=..., out=...)` writes a deterministic
history: the same arguments give the same bytes (one `random.Random(seed)`, never the
wall clock). It imports only `domain`.

The requests (`out`)
    JSON Lines, one request a line, each valid for `domain.requests.parse_request`,
    sorted by `occurred_at` (UTC, ISO 8601, microseconds, "Z"); request ids
    `r<seed>-<n:09d>` rise with the line number. The history opens with a bootstrap
    (days 0-6): owners register, open their files, add branches and enter the workers
    they already employ — large employers through an "api" connector — and the
    expatriates' current permits are issued; delegates and agents follow. Then each day:
    permit renewals when the permits fall due, every other service the ministry counted
    (shared/data/ministry_statistics.json, seed 002) in proportion to renewals, wage
    files early each month, logins at each session's start, the passports and national
    information centre feeds at night, and the labour offices' share of each service
    (seed 000). People keep habits: one or two devices and ip addresses, Riyadh working
    hours, sessions of several requests. About one establishment in ten is kept red on
    purpose, so the refusals a real history has (no permits, no certificate) occur.

The plan (`plan`, JSON)
    ``arguments`` (as given), ``totals`` (requests, setup, activity, establishments,
    accounts, workers, campaigns, first and last ``occurred_at``), ``services`` (lines
    written per service code: exactly the file's counts), and the same split into
    ``setup`` (the bootstrap's requests) and ``activity`` (the rest). `simulate` returns
    the same figures as a `SimulationSummary`.

The labels (`labels`, JSON Lines; never in the requests)
    The ground truth of the `leaks` leaked-credential campaigns. Per campaign, first a
    header line::

        {"type": "campaign", "campaign": "leak-001", "account_id": <whose credential
         leaked>, "role": "owner"|"delegate", "establishment_id": <the victim's file>,
         "leaked_credential_id", "leaked_at", "thief_device_id", "thief_ip",
         "thief_user_agent", "accomplice_account_id", "accomplice_establishment_id",
         "password_changed": bool, "requests": <how many lines follow>}

    then one line per request the campaign made, in the order written::

        {"type": "request", "request_id", "campaign", "account_id": <whose credential
         leaked>, "credential_id": <the credential the request presented>,
         "actor_account_id": <the victim, or the accomplice owner>, "kind", "occurred_at"}

    ``kind`` is one of login_failed, login, email_changed, password_changed,
    absence_report, final_exit, service_transfer_out (the victim's workers released to
    the accomplice's establishment) and service_transfer_in (the accomplice's
    establishment taking workers the thief just reported absent). Every campaign
    request comes from the thief's device, which the victim never used.

`progress(n)` is called after each simulated day with the number of lines written.
"""

from simulator.history import SimulationSummary, simulate

__all__ = ["SimulationSummary", "simulate"]
