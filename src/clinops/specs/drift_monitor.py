"""The DriftMonitor resource: watch a deployment's prediction log for drift and retrain when it persists."""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import Field, model_validator

from clinops.specs.common import DNS_NAME, ObjectMeta, SpecModel
from clinops.specs.status import Condition
from clinops.specs.training_job import TrainingJobSpec

# Go-style durations with days (the cooldown is hours to weeks): 6h, 1h30m, 2d.
DURATION_PATTERN = r"^([0-9]{1,7}[dhms])+$"
DURATION_UNITS = {"d": 86400, "h": 3600, "m": 60, "s": 1}
# The drift job writes windows as Flink DAY TO SECOND intervals, which carry two digits of days.
MAX_WINDOW_SECONDS = 100 * 86400 - 1
TOPIC_PATTERN = r"^[A-Za-z0-9._-]+$"
# Where Flink keeps checkpoints and savepoints: a filesystem Flink has a plugin for.
STATE_DIR_PATTERN = r"^(s3|s3a|s3p|file|hdfs|gs|abfss?)://\S+$"
FEATURE_PATTERN = r"^[^,\s][^,]*$"


def duration_seconds(text: str) -> int:
    """Seconds of a duration such as ``1h30m``; ``ValueError`` unless it matches ``DURATION_PATTERN``."""
    if not re.fullmatch(DURATION_PATTERN, text):
        raise ValueError(f"not a duration like 6h, 1h30m or 2d: {text!r}")
    return sum(int(amount) * DURATION_UNITS[unit] for amount, unit in re.findall(r"([0-9]+)([dhms])", text))


class NumericalTest(StrEnum):
    """The drift job's tests of numeric features (``clinops.monitoring.drift.NUMERICAL_TESTS``)."""

    KS = "ks"
    PSI = "psi"
    WASSERSTEIN = "wasserstein"
    JSD = "jsd"


class CategoricalTest(StrEnum):
    """The drift job's tests of categorical features (``clinops.monitoring.drift.CATEGORICAL_TESTS``)."""

    CHI2 = "chi2"
    PSI = "psi"
    JSD = "jsd"


class SourceKind(StrEnum):
    KAFKA = "kafka"
    LAKE = "lake"


class SourceSpec(SpecModel):
    kind: SourceKind = Field(
        SourceKind.KAFKA, description="kafka reads the prediction log topic; lake reads bronze/<topic>/ objects."
    )
    topic: str = Field(
        "predictions",
        min_length=1,
        max_length=249,
        pattern=TOPIC_PATTERN,
        description="Prediction log topic (the deployment's predictionLog.topic), also its bronze prefix in the lake.",
    )
    results_topic: str = Field(
        "drift-results",
        min_length=1,
        max_length=249,
        pattern=TOPIC_PATTERN,
        description="Where each window's drift record is written (a topic, or drift/ in the lake).",
    )


class WindowSpec(SpecModel):
    seconds: int = Field(600, ge=1, le=MAX_WINDOW_SECONDS, description="Tumbling event-time window size, seconds.")
    lateness_seconds: int = Field(
        300, ge=0, le=MAX_WINDOW_SECONDS, description="Kafka: how far an event may trail the newest one, seconds."
    )


class NumericalStatistic(SpecModel):
    test: NumericalTest = Field(NumericalTest.KS, description="Test of numeric features: ks, psi, wasserstein, jsd.")
    threshold: float | None = Field(
        None,
        gt=0,
        le=1000,
        description="p-value below which (ks) or distance at or above which (psi, wasserstein, jsd) a feature "
        "drifted; unset: the test's customary default.",
    )


class CategoricalStatistic(SpecModel):
    test: CategoricalTest = Field(CategoricalTest.CHI2, description="Test of categorical features: chi2, psi, jsd.")
    threshold: float | None = Field(
        None,
        gt=0,
        le=1000,
        description="p-value below which (chi2) or distance at or above which (psi, jsd) a feature drifted; "
        "unset: the test's customary default.",
    )


class StatisticsSpec(SpecModel):
    """Per-feature tests and the share of drifted features that flags a window."""

    numerical: NumericalStatistic = Field(default_factory=NumericalStatistic, description="Numeric features.")
    categorical: CategoricalStatistic = Field(default_factory=CategoricalStatistic, description="Categorical features.")
    drift_share: float = Field(0.5, gt=0, le=1, description="Share of tested features that flags a window drifted.")
    features: list[Annotated[str, Field(min_length=1, max_length=256, pattern=FEATURE_PATTERN)]] | None = Field(
        None,
        min_length=1,
        max_length=1000,
        description="Monitored features (default: every feature of the reference profile).",
    )

    @model_validator(mode="after")
    def one_threshold(self) -> StatisticsSpec:
        # The drift job takes a single --threshold for both kinds of feature.
        if self.numerical.threshold != self.categorical.threshold:
            raise ValueError(
                "numerical.threshold and categorical.threshold must be equal or both unset "
                "(the drift job applies one threshold to every feature)"
            )
        return self

    @property
    def threshold(self) -> float | None:
        return self.numerical.threshold


class TrainingJobRef(SpecModel):
    name: str = Field(max_length=253, pattern=DNS_NAME, description="A TrainingJob in the same namespace.")


class RetrainSpec(SpecModel):
    """Exactly one of trainingJobRef or template: clone an existing TrainingJob's spec, or use this one."""

    training_job_ref: TrainingJobRef | None = Field(None, description="TrainingJob whose spec a retraining copies.")
    template: TrainingJobSpec | None = Field(None, description="Spec of the retraining TrainingJob.")
    cooldown: str = Field(
        "6h",
        max_length=32,
        pattern=DURATION_PATTERN,
        description="Least time between two retrainings started by this monitor (e.g. 6h, 1h30m, 2d).",
    )

    @model_validator(mode="after")
    def ref_or_template(self) -> RetrainSpec:
        if (self.training_job_ref is None) == (self.template is None):
            raise ValueError("set exactly one of trainingJobRef or template")
        return self

    @property
    def cooldown_seconds(self) -> int:
        return duration_seconds(self.cooldown)


class ActionSpec(SpecModel):
    retrain: RetrainSpec | None = Field(None, description="Start a TrainingJob when drift persists.")


class FlinkSpec(SpecModel):
    image: str | None = Field(
        None, min_length=1, max_length=512, description="Image of the Flink drift job (default: the platform's)."
    )
    parallelism: int = Field(2, ge=1, le=256, description="Parallelism of every operator of the job.")
    checkpoint_interval_seconds: float = Field(10.0, gt=0, le=3600, description="Seconds between checkpoints.")
    checkpoint_dir: str | None = Field(
        None,
        max_length=1024,
        pattern=STATE_DIR_PATTERN,
        description="Checkpoint directory, e.g. s3://clinops-flink/checkpoints (default: the platform's).",
    )
    savepoint_dir: str | None = Field(
        None,
        max_length=1024,
        pattern=STATE_DIR_PATTERN,
        description="Savepoint directory for upgrades (default: the platform's).",
    )
    config: dict[str, str] = Field(
        default_factory=dict, max_length=64, description="Extra Flink configuration (key: value)."
    )


class DriftMonitorSpec(SpecModel):
    deployment: str = Field(
        max_length=253, pattern=DNS_NAME, description="The ModelDeployment in the same namespace to watch."
    )
    source: SourceSpec = Field(default_factory=SourceSpec, description="Where the prediction log is read.")
    window: WindowSpec = Field(default_factory=WindowSpec, description="Event-time windows drift is computed over.")
    statistics: StatisticsSpec = Field(default_factory=StatisticsSpec, description="Drift tests and thresholds.")
    persistence: int = Field(
        3, ge=1, le=1000, description="Consecutive drifted windows that count as persistent drift."
    )
    action: ActionSpec = Field(default_factory=ActionSpec, description="What persistent drift triggers.")
    flink: FlinkSpec = Field(default_factory=FlinkSpec, description="The Flink job that computes drift.")

    def job_arguments(self, *, profile: str, lake: str | None, bootstrap: str | None) -> list[str]:
        """Arguments of ``python -m clinops.streaming.flink drift``; the lake and the broker are the platform's."""
        stats = self.statistics
        arguments = [
            "drift",
            f"--profile={profile}",
            f"--deployment={self.deployment}",
            f"--source={'kafka' if self.source.kind is SourceKind.KAFKA else 'files'}",
            f"--topic={self.source.topic}",
            f"--results-topic={self.source.results_topic}",
            f"--window-seconds={self.window.seconds}",
            f"--lateness={self.window.lateness_seconds}",
            f"--numerical-test={stats.numerical.test.value}",
            f"--categorical-test={stats.categorical.test.value}",
            f"--drift-share={stats.drift_share!r}",
            f"--parallelism={self.flink.parallelism}",
            f"--checkpoint-interval={self.flink.checkpoint_interval_seconds!r}",
        ]
        if lake is not None:
            arguments.append(f"--lake={lake}")
        if bootstrap is not None:
            arguments.append(f"--bootstrap={bootstrap}")
        if stats.threshold is not None:
            arguments.append(f"--threshold={stats.threshold!r}")
        if stats.features:
            arguments.append(f"--features={','.join(stats.features)}")
        arguments.extend(f"--set={key}={value}" for key, value in self.flink.config.items())
        return arguments


class DriftPhase(StrEnum):
    PENDING = "Pending"
    RUNNING = "Running"
    DRIFTED = "Drifted"
    RETRAINING = "Retraining"
    FAILED = "Failed"


class WindowStatus(SpecModel):
    start: str | None = Field(None, max_length=64, description="Window start (RFC 3339).")
    end: str = Field(max_length=64, description="Window end (RFC 3339).")
    rows: int | None = Field(None, ge=0, description="Predictions in the window.")
    drift_share: float = Field(ge=0, le=1, description="Share of tested features that drifted.")
    drifted: bool = Field(description="Whether the share reached statistics.driftShare.")
    drifted_features: list[str] = Field(
        default_factory=list, max_length=1000, description="Features that drifted in the window."
    )


class RetrainingStatus(SpecModel):
    name: str = Field(max_length=253, pattern=DNS_NAME, description="The TrainingJob the monitor created.")
    started_at: str = Field(max_length=64, description="When it was created (RFC 3339).")
    window_end: str | None = Field(None, max_length=64, description="End of the window that triggered it.")


class DriftMonitorStatus(SpecModel):
    phase: DriftPhase | None = Field(None, description="Pending, Running, Drifted, Retraining or Failed.")
    flink_job: str | None = Field(None, max_length=253, description="Name of the FlinkDeployment running the job.")
    job_state: str | None = Field(None, max_length=64, description="The Flink job's state as its operator reports it.")
    model: str | None = Field(None, max_length=253, description="The registered model the deployment serves.")
    model_version: str | None = Field(
        None, max_length=32, description="The version whose reference profile the job compares against."
    )
    last_window: WindowStatus | None = Field(None, description="The newest window's drift.")
    drifted_windows: int | None = Field(None, ge=0, description="Consecutive drifted windows up to lastWindow.")
    last_retraining: RetrainingStatus | None = Field(None, description="The newest retraining this monitor started.")
    retrainings: int | None = Field(None, ge=0, description="Retrainings this monitor started in total.")
    conditions: list[Condition] = Field(default_factory=list, max_length=32, description="Standard conditions.")
    observed_generation: int | None = Field(None, ge=0, description="The generation this status describes.")


class DriftMonitor(SpecModel):
    api_version: Literal["clinops.io/v1alpha1"] = Field("clinops.io/v1alpha1", description="API version.")
    kind: Literal["DriftMonitor"] = Field("DriftMonitor", description="Kind.")
    metadata: ObjectMeta = Field(description="Object metadata.")
    spec: DriftMonitorSpec = Field(description="Desired monitoring.")
    status: DriftMonitorStatus | None = Field(None, description="Observed state, written by the operator.")
