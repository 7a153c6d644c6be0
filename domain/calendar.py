"""Calendar arithmetic the rules need: permit periods are whole months."""

from __future__ import annotations

import calendar
from datetime import date


def add_months(day: date, months: int) -> date:
    total = day.month - 1 + months
    year, month = day.year + total // 12, total % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))
