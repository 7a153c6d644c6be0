"""The known-streams filter (domain/known_streams.py): never says absent of a stream it
was given, and says present of few it was not."""

from __future__ import annotations

import uuid

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.identifiers import worker_stream
from domain.known_streams import KnownStreams


@settings(max_examples=200, deadline=None)
@given(st.lists(st.uuids(), max_size=300), st.integers(1, 500))
def test_a_stream_added_is_never_said_absent(streams: list[uuid.UUID], capacity: int) -> None:
    known = KnownStreams(capacity)
    for s in streams:
        known.add(s)
    assert all(known.may_hold(s) for s in streams)


def test_streams_built_from_a_store_listing_are_all_held() -> None:
    streams = [worker_stream(f"2{n:09d}") for n in range(5_000)]
    known = KnownStreams.of(iter(streams), capacity=5_000)
    assert all(known.may_hold(s) for s in streams)


def test_at_capacity_about_one_absent_stream_in_a_hundred_is_said_present() -> None:
    """The store's stream ids are name-based (uuid5), as the workers' here."""
    known = KnownStreams.of((worker_stream(f"2{n:09d}") for n in range(20_000)), 20_000)
    others = [worker_stream(f"1{n:09d}") for n in range(20_000)]
    false_positives = sum(known.may_hold(s) for s in others) / len(others)
    assert false_positives < 0.02


def test_an_empty_filter_holds_nothing() -> None:
    known = KnownStreams(10)
    assert not any(known.may_hold(uuid.uuid4()) for _ in range(100))


@pytest.mark.parametrize(("capacity", "error"), [(0, 0.01), (10, 0.0), (10, 1.0)])
def test_a_filter_of_no_size_or_no_error_bound_is_refused(capacity: int, error: float) -> None:
    with pytest.raises(ValueError, match="capacity must be at least 1"):
        KnownStreams(capacity, error)
