"""Training the event store's compression dictionary (domain/compression.py).

The dictionary is part of the store's format: rows written with it can be read only
with it. So it is trained once, from a simulated history of its own (not the
benchmarks' seeds, so that their figures measure a dictionary that never saw them), and
committed under `domain/data/`. Run again only to add a dictionary, under a new name:

    .venv/bin/python -m simulator.dictionary --out domain/data/event-state-2.zdict
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated

import typer
import zstandard

from domain.compression import LEVEL
from domain.ingest import ingest
from domain.ledger import Ledger
from simulator.history import simulate

SEED = 1447  # the Hijri year: any seed the benchmarks and tests do not use
SIZE = 32_768  # bytes; 16 KiB compressed rows 2 % larger, 64 KiB 2 % smaller


def history_states(establishments: int, months: int) -> list[bytes]:
    """Every event's stored bytes, as the ledger writes them, of a simulated history."""
    with tempfile.TemporaryDirectory() as work:
        requests = Path(work) / "requests.jsonl"
        simulate(establishments=establishments, months=months, seed=SEED, out=requests,
                 leaks=2)
        ledger = Ledger(f"sqlite:///{work}/events.sqlite")
        with requests.open("rb") as lines:
            ingest(ledger, lines)
        states: list[bytes] = []
        while notes := ledger.recorder.select_notifications(start=len(states) + 1,
                                                            limit=5000):
            states += [n.state for n in notes]  # as the ledger wrote them: decompressed
        ledger.close()
        return states


def train(states: Sequence[bytes], size: int = SIZE) -> bytes:
    samples: list[bytes | bytearray | memoryview] = list(states)
    return zstandard.train_dictionary(size, samples, level=LEVEL, threads=1).as_bytes()


def main(out: Annotated[Path, typer.Option(help="the dictionary file to write (a new name)")],
         establishments: Annotated[int, typer.Option()] = 400,
         months: Annotated[int, typer.Option()] = 12) -> None:
    if out.exists():
        raise typer.BadParameter(f"{out} exists: a dictionary once used is never replaced",
                                 param_hint="--out")
    states = history_states(establishments, months)
    data = train(states)
    out.write_bytes(data)
    print(f"{out}: {len(data):,} bytes from {len(states):,} events, dict id "
          f"{zstandard.ZstdCompressionDict(data).dict_id()}")


if __name__ == "__main__":
    typer.run(main)
