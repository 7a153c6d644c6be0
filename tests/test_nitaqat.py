"""Unit tests of domain/nitaqat.py: weights, the small-establishment rule, thresholds
read from the table, the 26-week average, and the shipped (illustrative) table."""

from __future__ import annotations

import math
from datetime import date, timedelta
from typing import Any

import pytest

from domain.nitaqat import (
    BANDS,
    ThresholdTable,
    Workforce,
    assess,
    at_least,
    average_bp,
    band_for,
    contribution,
    record_sample,
    size_category,
    week_of,
)
from domain.rules import Rules

RULES = Rules()
SHIPPED = ThresholdTable.shipped()
DAY = date(2025, 6, 1)


def weight(wage: int, *, saudi: bool = True, part_time: bool = False,
           disabled: bool = False) -> int:
    return contribution(saudi=saudi, wage_sar=wage, part_time=part_time, disabled=disabled,
                        rules=RULES).weight_milli


def workforce(*contributions: Any, expatriates: int = 0) -> Workforce:
    """A Workforce folded from contributions, as the establishment folds its events."""
    saudis = sum(1 for c in contributions if c.saudi)
    milli = sum(c.weight_milli for c in contributions if c.saudi and not c.disabled)
    disabled = sum(1 for c in contributions if c.disabled)
    return Workforce(saudis, milli, disabled, expatriates)


def saudi(wage: int = 4000, **kw: Any) -> Any:
    return contribution(saudi=True, wage_sar=wage, part_time=kw.get("part_time", False),
                        disabled=kw.get("disabled", False), rules=RULES)


def flat_table(thresholds_percent: dict[str, float], year: str = "2025") -> ThresholdTable:
    """A table whose thresholds do not depend on headcount (slope 0)."""
    return ThresholdTable({"illustrative": True, "activities": {"test": {"years": {
        year: {band: {"base": pct, "slope": 0.0}
               for band, pct in thresholds_percent.items()}}}}})


FLAT = flat_table({"low_green": 10, "medium_green": 20, "high_green": 30, "platinum": 40})


# -- weights ---------------------------------------------------------------------------
@pytest.mark.parametrize("wage, milli", [
    (10_000, 1000), (4000, 1000),  # 4,000 SAR or more counts 1
    (3999, 500), (3000, 500),      # 3,000 to under 4,000 counts 0.5
    (2999, 0), (0, 0),             # under 3,000 counts 0
])
def test_saudi_weight_by_wage(wage: int, milli: int) -> None:
    assert weight(wage) == milli


def test_part_time_counts_half() -> None:
    assert weight(5000, part_time=True) == 500


def test_expatriate_counts_one_whatever_the_wage() -> None:
    c = contribution(saudi=False, wage_sar=0, part_time=True, disabled=True, rules=RULES)
    assert (c.saudi, c.weight_milli, c.disabled) == (False, 1000, False)


def test_disabled_saudi_needs_the_minimum_wage_for_the_pool() -> None:
    assert saudi(3000, disabled=True).disabled
    assert not saudi(2999, disabled=True).disabled
    assert saudi(2999, disabled=True).weight_milli == 0


def test_disabled_counts_four_within_ten_percent_of_saudis() -> None:
    ten = [saudi() for _ in range(9)] + [saudi(disabled=True)]
    assert workforce(*ten).weighted_saudis_milli(RULES) == 9000 + 4000


def test_disabled_beyond_ten_percent_count_one_each() -> None:
    ten = [saudi() for _ in range(7)] + [saudi(disabled=True) for _ in range(3)]
    # 10 Saudis: 10% is one disabled Saudi at 4; the two others count 1 each.
    assert workforce(*ten).weighted_saudis_milli(RULES) == 7000 + 4000 + 2000
    twenty = [saudi() for _ in range(17)] + [saudi(disabled=True) for _ in range(3)]
    assert workforce(*twenty).weighted_saudis_milli(RULES) == 17000 + 2 * 4000 + 1000


def test_percentage_is_weighted_saudis_over_weighted_saudis_and_expatriates() -> None:
    wf = workforce(saudi(), saudi(3500), saudi(1000), expatriates=6)
    assert wf.headcount == 9
    assert wf.percentage_bp(RULES) == 1500 * 10_000 // 7500  # 1.5 / (1.5 + 6) = 20%
    assert Workforce(0, 0, 0, 0).percentage_bp(RULES) == 0
    assert Workforce(0, 0, 0, 3).percentage_bp(RULES) == 0


# -- small establishments ---------------------------------------------------------------
def small(wf: Workforce, owner_counts: bool = False) -> str:
    return assess(workforce=wf, samples=[], activity="construction", day=DAY,
                  owner_counts_as_saudi=owner_counts, table=SHIPPED, rules=RULES).band


@pytest.mark.parametrize("saudis, expats, owner_counts, green", [
    (1, 4, False, True),   # five workers, one Saudi
    (0, 5, False, False),
    (0, 5, True, True),    # the owner counts
    (0, 0, True, True),
    (0, 0, False, False),
    (1, 0, False, True),
])
def test_small_establishment_green_with_one_saudi(saudis: int, expats: int,
                                                  owner_counts: bool, green: bool) -> None:
    wf = workforce(*[saudi(1000) for _ in range(saudis)], expatriates=expats)
    band = small(wf, owner_counts)
    assert band == ("medium_green" if green else "red")
    assert (band != "red") == green


def test_six_workers_are_not_small() -> None:
    wf = workforce(saudi(1000), expatriates=5)  # a Saudi weighing 0: 0%
    assert small(wf) == "red"
    assert small(workforce(saudi(1000), expatriates=4)) == "medium_green"


# -- thresholds and bands ----------------------------------------------------------------
@pytest.mark.parametrize("pct, band", [
    (0, "red"), (999, "red"), (1000, "low_green"), (1999, "low_green"),
    (2000, "medium_green"), (3000, "high_green"), (3999, "high_green"),
    (4000, "platinum"), (10_000, "platinum"),
])
def test_band_for_thresholds(pct: int, band: str) -> None:
    assert band_for(pct, FLAT.thresholds_bp("test", 2025, 50)) == band


def test_thresholds_follow_the_table_formula() -> None:
    years = SHIPPED.activities["construction"]["years"]
    for headcount in (6, 10, 49, 500, 3000):
        got = SHIPPED.thresholds_bp("construction", 2025, headcount)
        for band, p in years["2025"].items():
            expected = p["base"] + p["slope"] * math.log(headcount)
            assert got[band] == round(min(100.0, max(0.0, expected)) * 100)


def test_thresholds_clipped_and_years_clamped() -> None:
    table = ThresholdTable({"activities": {"t": {"years": {
        "2023": {"low_green": {"base": -5, "slope": 0}, "platinum": {"base": 150, "slope": 0}},
        "2024": {"low_green": {"base": 7, "slope": 0}, "platinum": {"base": 8, "slope": 0}},
    }}}})
    assert table.thresholds_bp("t", 2023, 10) == {"low_green": 0, "platinum": 10_000}
    assert table.thresholds_bp("t", 2010, 10) == table.thresholds_bp("t", 2023, 10)
    assert table.thresholds_bp("t", 2030, 10) == {"low_green": 700, "platinum": 800}
    assert not table.illustrative


def test_assess_reads_whatever_table_it_is_given() -> None:
    wf = workforce(*[saudi() for _ in range(3)], expatriates=7)  # 30%
    samples = [[week_of(DAY), wf.percentage_bp(RULES)]]
    a = assess(workforce=wf, samples=samples, activity="test", day=DAY,
               owner_counts_as_saudi=False, table=FLAT, rules=RULES)
    assert (a.band, a.percentage_bp, a.average_bp, a.headcount) == ("high_green", 3000, 3000,
                                                                    10)
    assert a.red_threshold_bp == 1000
    strict = flat_table({"low_green": 31, "medium_green": 32, "high_green": 33,
                         "platinum": 34})
    b = assess(workforce=wf, samples=samples, activity="test", day=DAY,
               owner_counts_as_saudi=False, table=strict, rules=RULES)
    assert b.band == "red"


def test_rising_thresholds_lower_the_band_with_no_change_of_staff() -> None:
    wf = workforce(saudi(), expatriates=9)  # 1 of 10: 10%
    bands = []
    for year in (2021, 2027):
        day = date(year, 6, 1)
        a = assess(workforce=wf, samples=[[week_of(day), wf.percentage_bp(RULES)]],
                   activity="construction", day=day, owner_counts_as_saudi=False,
                   table=SHIPPED, rules=RULES)
        bands.append(a.band)
    assert bands == ["low_green", "red"]


def test_band_order() -> None:
    assert BANDS == ("red", "low_green", "medium_green", "high_green", "platinum")
    assert at_least("platinum", "medium_green") and at_least("medium_green", "medium_green")
    assert not at_least("low_green", "medium_green")


@pytest.mark.parametrize("headcount, size", [
    (0, "micro"), (5, "micro"), (6, "small"), (49, "small"), (50, "medium"),
    (499, "medium"), (500, "large"), (2999, "large"), (3000, "giant"),
])
def test_size_category(headcount: int, size: str) -> None:
    assert size_category(headcount) == size


# -- the 26-week average ----------------------------------------------------------------
W0 = week_of(date(2025, 1, 5))


def test_average_carries_the_last_value_forward() -> None:
    assert average_bp([[W0, 1000]], W0 + 10, 26) == 1000
    assert average_bp([[W0, 1000]], W0 + 100, 26) == 1000


def test_average_of_the_last_26_weeks() -> None:
    samples = [[W0, 0], [W0 + 13, 2600]]
    # Weeks W0..W0+12 at 0, W0+13..W0+25 at 26%: half and half.
    assert average_bp(samples, W0 + 25, 26) == 1300
    # Ten weeks later the window starts at W0+10: 3 weeks at 0, 23 at 26%.
    assert average_bp(samples, W0 + 35, 26) == 2600 * 23 // 26


def test_average_ignores_weeks_before_the_first_sample() -> None:
    assert average_bp([[W0, 0], [W0 + 1, 3000]], W0 + 1, 26) == 1500
    assert average_bp([], W0, 26) == 0


def test_average_decides_the_band_of_larger_establishments() -> None:
    wf = workforce(*[saudi() for _ in range(3)], expatriates=7)  # 30% this week
    samples = [[W0, 0], [W0 + 25, 3000]]
    day = date.fromordinal((W0 + 25) * 7)
    a = assess(workforce=wf, samples=samples, activity="test", day=day,
               owner_counts_as_saudi=False, table=FLAT, rules=RULES)
    assert (a.percentage_bp, a.average_bp, a.band) == (3000, 3000 // 26, "red")


def test_record_sample_replaces_the_week_and_keeps_one_older_sample() -> None:
    samples = record_sample([], W0, 1000, 26)
    samples = record_sample(samples, W0, 1200, 26)
    assert samples == [[W0, 1200]]
    samples = record_sample(samples, W0 + 40, 3000, 26)
    # The sample before the window stays: it carries into the window's first weeks.
    assert samples == [[W0, 1200], [W0 + 40, 3000]]
    samples = record_sample(samples, W0 + 41, 3100, 26)
    samples = record_sample(samples, W0 + 80, 500, 26)
    assert samples == [[W0 + 41, 3100], [W0 + 80, 500]]
    assert average_bp(samples, W0 + 80, 26) == (3100 * 25 + 500) // 26


def test_weeks_start_on_sunday() -> None:
    sunday = date(2025, 1, 5)
    assert week_of(sunday) == week_of(sunday + timedelta(days=6))
    assert week_of(sunday) == week_of(sunday - timedelta(days=1)) + 1


# -- the shipped table -------------------------------------------------------------------
def test_shipped_table_is_illustrative_with_at_least_eight_activities() -> None:
    assert SHIPPED.illustrative is True
    assert len(SHIPPED.activities) >= 8
    assert SHIPPED.knows("construction") and not SHIPPED.knows("space_mining")


@pytest.mark.parametrize("activity", sorted(SHIPPED.activities))
def test_shipped_thresholds_are_ordered_and_rise_year_by_year(activity: str) -> None:
    years = sorted(int(y) for y in SHIPPED.activities[activity]["years"])
    for headcount in (6, 20, 100, 1000, 5000):
        previous: dict[str, int] | None = None
        for year in years:
            t = SHIPPED.thresholds_bp(activity, year, headcount)
            assert set(t) == set(BANDS[1:])
            assert [t[b] for b in BANDS[1:]] == sorted(t[b] for b in BANDS[1:])
            if previous is not None:
                assert all(t[b] >= previous[b] for b in t), (year, headcount)
            previous = t
