from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from clinops.specs.training_job import DatasetSpec
from clinops.training.dataset import DatasetError, prepare_training_data


def frame(n: int = 400, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    return pd.DataFrame(
        {
            "encounter_id": [f"e{i}" for i in range(n)],
            "patient_id": [f"p{i // 2}" for i in range(n)],  # two stays per patient
            "heart_rate_mean_stay": 80 + 10 * x,
            "age": rng.integers(20, 90, n),
            "sex": rng.choice(["F", "M"], n),
            "readmitted_30d": rng.random(n) < 1 / (1 + np.exp(-x)),
        }
    )


SPEC = DatasetSpec(uri="unused", target="readmitted_30d")


def test_split_keeps_patients_on_one_side_and_drops_ids() -> None:
    data = prepare_training_data(frame(), SPEC)
    assert set(data.train["patient_id"]).isdisjoint(data.test["patient_id"])
    assert sorted(data.features) == ["age", "heart_rate_mean_stay"]
    assert "sex" in data.test.columns  # kept for subgroup evaluation, never a feature


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda f: f.drop(columns=["readmitted_30d"]), "target column 'readmitted_30d' is not in the dataset"),
        (lambda f: f.assign(readmitted_30d=True), "two classes, found 1"),
        (lambda f: f.head(50), "too few rows: 50"),
        (lambda f: f.assign(readmitted_30d=[i < 5 for i in range(len(f))]), "too few examples of one class"),
        (
            lambda f: f.assign(age=f["age"].astype(object).where(f.index != 3, "eighty")),
            "column 'age' holds non-numeric",
        ),
        (lambda f: f.assign(leak=f["readmitted_30d"].astype(int)), "column 'leak' reproduces the target"),
        (lambda f: f.drop(columns=["patient_id"]), "group column 'patient_id'"),
    ],
)
def test_bad_datasets_fail_with_the_cause(change, message) -> None:
    with pytest.raises(DatasetError, match=message):
        prepare_training_data(change(frame()), SPEC)


def test_outcome_columns_of_other_targets_are_never_features() -> None:
    data = prepare_training_data(frame().assign(adverse_event_24h=False, adverse_event_count=1), SPEC)
    assert "adverse_event_24h" not in data.features
    ae = prepare_training_data(
        frame()
        .assign(adverse_event_24h=lambda f: f["readmitted_30d"], adverse_event_count=1)
        .drop(columns=["readmitted_30d"]),
        DatasetSpec(uri="unused", target="adverse_event_24h"),
    )
    assert "adverse_event_count" not in ae.features
