"""Status models of the clinops resources: standard conditions plus what each kind reports."""

from __future__ import annotations

from enum import StrEnum

from pydantic import Field

from clinops.specs.common import SpecModel

# metav1.Condition's own limits, so a status written by the operator always fits the apiserver's schema.
CONDITION_TYPE = (
    r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])$"
)
CONDITION_REASON = r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$"


class ConditionStatus(StrEnum):
    TRUE = "True"
    FALSE = "False"
    UNKNOWN = "Unknown"


class Condition(SpecModel):
    """One aspect of the object's state, as ``metav1.Condition`` (Ready, Failed, Drifted, ...)."""

    type: str = Field(max_length=316, pattern=CONDITION_TYPE, description="Condition type, CamelCase.")
    status: ConditionStatus = Field(description="True, False or Unknown.")
    reason: str = Field(
        min_length=1, max_length=1024, pattern=CONDITION_REASON, description="Programmatic CamelCase reason."
    )
    message: str = Field("", max_length=32768, description="Human-readable detail.")
    last_transition_time: str = Field(
        max_length=64, description="When status last changed (RFC 3339).", json_schema_extra={"format": "date-time"}
    )
    observed_generation: int | None = Field(None, ge=0, description="The generation the condition was set for.")


class TrainingPhase(StrEnum):
    PENDING = "Pending"
    RUNNING = "Running"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"


class BestTrial(SpecModel):
    algorithm: str = Field(max_length=64, description="Algorithm of the best trial.")
    params: dict[str, str] = Field(
        default_factory=dict, description="Hyperparameters of the best trial, as text (numbers and names mix)."
    )
    metrics: dict[str, float] = Field(default_factory=dict, description="Test metrics of the best trial.")


class TrainingJobStatus(SpecModel):
    phase: TrainingPhase | None = Field(None, description="Where the current generation's run is.")
    run_id: str | None = Field(None, max_length=256, description="KFP run id of the current generation.")
    mlflow_run_id: str | None = Field(None, max_length=256, description="MLflow run of the search.")
    best: BestTrial | None = Field(None, description="The best trial of the search.")
    model_version: str | None = Field(None, max_length=64, description="Registered model version of the best trial.")
    promoted: bool | None = Field(None, description="Whether the promotion policy moved the alias to it.")
    conditions: list[Condition] = Field(default_factory=list, max_length=32, description="Standard conditions.")
    observed_generation: int | None = Field(None, ge=0, description="The generation this status describes.")


class DeploymentPhase(StrEnum):
    PENDING = "Pending"
    PROGRESSING = "Progressing"
    READY = "Ready"
    FAILED = "Failed"


class ModelDeploymentStatus(SpecModel):
    phase: DeploymentPhase | None = Field(None, description="Pending, Progressing, Ready or Failed.")
    url: str | None = Field(None, max_length=2048, description="In-cluster URL of the server.")
    serving_version: str | None = Field(None, max_length=64, description="Model version the primary answers with.")
    canary_version: str | None = Field(None, max_length=64, description="Model version the canary answers with.")
    ready_replicas: int | None = Field(None, ge=0, description="Ready server pods.")
    conditions: list[Condition] = Field(default_factory=list, max_length=32, description="Standard conditions.")
    observed_generation: int | None = Field(None, ge=0, description="The generation this status describes.")
