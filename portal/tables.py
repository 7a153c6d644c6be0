"""Tables people read: per-service outcomes and Nitaqat bands, with Arabic and English."""

from __future__ import annotations

from rich.table import Table

from domain.catalogue import CATALOGUE
from domain.ingest import IngestReport
from domain.nitaqat import BAND_LABELS, Assessment


def outcome_table(report: IngestReport, top_rules: int = 2) -> Table:
    table = Table(title="Requests decided, per service", show_footer=True)
    table.add_column("service", footer="total")
    table.add_column("الخدمة", justify="right")
    table.add_column("service (English)")
    table.add_column("accepted", justify="right", footer=f"{sum(report.accepted.values()):,}")
    table.add_column("refused", justify="right", footer=f"{sum(report.refused.values()):,}")
    table.add_column("main refusal rules")
    for code in sorted(set(report.accepted) | set(report.refused)):
        s = CATALOGUE[code]
        rules = sorted(((n, r) for (svc, r), n in report.rules.items() if svc == code),
                       reverse=True)[:top_rules]
        why = ", ".join(f"{r} ({n:,})" for n, r in rules)
        table.add_row(code, s.ar, s.en, f"{report.accepted[code]:,}",
                      f"{report.refused[code]:,}", why)
    return table


def band_table(rows: list[tuple[str, str, str, Assessment]]) -> Table:
    table = Table(title="Nitaqat band now (from the event store)")
    for name in ("establishment", "name", "activity", "headcount", "size",
                 "Saudization now", "26-week average", "red below", "band", "النطاق"):
        table.add_column(name, justify="right" if name[0].isupper() else "left")
    for number, name, activity, a in rows:
        ar, en = BAND_LABELS[a.band]
        table.add_row(number, name, activity, f"{a.headcount:,}", a.size,
                      f"{a.percentage_bp / 100:.2f}%", f"{a.average_bp / 100:.2f}%",
                      f"{a.red_threshold_bp / 100:.2f}%", en, ar)
    return table
