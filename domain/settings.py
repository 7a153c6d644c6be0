"""One place for configuration: environment variables read by pydantic settings.

The defaults make `make demo` work on a fresh machine: SQLite files and a local broker
under SIJIL_HOME. Production changes URLs, not code.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

Compression = Literal["none", "gzip", "lz4", "zstd"]  # the publisher's batch codecs


class Settings(BaseSettings):
    """Where Sijil keeps and finds things."""

    model_config = SettingsConfigDict(env_prefix="SIJIL_", extra="ignore")

    home: Path = Field(default=Path(".sijil"), description="local files: databases, broker")
    database_url: str | None = Field(default=None, description="the event store's SQLAlchemy URL")
    projections_url: str | None = Field(default=None, description="the read models' URL")
    kafka_bootstrap: str = Field(default="127.0.0.1:19092", description="bootstrap servers")
    events_topic: str = Field(default="sijil.events.v1")
    ingest_batch_size: int = Field(default=500, ge=1, description="requests a transaction")
    # Kafka: the local development broker (consumers/broker.py, `sijil kafka up`) and the
    # topics Sijil creates (consumers/topics.py). kafka_bootstrap above names the cluster
    # clients use; the local broker listens on 127.0.0.1:kafka_port.
    kafka_port: int = Field(default=19092, ge=1, le=65535, description="local broker port")
    kafka_controller_port: int = Field(
        default=19093, ge=1, le=65535, description="local broker's KRaft controller port"
    )
    kafka_lib: Path | None = Field(
        default=None, description="broker jar cache; default <home>/kafka/lib"
    )
    events_partitions: int = Field(default=6, ge=1, description="events topic partitions")
    events_replication_factor: int = Field(default=1, ge=1, description="Sijil topics' RF")
    min_insync_replicas: int = Field(default=1, ge=1, description="Sijil topics' min ISR")
    # The publisher's batches, compressed: the events' JSON shrinks about nine times
    # with zstd at no loss of produce or consume speed (bench/RESULTS.md), which is what
    # lets ten months of the ministry fit on one disk. Readers decompress transparently.
    kafka_compression: Compression = Field(
        default="zstd", description="the publisher's compression codec")

    # The event store's rows, compressed with a dictionary of the ledger's own JSON (about
    # a sixth of their size: domain/compression.py). Rows are read either way, so a
    # store may be written with it on or off, or both.
    store_compression: Literal["zstd", "none"] = Field(
        default="zstd", description="the event store's row compression")
    # The ingest's writer process keeps this much of the store's pages in its own memory
    # (domain/persistence.py, `keep_pages`): its writes touch leaves of the store's
    # B-trees at random, 7 GiB of them at F = 1.0's half (session 12's dbstat), which
    # the page cache of this machine did not keep.
    store_writer_cache_mib: int = Field(
        default=2048, ge=2, description="SQLite page cache of the ingest's writer, MiB")
    # The ingest's cold tier (domain/cold_tier.py): workers the cache lets go, frozen.
    # F = 1.0 has 3.97 million workers at about 710 bytes each with the tier's
    # bookkeeping (2.7 GiB); a worker not kept is read back from the store months later.
    ingest_cold_mib: int = Field(
        default=4096, ge=0, description="the ingest's cold tier of frozen aggregates, MiB")

    def kafka_compression_type(self) -> str | None:
        """The codec as Kafka clients take it: None for no compression."""
        return None if self.kafka_compression == "none" else self.kafka_compression

    def store_url(self) -> str:
        """The event store's URL: an explicit setting, else a SQLite file under home."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.home / 'events.sqlite').resolve()}"

    def read_models_url(self) -> str:
        """The projections' URL: an explicit setting, else a SQLite file beside the store."""
        if self.projections_url:
            return self.projections_url
        return f"sqlite:///{(self.home / 'projections.sqlite').resolve()}"
