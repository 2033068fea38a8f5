"""Scoring the generator's known risk function on a test split: the best AUC any model could reach."""

from __future__ import annotations

from dataclasses import dataclass

from sklearn.metrics import roc_auc_score

from clinops.errors import ClinopsError
from clinops.lake.layout import SILVER, TRUTH, table_prefix
from clinops.lake.store import Lake, LakeError
from clinops.training.split import is_test_patient


@dataclass(frozen=True)
class OracleScore:
    auc: float
    test_encounters: int
    positive_rate: float


def oracle_auc(lake: Lake, *, target: str = "readmitted_30d", test_fraction: float = 0.2, seed: int = 7) -> OracleScore:
    """AUC of the true readmission risk against the drawn labels on the patient-grouped test split."""
    try:
        truth = lake.read_parquet(table_prefix(TRUTH, "oracle"), columns=["encounter_id", "patient_id", "oracle_risk"])
        outcomes = lake.read_parquet(table_prefix(SILVER, "outcomes"), columns=["encounter_id", target])
    except LakeError as exc:
        raise ClinopsError(f"no oracle: the lake holds no synthetic cohort ({exc})") from exc
    frame = truth.to_pandas().merge(outcomes.to_pandas(), on="encounter_id", validate="one_to_one")
    test = frame[is_test_patient(frame["patient_id"], test_fraction=test_fraction, seed=seed)]
    if test[target].nunique() < 2:
        raise ClinopsError("the test split holds a single class; generate more patients")
    return OracleScore(
        auc=float(roc_auc_score(test[target], test["oracle_risk"])),
        test_encounters=len(test),
        positive_rate=float(test[target].mean()),
    )
