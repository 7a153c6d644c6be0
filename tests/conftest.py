"""Shared fixtures: event-store URLs for SQLite and for a throwaway PostgreSQL.

``postgres_url`` (session) starts one PostgreSQL server for the whole run;
``fresh_pg_url`` gives each test its own empty database on it; ``store_url`` runs a
test once against SQLite and once against PostgreSQL.

Without PostgreSQL binaries, PostgreSQL tests are skipped with the reason, except
under CI (env CI set), where they fail: CI must not pass by skipping them.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest_plugins = ["kafka_fixtures"]

if __package__:  # tests/ made a package later: import relative to it
    from .pg import PgServer, PostgresUnavailable, find_binaries
else:  # rootdir-style: tests/ is on sys.path
    from pg import PgServer, PostgresUnavailable, find_binaries

POSTGRES_FIXTURES = {"postgres_url", "fresh_pg_url", "pg_server"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test that uses a PostgreSQL fixture ``postgres`` (select with -m)."""
    for item in items:
        if POSTGRES_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.postgres)


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    try:
        binaries = find_binaries()
    except PostgresUnavailable as exc:
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL is required under CI: {exc}", pytrace=False)
        pytest.skip(f"PostgreSQL not available: {exc}")
    server = PgServer(binaries=binaries).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def postgres_url(pg_server: PgServer) -> str:
    """SQLAlchemy URL of the session's ``sijil`` database (shared by all tests)."""
    return str(pg_server.url())


@pytest.fixture
def fresh_pg_url(pg_server: PgServer) -> Iterator[str]:
    """SQLAlchemy URL of a new, empty database for this test alone (dropped afterwards)."""
    name = f"t_{uuid.uuid4().hex}"
    url = pg_server.create_database(name)
    yield url
    # The server is going away anyway: a database that cannot be dropped dies with it.
    with contextlib.suppress(Exception):
        pg_server.drop_database(name)


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """SQLAlchemy URL of a SQLite file in this test's temporary folder."""
    return f"sqlite:///{tmp_path}/events.sqlite"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest) -> str:
    """An event-store URL: the test runs once on SQLite, once on PostgreSQL."""
    if request.param == "sqlite":
        return str(request.getfixturevalue("sqlite_url"))
    return str(request.getfixturevalue("fresh_pg_url"))
