"""The event store's rows compressed: zstd with a dictionary of the ledger's own JSON.

At the ministry's volume the store did not fit the machine's disk (bench/RESULTS.md:
F = 1.0 needed about 94 GB against 78 GB free, the store 48 GB of it, of which the
events' JSON was 1.16 KB a row). A row is compressed alone, so zlib or plain zstd only
get it to 0.6 of its size: what repeats is across rows, not within one. A dictionary
trained on the ledger's own events holds that once (the contract's keys, the services'
and event types' names, user agents), and a row then shrinks to about a sixth: what is
left is mostly what cannot shrink, its ids and its two SHA-256 hashes.

Rows are compressed and decompressed by the recorder (domain/persistence.py), in the
ingest's writer process, so every reader above it (the mapper, the publisher, the
verifier's byte-exact check) sees the bytes it saw before. A row that is not a zstd
frame is read as it is: stores written before, or with compression off, stay readable,
and may mix both. Every frame carries a checksum of its content, so a changed byte is
caught as it is read. The dictionary is part of the store's format: a frame names its
dictionary by id, and a dictionary once used must stay in `domain/data/` for good
(`python -m simulator.dictionary` trains a new one; add it, never replace one).
"""

from __future__ import annotations

import threading
from functools import cache
from importlib.resources import files

import zstandard

DICTIONARY = "event-state-1.zdict"
LEVEL = 3  # level 3 and 19 differ by 2 % of size here; 19 costs ten times the CPU
MAGIC = b"\x28\xb5\x2f\xfd"  # every zstd frame's first four bytes; JSON starts with "{"
# A frame says its content's size, and the decompressor allocates that much first: an
# altered size could ask for terabytes. No event comes near this (Kafka's records stop
# at 1 MiB by default).
MAX_STATE = 16 * 1024 * 1024


@cache
def dictionary() -> zstandard.ZstdCompressionDict:
    data = files("domain").joinpath("data", DICTIONARY).read_bytes()
    return zstandard.ZstdCompressionDict(data, dict_type=zstandard.DICT_TYPE_FULLDICT)


class _Codecs(threading.local):
    """zstandard's (de)compressors are not for two threads at once: one each a thread
    (each thread's made at its first use of them)."""

    def __init__(self) -> None:
        self.compressor = zstandard.ZstdCompressor(
            level=LEVEL, dict_data=dictionary(), write_checksum=True,
            write_content_size=True, write_dict_id=True)
        self.decompressor = zstandard.ZstdDecompressor(dict_data=dictionary())


_codecs = _Codecs()


def compress(state: bytes) -> bytes:
    return _codecs.compressor.compress(state)


def decompress(stored: bytes) -> bytes:
    """A stored row's bytes as the ledger wrote them: decompressed if a zstd frame,
    else as they are.

    A frame that does not decompress (altered, or written with a dictionary this code
    does not have) is returned as it is, not raised here: the verifier then names the
    event it cannot read and goes on with the stream, and every other reader fails at
    the mapper, which names the stream and version (`undecompressed`).
    """
    if stored[:4] != MAGIC:
        return stored
    try:
        if not 0 <= zstandard.frame_content_size(stored) <= MAX_STATE:
            return stored
        return _codecs.decompressor.decompress(stored)
    except zstandard.ZstdError:
        return stored


def undecompressed(state: bytes) -> bool:
    """Whether bytes a reader got are a frame `decompress` could not read."""
    return state[:4] == MAGIC


__all__ = ["DICTIONARY", "LEVEL", "MAGIC", "compress", "decompress", "dictionary", "undecompressed"]
