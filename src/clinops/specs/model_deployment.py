"""The ModelDeployment resource: serve a registered model by alias or version, with a canary and a prediction log."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from clinops.specs.common import ObjectMeta, SpecModel
from clinops.specs.training_job import ModelRef

ALIAS_PATTERN = r"^[a-z][a-z0-9_-]*$"


class VersionRef(SpecModel):
    """Exactly one of alias or version: an alias follows the registry as it moves, a version is pinned."""

    alias: str | None = Field(None, pattern=ALIAS_PATTERN, description="Registry alias to follow, e.g. champion.")
    version: int | None = Field(None, ge=1, description="Registered model version to pin.")

    @model_validator(mode="after")
    def alias_or_version(self) -> VersionRef:
        if (self.alias is None) == (self.version is None):
            raise ValueError("set exactly one of alias or version")
        return self

    @property
    def reference(self) -> str:
        """The part after the model name in an MLflow model URI: ``@champion`` or ``/3``."""
        return f"@{self.alias}" if self.alias is not None else f"/{self.version}"


class ServedModel(ModelRef, VersionRef):
    """The primary model: a registered model name plus the alias or version to serve."""

    @property
    def uri(self) -> str:
        return f"models:/{self.name}{self.reference}"


class CanarySpec(VersionRef):
    @field_validator("sticky_key")
    @classmethod
    def not_a_body_field(cls, sticky_key: str) -> str:
        if sticky_key in ("features", "instances"):
            raise ValueError("stickyKey must not be features or instances: those name the request body's parts")
        return sticky_key

    traffic_percent: float = Field(
        ge=0, le=100, description="Share of requests (by sticky key) the canary answers, in percent."
    )
    sticky_key: str = Field(
        "patient_id",
        pattern=r"^[A-Za-z_][A-Za-z0-9_]*$",
        description="Request field whose stable hash picks the variant, so one patient always sees one variant.",
    )


class AutoscalingSpec(SpecModel):
    min_replicas: int = Field(1, ge=1, le=100, description="Fewest replicas.")
    max_replicas: int = Field(4, ge=1, le=100, description="Most replicas.")
    target_cpu_utilization: int = Field(70, ge=10, le=100, description="Average CPU utilisation to hold, percent.")

    @model_validator(mode="after")
    def ordered(self) -> AutoscalingSpec:
        if self.min_replicas > self.max_replicas:
            raise ValueError("minReplicas must not exceed maxReplicas")
        return self


class PredictionLogSpec(SpecModel):
    enabled: bool = Field(True, description="Write every sampled prediction to the log.")
    topic: str = Field(
        "predictions",
        pattern=r"^[A-Za-z0-9._-]+$",
        description="Kafka topic when a broker is configured, else the lake prefix bronze/<topic>/.",
    )
    sample_rate: float = Field(1.0, ge=0.0, le=1.0, description="Share of predictions logged.")
    buffer_size: int = Field(
        10000, ge=1, le=1_000_000, description="Records held while the sink is slow; beyond it they are dropped."
    )
    flush_seconds: float = Field(1.0, gt=0, le=60, description="Longest a record waits before it is written.")


class ModelDeploymentSpec(SpecModel):
    model: ServedModel = Field(description="The registered model and the alias or version to serve.")
    replicas: int = Field(1, ge=0, le=100, description="Server replicas (ignored when autoscaling is set).")
    autoscaling: AutoscalingSpec | None = Field(None, description="Horizontal autoscaling on CPU.")
    canary: CanarySpec | None = Field(None, description="A second version that answers a share of requests.")
    prediction_log: PredictionLogSpec = Field(
        default_factory=PredictionLogSpec, description="Where predictions are recorded for drift monitoring."
    )
    reload_interval_seconds: float = Field(
        10.0, ge=0.5, le=3600, description="How often the registry is asked whether an alias has moved."
    )
    threshold: float = Field(0.5, gt=0.0, lt=1.0, description="Score at or above which the label is 1.")
    shutdown_grace_seconds: float = Field(
        5.0,
        ge=0,
        le=300,
        description="On SIGTERM, how long the server reports not-ready before it stops taking requests.",
    )

    @model_validator(mode="after")
    def canary_differs(self) -> ModelDeploymentSpec:
        canary = self.canary
        if canary is not None and (canary.alias, canary.version) == (self.model.alias, self.model.version):
            raise ValueError("canary names the same alias or version as model")
        return self


class ModelDeployment(SpecModel):
    api_version: Literal["clinops.io/v1alpha1"] = Field("clinops.io/v1alpha1", description="API version.")
    kind: Literal["ModelDeployment"] = Field("ModelDeployment", description="Kind.")
    metadata: ObjectMeta = Field(description="Object metadata.")
    spec: ModelDeploymentSpec = Field(description="Desired serving.")
