"""Generation and bronze → silver throughput, with a per-record pydantic validator as the peer, in one run.

The peer is how validation is usually written first: one pydantic model per record with range validators and a
seen-set for dedupe. Both sides validate the same parsed vitals records and must agree on what they keep.
Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from datetime import datetime
from typing import Any

import orjson
import pandas as pd
from pydantic import BaseModel, ValidationError, field_validator, model_validator

from clinops.data.emit import emit_to_lake
from clinops.data.generator import GeneratorConfig, generate
from clinops.data.schemas import VITAL_SIGNS, VITALS_BY_NAME, EventType
from clinops.data.validation import validate
from clinops.lake.bronze import iter_bronze
from clinops.lake.silver import bronze_to_silver
from clinops.lake.store import Lake
from timing import best_of


def _in_range(name: str, value: float | None) -> float | None:
    m = VITALS_BY_NAME[name]
    if value is not None and not m.hard_min <= value <= m.hard_max:
        raise ValueError(f"out_of_range:{name}")
    return value


class PeerVitals(BaseModel):
    event_id: str
    patient_id: str
    encounter_id: str
    timestamp: datetime
    source: str
    heart_rate: float | None = None
    systolic_bp: float | None = None
    diastolic_bp: float | None = None
    spo2: float | None = None
    temperature: float | None = None
    temperature_unit: str | None = None
    respiratory_rate: float | None = None

    @model_validator(mode="after")
    def standardise(self) -> PeerVitals:
        if self.temperature is not None:
            unit = self.temperature_unit
            if unit is None:
                unit = "F" if 86 <= self.temperature <= 110 else "C"
            if unit == "F":
                self.temperature = round((self.temperature - 32) * 5 / 9, 6)
            elif unit != "C":
                raise ValueError("unknown_unit:temperature")
        for m in VITAL_SIGNS:
            _in_range(m.name, getattr(self, m.name))
        if all(getattr(self, m.name) is None for m in VITAL_SIGNS):
            raise ValueError("no_measurements")
        if self.systolic_bp is not None and self.diastolic_bp is not None and self.diastolic_bp >= self.systolic_bp:
            raise ValueError("diastolic_not_below_systolic")
        return self

    @field_validator("event_id", "patient_id", "encounter_id", "source")
    @classmethod
    def not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("missing")
        return value


def peer_validate(records: list[dict[str, Any]]) -> int:
    kept, seen_ids, seen_keys = 0, set(), set()
    for record in records:
        try:
            row = PeerVitals.model_validate(record)
        except ValidationError:
            continue
        if row.event_id in seen_ids:
            continue
        seen_ids.add(row.event_id)
        key = (row.patient_id, row.timestamp, row.source)
        if key in seen_keys:
            continue
        seen_keys.add(key)
        kept += 1
    return kept


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--patients", type=int, default=3000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    gen_s, cohort = best_of(args.repeats, lambda: generate(GeneratorConfig(patients=args.patients, seed=1)))
    with tempfile.TemporaryDirectory() as root:
        lake = Lake(root)
        start = time.perf_counter()
        emitted = emit_to_lake(cohort, lake)
        emit_s = time.perf_counter() - start
        start = time.perf_counter()
        report = bronze_to_silver(lake)
        silver_s = time.perf_counter() - start
        records = [orjson.loads(line) for _, data in iter_bronze(lake, "patient-vitals") for line in data.splitlines()]

    # Parsing is shared; both sides validate the same parsed records.
    ours_s, ours = best_of(args.repeats, lambda: validate(EventType.VITALS, pd.DataFrame.from_records(records)))
    peer_s, peer_kept = best_of(args.repeats, lambda: peer_validate(records))
    bronze_records = sum(emitted.records.values())
    print(
        json.dumps(
            {
                "benchmark": "generation_and_bronze_to_silver",
                "patients": args.patients,
                "events": cohort.event_count,
                "generate_events_per_s": round(cohort.event_count / gen_s),
                "emit_to_bronze_records_per_s": round(bronze_records / emit_s),
                "bronze_to_silver_records_per_s": round(bronze_records / silver_s),
                "quarantined": report.quarantined,
                "vitals_records": len(records),
                "ours_validate_records_per_s": round(len(records) / ours_s),
                "peer_pydantic_per_record_records_per_s": round(len(records) / peer_s),
                "ratio_ours_over_peer": round(peer_s / ours_s, 2),
                "same_records_kept": len(ours.valid) == peer_kept,
            }
        )
    )


if __name__ == "__main__":
    main()
