"""Simulated time: Riyadh days and minutes, turned into UTC microseconds once.

People keep Riyadh hours (UTC+3) and a Friday-Saturday weekend, so the simulator thinks
in "day d of the history, minute m of the Riyadh day"; stamps stay integers (cheap to
sort) until a line is written, and only then become ISO 8601 text.
"""

from __future__ import annotations

import datetime as dt
from typing import Final

from domain.calendar import add_months

RIYADH_OFFSET_MINUTES: Final = 180
US_PER_SECOND: Final = 1_000_000
US_PER_MINUTE: Final = 60 * US_PER_SECOND
US_PER_DAY: Final = 1440 * US_PER_MINUTE
_UNIX_ORDINAL: Final = dt.date(1970, 1, 1).toordinal()
_FRIDAY, _SATURDAY = 4, 5


class Clock:
    """The history's calendar: day 0 is `start`, the last day is the eve of `end`."""

    def __init__(self, start: dt.date, months: int) -> None:
        self.start = start
        self.end = add_months(start, months)
        self.days = (self.end - start).days
        self._ordinal = start.toordinal()
        self._origin_us = ((self._ordinal - _UNIX_ORDINAL) * US_PER_DAY
                           - RIYADH_OFFSET_MINUTES * US_PER_MINUTE)
        self._day_texts: dict[int, str] = {}
        self._utc_texts: dict[int, str] = {}

    def date(self, day: int) -> dt.date:
        return dt.date.fromordinal(self._ordinal + day)

    def day_of(self, when: dt.date) -> int:
        return when.toordinal() - self._ordinal

    def text(self, day: int) -> str:
        """The day as YYYY-MM-DD; cached because payload dates repeat endlessly."""
        found = self._day_texts.get(day)
        if found is None:
            found = self._day_texts[day] = self.date(day).isoformat()
        return found

    def plus_months(self, day: int, months: int) -> int:
        return self.day_of(add_months(self.date(day), months))

    def weekend(self, day: int) -> bool:
        return self.date(day).weekday() in (_FRIDAY, _SATURDAY)

    def month_index(self, day: int) -> int:
        when = self.date(day)
        return when.year * 12 + when.month - 1

    def month_text(self, index: int) -> str:
        return f"{index // 12:04d}-{index % 12 + 1:02d}"

    def month_starts(self) -> list[int]:
        """The days, after day 0, that begin a calendar month."""
        return [d for d in range(1, self.days) if self.date(d).day == 1]

    def moment(self, day: int, minute: float) -> int:
        """Microseconds since the Unix epoch of Riyadh minute `minute` of day `day`."""
        return self._origin_us + day * US_PER_DAY + int(minute * US_PER_MINUTE)

    def iso(self, stamp: int) -> str:
        """UTC ISO 8601 with microseconds and a Z, as domain.context.iso writes it."""
        days, rest = divmod(stamp, US_PER_DAY)
        date_text = self._utc_texts.get(days)
        if date_text is None:
            date_text = dt.date.fromordinal(_UNIX_ORDINAL + days).isoformat()
            self._utc_texts[days] = date_text
        seconds, micros = divmod(rest, US_PER_SECOND)
        hours, seconds = divmod(seconds, 3600)
        minutes, seconds = divmod(seconds, 60)
        return f"{date_text}T{hours:02d}:{minutes:02d}:{seconds:02d}.{micros:06d}Z"
