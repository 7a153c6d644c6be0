"""The store's own index (domain/persistence.py, EVENT_INDEX) as the credential audit
asks it: an account's credentials by a loose index scan, equal to a plain DISTINCT; and
a store made with the earlier indexes gets the current ones when it is opened."""

from __future__ import annotations

from sqlalchemy import create_engine, insert, inspect, select, text

from domain.ledger import Ledger
from domain.persistence import EVENT_INDEX, SUPERSEDED_INDEXES
from replay.credential_audit import _credentials_of

ACCOUNTS = {"1000000001": ["cred-a-2", None, "cred-a-1", "cred-a-2", "cred-a-3", None],
            "1000000002": [None, None],
            "1000000003": ["cred-c-1"],
            "1000000004": ["cred-a-1"]}  # another account presented a's credential


def _entries() -> list[dict[str, object]]:
    out, position = [], 0
    for account, credentials in ACCOUNTS.items():
        for credential in credentials:
            position += 1
            out.append({"position": position, "stream": f"s{position}", "version": 1,
                        "establishment_id": None,
                        "occurred_at": f"2025-01-01T00:00:{position:02d}.000000Z",
                        "event_type": "account.logged_in", "request_id": f"r{position}",
                        "account_id": account, "credential_id": credential})
    return out


def test_an_accounts_credentials_by_loose_index_scan_equal_a_distinct(store_url: str
                                                                        ) -> None:
    ledger = Ledger(store_url)  # creates the tables and the index
    engine = ledger.recorder.datastore.engine  # type: ignore[attr-defined]
    idx = EVENT_INDEX.c
    with engine.begin() as conn:
        conn.execute(insert(EVENT_INDEX), _entries())
    with engine.connect() as conn:
        for account in [*ACCOUNTS, "1000000009"]:
            plain = set(conn.execute(select(idx.credential_id).distinct().where(
                idx.account_id == account, idx.credential_id.is_not(None))).scalars())
            scanned = conn.execute(_credentials_of(account)).scalars().all()
            assert sorted(scanned) == sorted(plain), account
            assert len(scanned) == len(set(scanned))


def test_a_store_with_the_earlier_indexes_gets_the_current_ones(sqlite_url: str) -> None:
    Ledger(sqlite_url)
    engine = create_engine(sqlite_url)
    with engine.begin() as conn:  # as a store made before them: the earlier set
        for index in EVENT_INDEX.indexes:
            conn.execute(text(f'DROP INDEX "{index.name}"'))
        conn.execute(text('CREATE INDEX sijil_event_index_credential '
                          'ON sijil_event_index (credential_id, occurred_at)'))
        conn.execute(text('CREATE INDEX sijil_event_index_account '
                          'ON sijil_event_index (account_id, occurred_at)'))
    Ledger(sqlite_url)  # opened again
    names = {i["name"] for i in inspect(engine).get_indexes(EVENT_INDEX.name)}
    assert names == {i.name for i in EVENT_INDEX.indexes}
    assert not names & set(SUPERSEDED_INDEXES)
    engine.dispose()
