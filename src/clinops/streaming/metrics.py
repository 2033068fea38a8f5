"""The ingestion consumer's Prometheus metrics, on a registry of its own (one per consumer)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

# A batch write is one object PUT plus a synchronous commit: milliseconds locally, up to seconds on S3.
BATCH_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class IngestMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.records = Counter(
            "clinops_ingest_records", "Records written to bronze.", ["topic"], registry=self.registry
        )
        self.bytes = Counter(
            "clinops_ingest_bytes",
            "Message bytes consumed into bronze or quarantine.",
            ["topic"],
            registry=self.registry,
        )
        self.quarantined = Counter(
            "clinops_ingest_quarantined",
            "Messages that were not one JSON object, or too large, written to quarantine.",
            ["topic"],
            registry=self.registry,
        )
        self.batch_seconds = Histogram(
            "clinops_ingest_batch_seconds",
            "Time to write one batch's objects and commit its offsets.",
            ["topic"],
            buckets=BATCH_BUCKETS,
            registry=self.registry,
        )
        self.lag = Gauge(
            "clinops_ingest_consumer_lag",
            "Messages in the partition not yet consumed by this group.",
            ["topic", "partition"],
            registry=self.registry,
        )
