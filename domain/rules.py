"""The rules' figures, each a setting with its default and its public source.

Sources are listed in shared/domain-sources.md; where they disagree the comment says so.
Override any figure with an environment variable SIJIL_RULE_<NAME>.
"""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Rules(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SIJIL_RULE_", frozen=True, extra="ignore")

    # Work permits: issue within 90 days of arrival; renewal opens at 180 days or fewer
    # left; periods of 3, 6, 9 or 12 months (qiwa.sa/en/work-permits, official; Saudi
    # Gazette via zawya.com, 9 Dec 2021).
    permit_issue_window_days: int = 90
    permit_renewal_opens_days: int = 180
    # "and shortly after expiry": no public figure found; 30 days is our assumption.
    permit_renewal_grace_days: int = 30
    permit_periods_months: tuple[int, ...] = (3, 6, 9, 12)
    temporary_permit_max_months: int = 3
    # Fee: 100 SAR a year plus the monthly levy, 700 SAR where expatriates are no more
    # than Saudis, 800 where they are more (Saudi Gazette via zawya.com, 9 Dec 2021).
    permit_fee_sar_a_year: int = 100
    levy_sar_a_month_low: int = 700
    levy_sar_a_month_high: int = 800

    # Absence reports: permit and iqama each with at least 60 days left
    # (alothmanlaw.sa); cancellation window 15 days (absher.sa, official) — one source
    # says 20 (saudi-expatriates.com, 2022); "discontinued from work" for 60 days, then
    # "absent" (Argaam, 23 Oct 2022, quoting the ministry).
    absence_min_document_days: int = 60
    absence_cancel_window_days: int = 15
    absence_discontinued_days: int = 60

    # Job mobility (labour reform, resolution 51848/1442, in force 14 Mar 2021): the
    # receiving establishment medium green or better and at least 80% wage-protection
    # compliant over three months (Okaz, quoting the ministry); 12 months with the first
    # employer; a notice period of 90 days (globalpeoplestrategist.com, secondary).
    transfer_min_compliance_bp: int = 8000
    transfer_compliance_months: int = 3
    transfer_first_employer_days: int = 365
    transfer_notice_days: int = 90

    # Wage protection: two months late suspends every service but work permits; more
    # than three months late suspends all and frees workers to transfer (Saudi Gazette).
    wps_suspend_services_months: int = 2
    wps_suspend_all_months: int = 3

    # Nitaqat: establishments of 5 or fewer are green with one Saudi (jisr.net); the
    # band follows the average of 26 weekly percentages (proven-sa.com, March 2020);
    # a pre-alert within this many percentage points (in basis points) of red (seed 001).
    nitaqat_small_max_headcount: int = 5
    nitaqat_average_weeks: int = 26
    nitaqat_prealert_margin_bp: int = Field(default=200, ge=0)
    # Weights: 4,000 SAR and more counts 1, 3,000-3,999 counts 0.5, less counts 0;
    # part-time 0.5; disabled 4 with a 3,000 SAR minimum, beyond 10% of Saudis 1 each
    # (arabnews.com/node/668001; laboreducation.mlsd.gov.sa, official).
    nitaqat_full_weight_wage_sar: int = 4000
    nitaqat_half_weight_wage_sar: int = 3000
    nitaqat_disabled_weight: int = 4
    nitaqat_disabled_cap_percent: int = 10

    # Saudization certificates are valid for this many days (portal practice; assumption).
    certificate_valid_days: int = 90
