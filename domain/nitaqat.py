"""Nitaqat (نطاقات): Saudization bands from a workforce, an activity and a date.

Pure arithmetic over integers (basis points, milli-weights) so that every reader —
the domain, a projection, an auditor's replay — gets the same band from the same facts.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import date
from importlib import resources
from typing import Any, Final, Literal

from domain.rules import Rules

Band = Literal["red", "low_green", "medium_green", "high_green", "platinum"]
# Five bands, best last, since yellow was merged into red (decided 27 Nov 2019,
# zamakhchary.com; in effect early 2020).
BANDS: Final[tuple[Band, ...]] = ("red", "low_green", "medium_green", "high_green", "platinum")
BAND_LABELS: Final[dict[str, tuple[str, str]]] = {
    "red": ("أحمر", "Red"),
    "low_green": ("أخضر منخفض", "Low green"),
    "medium_green": ("أخضر متوسط", "Medium green"),
    "high_green": ("أخضر مرتفع", "High green"),
    "platinum": ("بلاتيني", "Platinum"),
}
SizeCategory = Literal["micro", "small", "medium", "large", "giant"]


def rank(band: str) -> int:
    return BANDS.index(band)  # type: ignore[arg-type,unused-ignore]


def at_least(band: str, floor: Band) -> bool:
    return rank(band) >= rank(floor)


@dataclass(frozen=True)
class Contribution:
    """How one worker counts: kind, weight in thousandths, and the disability pool."""

    saudi: bool
    weight_milli: int
    disabled: bool

    def as_payload(self) -> dict[str, Any]:
        """As dataclasses.asdict would give it, in field order, at a tenth of the cost:
        every hire and departure carries one."""
        return {"saudi": self.saudi, "weight_milli": self.weight_milli,
                "disabled": self.disabled}


def contribution(*, saudi: bool, wage_sar: int, part_time: bool, disabled: bool,
                 rules: Rules) -> Contribution:
    if not saudi:
        return Contribution(saudi=False, weight_milli=1000, disabled=False)
    if disabled and wage_sar >= rules.nitaqat_half_weight_wage_sar:
        return Contribution(saudi=True, weight_milli=0, disabled=True)
    if part_time:
        return Contribution(saudi=True, weight_milli=500, disabled=False)
    if wage_sar >= rules.nitaqat_full_weight_wage_sar:
        return Contribution(saudi=True, weight_milli=1000, disabled=False)
    if wage_sar >= rules.nitaqat_half_weight_wage_sar:
        return Contribution(saudi=True, weight_milli=500, disabled=False)
    return Contribution(saudi=True, weight_milli=0, disabled=False)


@dataclass(frozen=True)
class Workforce:
    saudis: int
    saudi_weight_milli: int  # the Saudis outside the disability pool
    disabled_saudis: int
    expatriates: int

    @property
    def headcount(self) -> int:
        return self.saudis + self.expatriates

    def moved(self, c: dict[str, Any], sign: int) -> Workforce:
        """The workforce after a worker counted as `c` (a Contribution's fields) joins
        (+1) or leaves (-1): the one place the counts change, for every reader."""
        if not c["saudi"]:
            return Workforce(self.saudis, self.saudi_weight_milli, self.disabled_saudis,
                             self.expatriates + sign)
        if c["disabled"]:
            return Workforce(self.saudis + sign, self.saudi_weight_milli,
                             self.disabled_saudis + sign, self.expatriates)
        return Workforce(self.saudis + sign, self.saudi_weight_milli + sign * c["weight_milli"],
                         self.disabled_saudis, self.expatriates)

    def weighted_saudis_milli(self, rules: Rules) -> int:
        cap = self.saudis * rules.nitaqat_disabled_cap_percent // 100
        boosted = min(self.disabled_saudis, cap)
        return (self.saudi_weight_milli + boosted * rules.nitaqat_disabled_weight * 1000
                + (self.disabled_saudis - boosted) * 1000)

    def percentage_bp(self, rules: Rules) -> int:
        """Weighted Saudis / (weighted Saudis + expatriates), in basis points."""
        saudis = self.weighted_saudis_milli(rules)
        total = saudis + self.expatriates * 1000
        return 0 if total == 0 else saudis * 10_000 // total


def size_category(headcount: int) -> SizeCategory:
    if headcount <= 5:
        return "micro"
    if headcount <= 49:
        return "small"
    if headcount <= 499:
        return "medium"
    if headcount <= 2999:
        return "large"
    return "giant"


class ThresholdTable:
    """Per activity, per year, each band's threshold as a function of headcount."""

    def __init__(self, data: dict[str, Any]) -> None:
        self.illustrative = bool(data.get("illustrative", False))
        self.activities: dict[str, Any] = data["activities"]
        self._cache: dict[tuple[str, int, int], dict[str, int]] = {}

    @classmethod
    def shipped(cls) -> ThresholdTable:
        text = resources.files("domain").joinpath("data/nitaqat_thresholds.json").read_text(
            encoding="utf-8")
        return cls(json.loads(text))

    def knows(self, activity: str) -> bool:
        return activity in self.activities

    def thresholds_bp(self, activity: str, year: int, headcount: int) -> dict[str, int]:
        key = (activity, year, headcount)
        if key not in self._cache:
            self._cache[key] = self._thresholds_bp(activity, year, headcount)
        return self._cache[key]

    def _thresholds_bp(self, activity: str, year: int, headcount: int) -> dict[str, int]:
        years = self.activities[activity]["years"]
        chosen = str(min(max(int(y) for y in years), max(year, min(int(y) for y in years))))
        params = years[chosen]
        ln = math.log(max(headcount, 1))
        return {band: round(min(100.0, max(0.0, p["base"] + p["slope"] * ln)) * 100)
                for band, p in params.items()}


def band_for(percentage_bp: int, thresholds_bp: dict[str, int]) -> Band:
    for band in reversed(BANDS[1:]):
        if percentage_bp >= thresholds_bp[band]:
            return band
    return "red"


def week_of(day: date) -> int:
    return day.toordinal() // 7


def record_sample(samples: list[list[int]], week: int, percentage_bp: int,
                  keep_weeks: int) -> list[list[int]]:
    """The weekly series with this week's closing percentage, trimmed to the window."""
    kept = [s for s in samples if s[0] != week] + [[week, percentage_bp]]
    kept.sort()
    floor = week - keep_weeks
    older = [s for s in kept if s[0] <= floor]
    return older[-1:] + [s for s in kept if s[0] > floor]


def average_bp(samples: list[list[int]], week: int, weeks: int) -> int:
    """Mean of the last `weeks` weekly percentages, each week carrying the last sample.

    Weeks before the first sample (before the file was opened) are not counted.
    """
    first = week - weeks + 1
    total = count = 0
    current: int | None = None
    cursor = first
    for sample_week, value in samples:
        if sample_week > week:
            break
        if sample_week > cursor and current is not None:
            total += current * (sample_week - cursor)
            count += sample_week - cursor
        if sample_week >= cursor:
            cursor = sample_week
        current = value
    if current is None:
        return 0
    total += current * (week + 1 - cursor)
    count += week + 1 - cursor
    return total // count


@dataclass(frozen=True)
class Assessment:
    band: Band
    percentage_bp: int  # this moment's weighted percentage
    average_bp: int     # the 26-week average that decides the band
    headcount: int
    size: SizeCategory
    red_threshold_bp: int  # the percentage below which the establishment is red


def assess(*, workforce: Workforce, samples: list[list[int]], activity: str, day: date,
           owner_counts_as_saudi: bool, table: ThresholdTable, rules: Rules) -> Assessment:
    headcount = workforce.headcount
    size = size_category(headcount)
    pct = workforce.percentage_bp(rules)
    if headcount <= rules.nitaqat_small_max_headcount:
        # Small establishments are green with one Saudi, the owner may count (jisr.net).
        # The band name for "green" is our choice: medium green, so that a compliant
        # small establishment keeps the services that need it.
        green = workforce.saudis > 0 or owner_counts_as_saudi
        return Assessment("medium_green" if green else "red", pct, pct, headcount, size,
                          0 if green else 1)
    avg = average_bp(samples, week_of(day), rules.nitaqat_average_weeks)
    thresholds = table.thresholds_bp(activity, day.year, headcount)
    return Assessment(band_for(avg, thresholds), pct, avg, headcount, size,
                      thresholds["low_green"])
