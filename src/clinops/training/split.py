"""Seeded train/test split grouped by patient, so no patient is on both sides."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

_BUCKETS = 1_000_000


def is_test_patient(patient_ids: pd.Series, *, test_fraction: float, seed: int) -> NDArray[Any]:
    """True where the row's patient belongs to the test split.

    Membership is a hash of (seed, patient id), not a shuffle: a patient keeps their side when the dataset grows,
    so a model retrained on more data is still scored on patients it never saw.
    """
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test fraction must be within (0, 1), got {test_fraction}")
    hash_key = f"clinops{seed:09d}"[-16:].rjust(16, "0")
    hashes = pd.util.hash_array(patient_ids.astype(str).to_numpy(dtype=object), hash_key=hash_key)
    return np.asarray(hashes % _BUCKETS < round(test_fraction * _BUCKETS))
