from __future__ import annotations

import pandas as pd
import pytest

from clinops.training.split import is_test_patient


def test_split_is_grouped_seeded_and_stable_under_growth() -> None:
    patients = pd.Series([f"p-{i:05d}" for i in range(5000)])
    rows = pd.concat([patients, patients.sample(2000, random_state=1)], ignore_index=True)  # repeat encounters
    test = is_test_patient(rows, test_fraction=0.2, seed=7)
    per_patient = pd.DataFrame({"p": rows, "t": test}).groupby("p")["t"].nunique()
    assert (per_patient == 1).all()  # no patient on both sides
    assert abs(is_test_patient(patients, test_fraction=0.2, seed=7).mean() - 0.2) < 0.02
    grown = pd.concat([patients, pd.Series([f"q-{i}" for i in range(1000)])], ignore_index=True)
    assert (is_test_patient(grown, test_fraction=0.2, seed=7)[:5000] == test[:5000]).all()
    assert (is_test_patient(patients, test_fraction=0.2, seed=8) != test[:5000]).any()


@pytest.mark.parametrize("fraction", [0.0, 1.0, -0.1])
def test_split_fraction_must_leave_both_sides(fraction) -> None:
    with pytest.raises(ValueError, match="test fraction"):
        is_test_patient(pd.Series(["p"]), test_fraction=fraction, seed=1)
