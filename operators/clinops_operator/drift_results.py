"""Reading the drift job's results: the ``drift-results`` topic (keyed by deployment) or the lake's drift/ objects."""

from __future__ import annotations

import json
import logging
from typing import Any, Protocol

from clinops.lake.layout import drift_prefix
from clinops.specs.drift_monitor import DriftMonitorSpec, SourceKind

BATCH = 500
REQUIRED = ("window_end", "drift_share", "drifted")

log = logging.getLogger(__name__)


class Results(Protocol):
    # Whether read() itself waits for records; a reader that does not is polled with a pause in between.
    blocks: bool

    def read(self, timeout: float) -> list[dict[str, Any]]:
        """Records not read before (blocking up to ``timeout`` seconds for the first)."""

    def commit(self) -> None:
        """Remember what was read: called once the status holds it."""

    def close(self) -> None: ...


def parse(raw: bytes | str | None) -> dict[str, Any] | None:
    """A drift record, or None (logged) for anything else: one bad record must not stop the monitor."""
    try:
        record = json.loads(raw or b"")
    except (ValueError, UnicodeDecodeError):
        log.warning("Skipped a drift result that is not JSON: %.200r", raw)
        return None
    if not isinstance(record, dict) or any(record.get(key) is None for key in REQUIRED):
        log.warning("Skipped a drift result without %s: %.200r", ", ".join(REQUIRED), raw)
        return None
    return record


class KafkaResults:
    """The results topic through a consumer group of this monitor: a restart goes on where the status left off."""

    blocks = True

    def __init__(self, bootstrap: str, topic: str, deployment: str, group: str) -> None:
        from confluent_kafka import Consumer

        self.deployment = deployment.encode()
        self.consumer = Consumer(
            {
                "bootstrap.servers": bootstrap,
                "group.id": group,
                "enable.auto.commit": False,
                # A new monitor reads the windows already written: they are part of the drift run it judges.
                "auto.offset.reset": "earliest",
                "client.id": group,
            }
        )
        self.consumer.subscribe([topic])
        self.pending = False

    def read(self, timeout: float) -> list[dict[str, Any]]:
        records = []
        for message in self.consumer.consume(num_messages=BATCH, timeout=timeout):
            if message.error() is not None:
                log.warning("Drift results: %s", message.error())
                continue
            self.pending = True
            # The topic is shared by every monitored deployment; the key says whose window it is.
            if message.key() != self.deployment:
                continue
            record = parse(message.value())
            if record is not None:
                records.append(record)
        return records

    def commit(self) -> None:
        if self.pending:
            self.consumer.commit(asynchronous=False)
            self.pending = False

    def close(self) -> None:
        self.consumer.close()


class LakeResults:
    """The drift/ objects of one deployment; each committed object is read once per operator run."""

    blocks = False

    def __init__(self, lake_root: str, deployment: str) -> None:
        from clinops.lake.store import Lake

        self.lake = Lake(lake_root)
        self.prefix = drift_prefix(deployment)
        self.seen: set[str] = set()
        self.unread: list[str] = []

    def read(self, timeout: float) -> list[dict[str, Any]]:
        # Flink makes a part file visible only when its checkpoint commits; in-progress files are hidden.
        self.unread = [key for key in self.lake.keys(self.prefix) if key not in self.seen]
        records = []
        for key in self.unread:
            for line in self.lake.read_bytes(key).splitlines():
                record = parse(line)
                if record is not None:
                    records.append(record)
        return records

    def commit(self) -> None:
        self.seen.update(self.unread)
        self.unread = []

    def close(self) -> None:
        pass


def source_key(spec: DriftMonitorSpec) -> tuple[str, ...]:
    """What the reader depends on: a spec change to any of it needs a new reader."""
    return spec.deployment, spec.source.kind.value, spec.source.results_topic


def open_results(
    spec: DriftMonitorSpec, *, namespace: str, name: str, uid: str, bootstrap: str | None, lake: str | None
) -> Results | None:
    """The reader for the monitor's source, or None when the operator has no broker or lake for it."""
    if spec.source.kind is SourceKind.KAFKA:
        if not bootstrap:
            return None
        group = f"clinops-operator.{namespace}.{name}.{uid[:8]}"
        return KafkaResults(bootstrap, spec.source.results_topic, spec.deployment, group)
    return LakeResults(lake, spec.deployment) if lake else None
