"""Load and check a training table: target, classes, size, numeric features and the leakage guard."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from clinops.errors import ClinopsError
from clinops.features.definitions import FEATURES_BY_NAME, Role, model_inputs
from clinops.specs.training_job import DatasetSpec
from clinops.training.split import is_test_patient

MIN_ROWS = 200
MIN_PER_CLASS = 20
SUBGROUP_COLUMNS = ("sex", "age_band")
_NON_FEATURE_ROLES = (Role.ID, Role.TIME, Role.GROUP, Role.TARGET)


class DatasetError(ClinopsError):
    """The training table cannot be used as it is."""


@dataclass(frozen=True)
class TrainingData:
    features: list[str]
    train: pd.DataFrame  # features + target + group column (+ subgroup columns when present)
    test: pd.DataFrame
    target: str
    group_by: str
    uri: str
    content_hash: str

    def xy(self, part: pd.DataFrame) -> tuple[pd.DataFrame, NDArray[np.int_]]:
        return part[self.features], part[self.target].to_numpy(dtype=int)


def content_hash(frame: pd.DataFrame) -> str:
    """Order-sensitive digest of the table's values and column names: the dataset's lineage identity."""
    digest = hashlib.sha256("\x1f".join(map(str, frame.columns)).encode())
    digest.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    return digest.hexdigest()


def _feature_columns(frame: pd.DataFrame, target: str, group_by: str) -> list[str]:
    """Model inputs. Ids, times, subgroup labels and every known outcome are never features (leakage guard)."""
    known = [name for name in frame.columns if name in FEATURES_BY_NAME]
    if target in FEATURES_BY_NAME and len(known) == len(frame.columns):
        return [name for name in model_inputs(target) if name in frame.columns]
    excluded = {target, group_by}
    excluded |= {n for n in frame.columns if n in FEATURES_BY_NAME and FEATURES_BY_NAME[n].role in _NON_FEATURE_ROLES}
    excluded |= {n for n in frame.columns if n.endswith("_id") or n == "id"}
    excluded |= {n for n in frame.columns if n in FEATURES_BY_NAME and target in FEATURES_BY_NAME[n].leaks}
    return [n for n in frame.columns if n not in excluded]


def _as_numeric(frame: pd.DataFrame, features: list[str]) -> pd.DataFrame:
    numeric = {}
    for name in features:
        column = frame[name]
        if pd.api.types.is_bool_dtype(column) or str(column.dtype) == "boolean":
            numeric[name] = column.astype("float64")
            continue
        if pd.api.types.is_numeric_dtype(column):
            numeric[name] = column.astype("float64")
            continue
        converted = pd.to_numeric(column, errors="coerce")
        garbage = column.notna() & converted.isna()
        if garbage.any():
            example = column[garbage].iloc[0]
            raise DatasetError(
                f"column {name!r} holds non-numeric values ({int(garbage.sum())} rows, e.g. {example!r}); "
                "map or drop it before training"
            )
        numeric[name] = converted.astype("float64")
    return pd.DataFrame(numeric, index=frame.index)


def _check_leaks(features: pd.DataFrame, y: pd.Series) -> None:
    for name in features.columns:
        values = features[name]
        if values.notna().all() and values.nunique() == 2 and (values.astype(int) == y.astype(int)).all():
            raise DatasetError(f"column {name!r} reproduces the target: it leaks the outcome")


def prepare_training_data(frame: pd.DataFrame, spec: DatasetSpec) -> TrainingData:
    table, features = validate_table(frame, spec)
    return split_table(table, features, spec, uri=spec.uri, digest=content_hash(frame))


def validate_table(frame: pd.DataFrame, spec: DatasetSpec) -> tuple[pd.DataFrame, list[str]]:
    """The model-ready table (numeric features, 0/1 target, group and subgroup columns) and its feature names."""
    target, group_by = spec.target, spec.group_by
    if target not in frame.columns:
        raise DatasetError(f"target column {target!r} is not in the dataset ({len(frame.columns)} columns)")
    if group_by not in frame.columns:
        raise DatasetError(f"group column {group_by!r} is not in the dataset")
    frame = frame[frame[target].notna()].reset_index(drop=True)
    labels = frame[target]
    classes = sorted(pd.unique(labels).tolist())
    if len(classes) != 2:
        raise DatasetError(f"target {target!r} must have two classes, found {len(classes)}: {classes[:5]}")
    y = (labels == classes[1]).astype(int) if not pd.api.types.is_bool_dtype(labels) else labels.astype(int)
    if len(frame) < MIN_ROWS:
        raise DatasetError(f"too few rows: {len(frame)} labelled rows, at least {MIN_ROWS} needed")
    if y.value_counts().min() < MIN_PER_CLASS:
        raise DatasetError(f"too few examples of one class: {y.value_counts().to_dict()}, {MIN_PER_CLASS} needed")
    features = _feature_columns(frame, target, group_by)
    if not features:
        raise DatasetError("no feature columns remain after excluding ids, groups and outcomes")
    numeric = _as_numeric(frame, features)
    _check_leaks(numeric, y)
    extra = [c for c in SUBGROUP_COLUMNS if c in frame.columns and c not in numeric.columns]
    return pd.concat([numeric, y.rename(target), frame[[group_by, *extra]]], axis=1), features


def split_table(table: pd.DataFrame, features: list[str], spec: DatasetSpec, *, uri: str, digest: str) -> TrainingData:
    test_mask = is_test_patient(table[spec.group_by], test_fraction=spec.test_fraction, seed=spec.seed)
    train, test = table[~test_mask].reset_index(drop=True), table[test_mask].reset_index(drop=True)
    for name, part in (("train", train), ("test", test)):
        if part[spec.target].nunique() < 2:
            raise DatasetError(f"the {name} split holds a single class; more data is needed")
    return TrainingData(
        features=features,
        train=train,
        test=test,
        target=spec.target,
        group_by=spec.group_by,
        uri=uri,
        content_hash=digest,
    )
