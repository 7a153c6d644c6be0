"""The rebuild's parts (replay/rebuild.py `independent_parts`): a part is folded by a
reader of its own, so no projection may read a table outside its part. Checked on the
folds themselves (every row they ask for), over the leak story's events, which hold
every nameless worker and account event the audit names. No Kafka, no database."""

from __future__ import annotations

from typing import Any

import pytest

from domain.ledger import Ledger
from projections.catalog import ALL, BY_NAME
from projections.rows import Key, MemoryRows, Row
from replay.rebuild import in_bins, independent_parts
from tests.leak_scenario import build_leak_scenario
from tests.test_credential_audit import all_records
from tests.test_ledger_properties import counting_clock


class ReadsNoted(MemoryRows):
    """Rows that note each table a fold asks for."""

    def __init__(self) -> None:
        super().__init__()
        self.asked: set[str] = set()

    def get(self, table: str, key: Key) -> Row | None:
        self.asked.add(table)
        return super().get(table, key)


@pytest.fixture(scope="module")
def records(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    folder = tmp_path_factory.mktemp("parts")
    ledger = Ledger(f"sqlite:///{folder}/events.sqlite", clock=counting_clock())
    build_leak_scenario(ledger)
    return all_records(ledger)


def test_every_fold_reads_only_its_tables_and_those_it_requires(
        records: list[dict[str, Any]]) -> None:
    rows = MemoryRows()
    for record in records:
        for projection in ALL:
            noted = ReadsNoted()
            noted.tables, noted.history = rows.tables, rows.history
            projection.fold(noted, record)
            own = {t.name for p in (projection, *(BY_NAME[r] for r in projection.requires))
                   for t in p.tables}
            assert noted.asked <= own, (projection.name, record["event_type"])


def test_the_account_requests_fold_alone_and_every_part_holds_what_it_reads() -> None:
    parts = independent_parts(ALL)
    for part in parts:
        names = {p.name for p in part}
        assert all(set(p.requires) <= names for p in part)
    assert ("account_requests",) in [tuple(p.name for p in part) for part in parts]
    packed = in_bins(parts, 2)
    assert sorted(p.name for part in packed for p in part) == sorted(p.name for p in ALL)
