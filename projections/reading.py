"""Reading the read models whole, as rows keyed like the folds key them: what tests and
the rebuild compare, and what the command line prints from."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, select

from projections.rows import Key, Projection, Row


def table_rows(engine: Engine, projections: tuple[Projection, ...]
               ) -> dict[str, dict[Key, Row]]:
    out: dict[str, dict[Key, Row]] = {}
    with engine.connect() as conn:
        for projection in projections:
            for table in projection.tables:
                pk = [c.name for c in table.primary_key.columns]
                out[table.name] = {tuple(r[c] for c in pk): _plain(dict(r)) for r in
                                   conn.execute(select(table)).mappings()}
    return out


def _plain(row: dict[str, Any]) -> Row:
    return {k: (bool(v) if isinstance(v, bool) else v) for k, v in row.items()}
