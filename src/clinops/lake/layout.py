"""Object keys of the lake layers (DESIGN §6): every writer and reader names objects through here."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime

BRONZE = "bronze"
SILVER = "silver"
GOLD = "gold"
QUARANTINE = "quarantine"
# Ground truth that only the synthetic generator knows (the oracle); never a lake layer a model reads.
TRUTH = "truth"


@dataclass(frozen=True)
class BronzeObject:
    topic: str
    partition: int
    first_offset: int
    last_offset: int
    date: str
    hour: int

    @property
    def key(self) -> str:
        return (
            f"{BRONZE}/{self.topic}/date={self.date}/hour={self.hour:02d}/"
            f"{self.topic}-{self.partition}-{self.first_offset}-{self.last_offset}.jsonl"
        )

    @property
    def stem(self) -> str:
        return f"{self.topic}-{self.partition}-{self.first_offset}-{self.last_offset}"


_BRONZE_KEY = re.compile(
    r"^bronze/(?P<topic>[^/]+)/date=(?P<date>\d{4}-\d{2}-\d{2})/hour=(?P<hour>\d{2})/"
    r"(?P=topic)-(?P<partition>\d+)-(?P<first>\d+)-(?P<last>\d+)\.jsonl$"
)


def bronze_object(topic: str, partition: int, first_offset: int, last_offset: int, timestamp_ms: int) -> BronzeObject:
    """The bronze object for records of one partition and one hour: the name depends only on its contents."""
    moment = datetime.fromtimestamp(timestamp_ms / 1000, tz=UTC)
    return BronzeObject(topic, partition, first_offset, last_offset, moment.strftime("%Y-%m-%d"), moment.hour)


def parse_bronze_key(key: str) -> BronzeObject:
    match = _BRONZE_KEY.match(key)
    if match is None:
        raise ValueError(f"not a bronze object key: {key!r}")
    return BronzeObject(
        match["topic"],
        int(match["partition"]),
        int(match["first"]),
        int(match["last"]),
        match["date"],
        int(match["hour"]),
    )


def bronze_prefix(topic: str) -> str:
    return f"{BRONZE}/{topic}/"


def quarantine_key(entity: str, origin: BronzeObject, stage: str) -> str:
    """Quarantined records of one bronze object at one stage (``ingest`` or ``validation``).

    Named after their origin, so reprocessing a bronze object overwrites its quarantine, never duplicates it.
    """
    return f"{QUARANTINE}/{entity}/date={origin.date}/hour={origin.hour:02d}/{origin.stem}.{stage}.jsonl"


def silver_prefix(entity: str) -> str:
    return f"{SILVER}/{entity}/"


def silver_partition_key(entity: str, date: str) -> str:
    return f"{SILVER}/{entity}/date={date}/part-0.parquet"


def table_prefix(layer: str, table: str) -> str:
    return f"{layer}/{table}/"


def table_key(layer: str, table: str) -> str:
    """An unpartitioned table (reference data, gold feature tables, generator truth)."""
    return f"{layer}/{table}/part-0.parquet"


def drift_prefix(deployment: str) -> str:
    """Drift results of one monitored deployment (one JSON record per window)."""
    return f"drift/{deployment}/"
