"""Verifying a stream's hash chain: what an auditor runs to prove nothing was altered.

Works on contract records, so the same check serves the event store and any copy of the
Kafka topic (invariant 6 of DESIGN.md). A record that cannot even be decoded is reported
at its place in the stream rather than stopping the check.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from domain.chain import GENESIS, verify_record


@dataclass(frozen=True)
class ChainProblem:
    stream: str
    version: int
    position: int | None
    problem: str

    def __str__(self) -> str:
        where = f" (position {self.position})" if self.position is not None else ""
        return f"stream {self.stream} version {self.version}{where}: {self.problem}"


def verify_chain(stream: str, records: Iterable[tuple[int, dict[str, Any] | Exception]],
                 positions: dict[int, int] | None = None) -> list[ChainProblem]:
    """Check versions run 1, 2, 3... and each record extends the previous one's hash.

    `records` pairs each stored version with its decoded contract record, or the error
    that stopped decoding it.
    """
    problems: list[ChainProblem] = []
    expected_prev, expected_version = GENESIS, 1
    for version, record in records:
        where = (positions or {}).get(version)
        if version != expected_version:
            problems.append(ChainProblem(stream, version, where,
                                         f"version {version} where {expected_version} was due"))
        if isinstance(record, Exception):
            problems.append(ChainProblem(stream, version, where, f"undecodable: {record}"))
            expected_prev, expected_version = "<unknown>", version + 1
            continue
        if record.get("stream_version") != version:
            problems.append(ChainProblem(stream, version, where,
                                         f"record says version {record.get('stream_version')}"))
        problem = verify_record(record, expected_prev)
        if problem is not None:
            problems.append(ChainProblem(stream, version, where, problem))
        expected_prev, expected_version = str(record.get("hash")), version + 1
    return problems
