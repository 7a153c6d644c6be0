"""What every benchmark shares: the machine's description, the results file, the table,
the progress bar, the medians and a throwaway PostgreSQL server.

A figure means nothing without the machine, the date and the exact command that produced
it, so every results file carries them; and a speed is compared with a baseline measured
in the same run, because a shared two-core machine is too noisy for absolute numbers.
"""

from __future__ import annotations

import os
import platform
import shlex
import statistics
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

RESULTS = Path(__file__).resolve().parent / "results"
# Wide when piped to a log, so tables keep one line a row.
console = Console(width=None if sys.stdout.isatty() else 150)


def machine() -> dict[str, Any]:
    """Cores and memory: a rate read without them cannot be compared with another."""
    page = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    return {
        "cores": os.cpu_count(),
        "usable_cores": len(os.sched_getaffinity(0)),
        "memory_gib": round(page / 2**30, 1),
        "platform": platform.platform(),
        "processor": platform.machine(),
        # Other work on the machine when the figures were written: high means noisy.
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }


def command() -> str:
    """The command line as typed (sys.orig_argv keeps `-m bench.x`), for re-running."""
    return shlex.join(getattr(sys, "orig_argv", sys.argv))


def header(name: str) -> dict[str, Any]:
    return {
        "benchmark": name,
        "date": datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
        "machine": machine(),
        "python": platform.python_version(),
        "command": command(),
    }


def write_results(name: str, figures: dict[str, Any], out: Path | None = None) -> Path:
    """bench/results/<name>.json unless told otherwise (the smoke test writes elsewhere,
    so that it never overwrites the figures of a full run)."""
    path = out or RESULTS / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(orjson.dumps({**header(name), **figures},
                                  option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n")
    return path


def drop_caches() -> None:
    """The page cache emptied (root only): the reads that follow come from the disk, as
    they do once the store is larger than memory."""
    Path("/proc/sys/vm/drop_caches").write_text("3\n")


def print_table(title: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    table = Table(title=title, title_justify="left")
    for i, name in enumerate(columns):
        table.add_column(name, justify="left" if i == 0 else "right")
    for row in rows:
        table.add_row(*(fmt(cell) for cell in row))
    console.print(table)


def fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.3f}" if value < 100 else f"{value:,.0f}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return "—" if value is None else str(value)


def progress() -> Progress:
    """A bar for long work, so a run of minutes is not mistaken for a hang."""
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TimeElapsedColumn(), TimeRemainingColumn(), console=console,
                    transient=False)


def timed(action: Callable[[], Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    result = action()
    return time.perf_counter() - started, result


def median_seconds(action: Callable[[], Any], repeats: int) -> tuple[float, list[float]]:
    """The median resists the odd slow run that a shared machine produces."""
    times = [timed(action)[0] for _ in range(repeats)]
    return statistics.median(times), times


def sqlite_url(folder: Path, name: str) -> str:
    return f"sqlite:///{folder / name}.sqlite"


def rate(count: int, seconds: float) -> float:
    return count / seconds if seconds > 0 else 0.0


@contextmanager
def postgres(wanted: bool) -> Iterator[tuple[Any, str | None]]:
    """A throwaway PostgreSQL server (tests/pg.py), or None with the reason it is not
    there: a benchmark skips PostgreSQL with a note rather than failing on a machine
    without the server binaries."""
    if not wanted:
        yield None, "not requested"
        return
    from tests.pg import PgServer, PostgresUnavailable, find_binaries

    try:
        server = PgServer(binaries=find_binaries()).start()
    except PostgresUnavailable as error:
        yield None, str(error)
        return
    try:
        yield server, None
    finally:
        server.stop()
