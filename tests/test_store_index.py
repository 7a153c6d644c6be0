"""The store's own index (domain/persistence.py) as the credential audit asks it: an
account's credentials from the pairs kept beside the index, equal to a DISTINCT over the
index, on SQLite and PostgreSQL; and a store made with the earlier indexes gets the
current ones, and its pairs, when it is opened."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine, create_engine, inspect, select, text

from domain.ingest import ingest
from domain.ledger import Ledger
from domain.persistence import ACCOUNT_CREDENTIALS, EVENT_INDEX, SUPERSEDED_INDEXES
from replay.credential_audit import _credentials_of
from replay.history import STREAMS
from simulator import simulate
from tests.test_ledger_properties import counting_clock


def _ingested(url: str, folder: Path) -> Engine:
    """A simulated history with leak campaigns: thieves change passwords, so accounts
    have several credentials, and some present another account's."""
    requests = folder / "requests.jsonl"
    simulate(establishments=12, months=3, seed=5, out=requests, leaks=3)
    ledger = Ledger(url, clock=counting_clock())
    with requests.open("rb") as lines:
        ingest(ledger, lines, batch_size=50)
    return ledger.recorder.datastore.engine  # type: ignore[attr-defined, no-any-return]


def _distinct(engine: Engine) -> dict[str, set[str]]:
    idx = EVENT_INDEX.c
    out: dict[str, set[str]] = {}
    with engine.connect() as conn:
        for account, credential in conn.execute(select(
                idx.account_id, idx.credential_id).distinct().where(
                idx.credential_id.is_not(None))):
            out.setdefault(account, set()).add(credential)
    return out


def _asked(engine: Engine, accounts: list[str]) -> dict[str, set[str]]:
    with engine.connect() as conn:
        found = {a: set(conn.execute(_credentials_of(a)).scalars()) for a in accounts}
    return {a: c for a, c in found.items() if c}


def test_an_accounts_credentials_are_those_its_index_holds(store_url: str,
                                                            tmp_path: Path) -> None:
    engine = _ingested(store_url, tmp_path)
    expected = _distinct(engine)
    assert any(len(c) > 1 for c in expected.values()), "no account changed credentials"
    assert _asked(engine, [*expected, "1999999999"]) == expected


def test_a_store_with_the_earlier_indexes_gets_the_current_ones(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/events.sqlite"
    engine = _ingested(url, tmp_path)
    expected = _distinct(engine)
    with engine.begin() as conn:  # as a store made before them: the earlier set
        for index in EVENT_INDEX.indexes:
            conn.execute(text(f'DROP INDEX "{index.name}"'))
        conn.execute(text("CREATE INDEX sijil_event_index_credential "
                          "ON sijil_event_index (credential_id, occurred_at)"))
        conn.execute(text("CREATE INDEX sijil_event_index_account "
                          "ON sijil_event_index (account_id, occurred_at)"))
        conn.execute(text("CREATE INDEX sijil_event_index_establishment "
                          "ON sijil_event_index (establishment_id, position)"))
        conn.execute(text("CREATE INDEX sijil_event_index_stream "
                          "ON sijil_event_index (stream, version)"))
        conn.execute(text(f"DROP TABLE {ACCOUNT_CREDENTIALS.name}"))
    engine.dispose()
    Ledger(url)  # opened again
    engine = create_engine(url)
    names = {i["name"] for i in inspect(engine).get_indexes(EVENT_INDEX.name)}
    assert names == {i.name for i in EVENT_INDEX.indexes}
    assert not names & set(SUPERSEDED_INDEXES)
    assert _asked(engine, list(expected)) == expected
    engine.dispose()


def test_an_establishments_history_is_read_from_the_index_alone(tmp_path: Path) -> None:
    """replay/history.py's two index reads never go to the table's rows: on a cold disk
    each row is a page read of its own (SQLite's plan names a covering index)."""
    url = f"sqlite:///{tmp_path}/events.sqlite"
    engine = _ingested(url, tmp_path)
    idx = EVENT_INDEX.c
    own = select(idx.position, idx.stream, idx.event_type, idx.occurred_at).where(
        idx.establishment_id == "1-000001")
    with engine.connect() as conn:
        for query in (own, STREAMS.params(streams=["a", "b"])):
            sql = query.compile(engine, compile_kwargs={"literal_binds": True})
            plan = " ".join(str(row[-1]) for row in conn.exec_driver_sql(
                f"EXPLAIN QUERY PLAN {sql}"))
            assert "COVERING INDEX" in plan, plan
    engine.dispose()
