"""Load a user-supplied encounter CSV into a gold table through a declarative schema mapping."""

from __future__ import annotations

import hashlib
import re
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import orjson
import pandas as pd
import pyarrow as pa
import yaml
from numpy.typing import NDArray
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from clinops.data.schemas import AGE_CAP, age_band
from clinops.errors import ClinopsError
from clinops.lake.layout import GOLD, QUARANTINE, table_key
from clinops.lake.store import Lake

Transform = Literal["number", "integer", "equals", "not_equals", "age_bracket", "sex", "opaque_id"]


class ColumnMapping(BaseModel):
    """How one gold column is computed from one source column."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    source: str = Field(description="Column name in the CSV.")
    transform: Transform = Field("number", description="How the source value becomes the gold value.")
    value: str | None = Field(None, description="The compared value for equals/not_equals.")
    scale: float = Field(1.0, description="Multiplier for number (e.g. 24 turns days into hours).")


class SchemaMapping(BaseModel):
    """A CSV layout mapped onto the gold encounter contract (ids, features, targets)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(description="Name of the mapping.")
    missing_values: list[str] = Field(default_factory=lambda: ["", "?", "NA"], description="Tokens read as missing.")
    columns: dict[str, ColumnMapping] = Field(description="Gold column → how to compute it.")


# The UCI "Diabetes 130-US hospitals for years 1999-2008" file (diabetic_data.csv).
UCI_DIABETES = SchemaMapping(
    name="uci-diabetes",
    columns={
        "encounter_id": ColumnMapping(source="encounter_id", transform="opaque_id"),
        "patient_id": ColumnMapping(source="patient_nbr", transform="opaque_id"),
        "age": ColumnMapping(source="age", transform="age_bracket"),
        "sex": ColumnMapping(source="gender", transform="sex"),
        "los_hours": ColumnMapping(source="time_in_hospital", scale=24.0),
        "lab_procedure_count": ColumnMapping(source="num_lab_procedures", transform="integer"),
        "procedure_count": ColumnMapping(source="num_procedures", transform="integer"),
        "medication_count": ColumnMapping(source="num_medications", transform="integer"),
        "outpatient_visits": ColumnMapping(source="number_outpatient", transform="integer"),
        "emergency_visits": ColumnMapping(source="number_emergency", transform="integer"),
        "inpatient_visits": ColumnMapping(source="number_inpatient", transform="integer"),
        "diagnosis_count": ColumnMapping(source="number_diagnoses", transform="integer"),
        "med_insulin_count": ColumnMapping(source="insulin", transform="not_equals", value="No"),
        "medication_changed": ColumnMapping(source="change", transform="equals", value="Ch"),
        "readmitted_30d": ColumnMapping(source="readmitted", transform="equals", value="<30"),
    },
)
BUILTIN_MAPPINGS = {UCI_DIABETES.name: UCI_DIABETES}

_AGE_BRACKET = re.compile(r"^\[(\d+)-(\d+)\)$")


def load_mapping(name_or_path: str) -> SchemaMapping:
    if name_or_path in BUILTIN_MAPPINGS:
        return BUILTIN_MAPPINGS[name_or_path]
    path = Path(name_or_path)
    if not path.is_file():
        known = ", ".join(BUILTIN_MAPPINGS)
        raise ClinopsError(f"mapping {name_or_path!r} is neither a built-in ({known}) nor a readable YAML file")
    try:
        return SchemaMapping.model_validate(yaml.safe_load(path.read_text()))
    except (yaml.YAMLError, ValidationError) as exc:
        raise ClinopsError(f"invalid mapping file {path}: {exc}") from exc


def _opaque(values: pd.Series, salt: str) -> pd.Series:
    # Source identifiers may be real record numbers: keep only a salted digest, never the number itself.
    return values.map(
        lambda v: None if pd.isna(v) else hashlib.blake2b(f"{salt}:{v}".encode(), digest_size=8).hexdigest()
    )


def _apply(column: str, spec: ColumnMapping, raw: pd.Series, salt: str, problems: dict[int, list[str]]) -> pd.Series:
    def flag(mask: NDArray[Any], reason: str) -> None:
        for row in np.flatnonzero(mask).tolist():
            problems[row].append(f"{reason}:{spec.source}")

    present = raw.notna().to_numpy()
    if spec.transform in ("number", "integer"):
        values = pd.to_numeric(raw, errors="coerce")
        flag(present & values.isna().to_numpy(), "not_numeric")
        if spec.transform == "integer":
            fractional = (values.notna() & (values != values.round())).to_numpy()
            flag(fractional, "not_integer")
            return values.mask(fractional).astype("Int64")
        return values * spec.scale
    if spec.transform in ("equals", "not_equals"):
        equal = raw.astype("string") == spec.value
        result = equal if spec.transform == "equals" else ~equal
        return result.astype("boolean").where(pd.Series(present, index=raw.index))
    if spec.transform == "age_bracket":
        parsed = raw.astype("string").str.extract(_AGE_BRACKET)
        low = pd.to_numeric(parsed[0], errors="coerce")
        high = pd.to_numeric(parsed[1], errors="coerce")
        flag(present & low.isna().to_numpy(), "invalid_age_bracket")
        # Midpoint of the bracket; over-89s collapse into one category (HIPAA safe harbour).
        return ((low + high) // 2).clip(upper=AGE_CAP).astype("Int64")
    if spec.transform == "sex":
        mapped = raw.astype("string").str.strip().str.lower().map({"female": "F", "f": "F", "male": "M", "m": "M"})
        return mapped.astype("string")
    assert spec.transform == "opaque_id"
    flag(~present, "missing_id")
    return _opaque(raw, salt)


@dataclass
class TabularLoad:
    table: str
    rows: int
    loaded: int
    quarantined: int
    reasons: dict[str, int]


def load_csv(path: Path, mapping: SchemaMapping, lake: Lake, *, table: str) -> TabularLoad:
    """Map a CSV onto a gold table; rows with unusable values go to quarantine with their reasons."""
    try:
        raw = pd.read_csv(path, dtype=str, keep_default_na=False, na_values=mapping.missing_values)
    except FileNotFoundError as exc:
        raise ClinopsError(f"no such file: {path}") from exc
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise ClinopsError(f"cannot read {path} as CSV: {exc}") from exc
    missing = sorted({spec.source for spec in mapping.columns.values()} - set(raw.columns))
    if missing:
        raise ClinopsError(f"{path.name} lacks columns the {mapping.name} mapping needs: {', '.join(missing)}")
    salt = f"{mapping.name}:{table}"
    problems: dict[int, list[str]] = defaultdict(list)
    gold = pd.DataFrame(
        {name: _apply(name, spec, raw[spec.source], salt, problems) for name, spec in mapping.columns.items()}
    )
    if "age" in gold.columns:
        gold["age_band"] = gold["age"].map(lambda a: None if pd.isna(a) else age_band(int(a))).astype("string")
    if "sex" in gold.columns:
        gold["is_female"] = (gold["sex"] == "F").astype("Int64").where(gold["sex"].notna())
    bad = np.zeros(len(gold), dtype=bool)
    bad[list(problems)] = True
    if problems:
        entries = [
            orjson.dumps({"reasons": problems[row], "line": row + 2, "record": raw.iloc[row].dropna().to_dict()})
            for row in sorted(problems)
        ]
        lake.write_bytes(f"{QUARANTINE}/{table}/{path.stem}.validation.jsonl", b"\n".join(entries) + b"\n")
    loaded = gold[~bad].reset_index(drop=True)
    lake.write_parquet(table_key(GOLD, table), pa.Table.from_pandas(loaded, preserve_index=False))
    counts: dict[str, int] = defaultdict(int)
    for reasons in problems.values():
        for reason in reasons:
            counts[reason] += 1
    return TabularLoad(table=table, rows=len(raw), loaded=len(loaded), quarantined=int(bad.sum()), reasons=dict(counts))
