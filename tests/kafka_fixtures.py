"""Kafka fixtures: a throwaway broker for the test session, and fresh topics.

``kafka_broker`` (session) starts one single-node KRaft broker (consumers/broker.py)
in a temporary home on free loopback ports, reusing the jar cache
(``SIJIL_KAFKA_LIB``, else ``$SIJIL_HOME/kafka/lib``, i.e. ``.sijil/kafka/lib``), and
stops it at the end. ``kafka_bootstrap`` (session) is its bootstrap address, with
Sijil's topics created (consumers/topics.py). ``fresh_topic`` is a factory that
creates a uniquely named topic for one test: ``name = fresh_topic(partitions=3)``.

Without ``java`` (or without ``mvn`` while the jar cache is empty) Kafka tests are
skipped with the reason, except under CI (env CI set), where they fail: CI must not
pass by skipping them. Tests using these fixtures are marked ``kafka``
(deselect with ``-m "not kafka"``).

Loaded as a plugin from tests/conftest.py: ``pytest_plugins = ["kafka_fixtures"]``.
"""

from __future__ import annotations

import atexit
import os
import re
import uuid
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import pytest

from consumers.broker import (
    BrokerError,
    BrokerUnavailable,
    LocalBroker,
    find_java,
    free_port,
    resolve_jars,
)
from consumers.topics import admin_client, ensure_topics
from domain.settings import Settings

KAFKA_FIXTURES = {"kafka_broker", "kafka_bootstrap", "fresh_topic"}
START_ATTEMPTS = 3  # a free port can be taken between picking and binding


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "kafka: needs the throwaway Kafka broker (started by the fixture)"
    )
    # kafka-python 3.0.12 loads its protocol schemas with a deprecated importlib API
    config.addinivalue_line("filterwarnings", "ignore:read_text is deprecated:DeprecationWarning")
    config.addinivalue_line("filterwarnings", "ignore:open_text is deprecated:DeprecationWarning")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test that uses a Kafka fixture ``kafka`` (select with -m)."""
    for item in items:
        if KAFKA_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.kafka)


def jar_cache() -> Path:
    """The jar cache shared with `sijil kafka up`: SIJIL_KAFKA_LIB, else <home>/kafka/lib."""
    settings = Settings()
    return (settings.kafka_lib or settings.home / "kafka" / "lib").resolve()


def _unavailable(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"Kafka is required under CI: {reason}", pytrace=False)
    pytest.skip(f"Kafka not available: {reason}")


def _two_free_ports() -> tuple[int, int]:
    port = free_port()
    controller = free_port()
    while controller == port:
        controller = free_port()
    return port, controller


@pytest.fixture(scope="session")
def kafka_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalBroker]:
    """A running single-node broker for the whole session (stopped at the end)."""
    lib = jar_cache()
    try:
        find_java()
        resolve_jars(lib)
    except BrokerUnavailable as exc:
        _unavailable(str(exc))
    base = tmp_path_factory.mktemp("kafka")
    failures = []
    for attempt in range(1, START_ATTEMPTS + 1):
        port, controller = _two_free_ports()
        broker = LocalBroker(base / f"home{attempt}", port=port, controller_port=controller,
                             lib=lib)
        atexit.register(broker.stop)  # also on an interrupted session
        try:
            broker.up(timeout=90)
        except BrokerError as exc:
            broker.stop()
            failures.append(f"attempt {attempt} on ports {port}/{controller}: {exc}")
            continue
        try:
            yield broker
        finally:
            broker.stop()
        return
    pytest.fail("the Kafka broker did not start:\n" + "\n\n".join(failures), pytrace=False)


@pytest.fixture(scope="session")
def kafka_bootstrap(kafka_broker: LocalBroker) -> str:
    """The session broker's bootstrap address ("127.0.0.1:PORT"), Sijil's topics created."""
    settings = Settings(home=kafka_broker.root.parent, kafka_bootstrap=kafka_broker.bootstrap)
    ensure_topics(kafka_broker.bootstrap, settings)
    return kafka_broker.bootstrap


@pytest.fixture
def fresh_topic(
    kafka_bootstrap: str, request: pytest.FixtureRequest
) -> Callable[..., str]:
    """A factory: ``fresh_topic(partitions=3, configs={...})`` creates a new topic, its name.

    Names are ``test.<test name>.<random>``, so tests never share a topic. The topics
    die with the session's broker.
    """
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", request.node.name)[:120]

    def create(partitions: int = 3, configs: Mapping[str, str] | None = None) -> str:
        name = f"test.{slug}.{uuid.uuid4().hex[:10]}"
        admin = admin_client(kafka_bootstrap, client_id="sijil-test-topics")
        try:
            admin.create_topics(
                {name: {"num_partitions": partitions, "replication_factor": 1,
                        "configs": dict(configs or {})}},
                wait_for_metadata=True,
            )
        finally:
            admin.close()
        return name

    return create
