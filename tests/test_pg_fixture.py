"""The throwaway PostgreSQL fixture works: a real server, version 15 or newer."""

from __future__ import annotations

import sqlalchemy as sa


def test_fresh_database_round_trip(fresh_pg_url: str) -> None:
    engine = sa.create_engine(fresh_pg_url)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text("CREATE TABLE probe (id serial PRIMARY KEY, label text NOT NULL)"))
            conn.execute(sa.text("INSERT INTO probe (label) VALUES (:label)"), {"label": "سجل"})
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT label FROM probe")).scalar_one() == "سجل"
            version = int(conn.execute(sa.text("SHOW server_version_num")).scalar_one())
            assert version >= 150000
    finally:
        engine.dispose()


def test_fresh_databases_are_isolated(fresh_pg_url: str, postgres_url: str) -> None:
    assert fresh_pg_url != postgres_url
    engine = sa.create_engine(fresh_pg_url)
    try:
        with engine.connect() as conn:
            tables = conn.execute(
                sa.text("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")
            ).scalar_one()
            assert tables == 0
    finally:
        engine.dispose()


def test_store_url_is_usable(store_url: str) -> None:
    engine = sa.create_engine(store_url)
    try:
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT 1")).scalar_one() == 1
    finally:
        engine.dispose()
