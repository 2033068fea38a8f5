"""The TrainingJob resource: train and tune a model on a lake dataset, register it and apply a promotion policy."""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

from pydantic import Field, field_validator, model_validator

from clinops.specs.common import ObjectMeta, SpecModel


class Algorithm(StrEnum):
    XGBOOST = "xgboost"
    RANDOM_FOREST = "random_forest"
    LOGISTIC_REGRESSION = "logistic_regression"
    ISOLATION_FOREST = "isolation_forest"


class Metric(StrEnum):
    ROC_AUC = "roc_auc"
    PR_AUC = "pr_auc"
    BRIER = "brier"
    CALIBRATION_ERROR = "calibration_error"

    @property
    def higher_is_better(self) -> bool:
        return self in (Metric.ROC_AUC, Metric.PR_AUC)


class SearchAlgorithm(StrEnum):
    TPE = "tpe"
    RANDOM = "random"


class Scheduler(StrEnum):
    ASHA = "asha"
    FIFO = "fifo"


class ModelRef(SpecModel):
    name: str = Field(
        min_length=1,
        max_length=128,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$",
        description="Registered model name in the MLflow registry.",
    )


class DatasetSpec(SpecModel):
    uri: str = Field(
        min_length=1,
        description="Gold table: lake://gold/<table>/ (relative to the configured lake), s3://… or a local path.",
    )
    target: str = Field(min_length=1, description="Label column (binary).")
    test_fraction: float = Field(0.2, ge=0.05, le=0.5, description="Share of patients held out for evaluation.")
    seed: int = Field(7, ge=0, description="Seed of the split and of the search.")
    group_by: str = Field("patient_id", description="Column whose values never straddle train and test.")


class ParameterRange(SpecModel):
    """One hyperparameter's search domain."""

    type: Literal["uniform", "loguniform", "int", "choice"] = Field(description="Sampling distribution.")
    low: float | None = Field(None, description="Lower bound (uniform, loguniform, int).")
    high: float | None = Field(None, description="Upper bound, inclusive for int.")
    values: list[float | int | str | bool] | None = Field(None, description="Candidates for choice.")

    @model_validator(mode="after")
    def bounds_fit_type(self) -> ParameterRange:
        if self.type == "choice":
            if not self.values:
                raise ValueError("choice needs a non-empty values list")
            return self
        if self.low is None or self.high is None:
            raise ValueError(f"{self.type} needs low and high")
        if self.low > self.high:
            raise ValueError("low must not exceed high")
        if self.type == "loguniform" and self.low <= 0:
            raise ValueError("loguniform needs low > 0")
        return self


class TuningSpec(SpecModel):
    trials: int = Field(24, ge=1, le=2000, description="Trial budget across all algorithms.")
    max_concurrent_trials: int = Field(2, ge=1, le=64, description="Trials running at once.")
    scheduler: Scheduler = Field(Scheduler.ASHA, description="Trial scheduler: asha stops weak trials early.")
    search: SearchAlgorithm = Field(
        SearchAlgorithm.TPE, description="How trials are proposed: tpe learns from earlier trials, random does not."
    )
    metric: Metric = Field(Metric.ROC_AUC, description="Validation metric the search optimises.")
    timeout_seconds: int = Field(1800, ge=10, le=7 * 24 * 3600, description="Wall-clock budget of the search.")
    search_space: dict[Algorithm, dict[str, ParameterRange]] = Field(
        default_factory=dict, description="Per-algorithm overrides of the default search space."
    )


class PromotionSpec(SpecModel):
    alias: str = Field("champion", pattern=r"^[a-z][a-z0-9_-]*$", description="Alias a promoted version receives.")
    min_improvement: float = Field(
        0.005, ge=0.0, le=1.0, description="How much better than the current champion, on the same test data."
    )
    gates: dict[Metric, float] = Field(
        default_factory=dict,
        description="Absolute floors (roc_auc, pr_auc) or ceilings (brier, calibration_error) to pass first.",
    )


class TrainingJobSpec(SpecModel):
    model: ModelRef = Field(description="Where the trained model is registered.")
    dataset: DatasetSpec = Field(description="Training data.")
    algorithms: list[Algorithm] = Field(
        default_factory=lambda: [Algorithm.XGBOOST], min_length=1, description="Algorithms the search may pick."
    )
    tuning: TuningSpec = Field(default_factory=TuningSpec, description="Hyperparameter search.")
    promotion: PromotionSpec = Field(default_factory=PromotionSpec, description="Promotion policy.")
    schedule: str | None = Field(None, description="Cron schedule (5 fields) for recurring retraining.")

    @field_validator("algorithms")
    @classmethod
    def unique(cls, algorithms: list[Algorithm]) -> list[Algorithm]:
        if len(set(algorithms)) != len(algorithms):
            raise ValueError("algorithms must not repeat")
        return algorithms

    @field_validator("schedule")
    @classmethod
    def five_field_cron(cls, schedule: str | None) -> str | None:
        if schedule is not None and len(schedule.split()) != 5:
            raise ValueError("schedule must be a 5-field cron expression, e.g. '0 3 * * 0'")
        return schedule

    @model_validator(mode="after")
    def overrides_name_chosen_algorithms(self) -> TrainingJobSpec:
        unused = set(self.tuning.search_space) - set(self.algorithms)
        if unused:
            raise ValueError(f"tuning.searchSpace names algorithms not in algorithms: {sorted(unused)}")
        return self


class TrainingJob(SpecModel):
    api_version: Literal["clinops.io/v1alpha1"] = Field("clinops.io/v1alpha1", description="API version.")
    kind: Literal["TrainingJob"] = Field("TrainingJob", description="Kind.")
    metadata: ObjectMeta = Field(description="Object metadata.")
    spec: TrainingJobSpec = Field(description="Desired training.")
