"""The closed loop on the embedded default, stage by stage; each stage reports what it did for the summary."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from clinops.data.emit import EmitReport, emit_to_lake
from clinops.data.generator import Cohort, GeneratorConfig, generate
from clinops.data.oracle import OracleScore, oracle_auc
from clinops.features.offline import build_gold
from clinops.lake.silver import SilverReport, bronze_to_silver
from clinops.lake.store import Lake
from clinops.local.training import TrainingOutcome, run_training_job
from clinops.specs.training_job import TrainingJob


@dataclass(frozen=True)
class DemoResult:
    cohort: Cohort
    emitted: EmitReport
    silver: SilverReport
    gold_rows: int
    gold_features: int
    label_rate: float
    oracle: OracleScore
    training: TrainingOutcome | None = None


def run_demo(
    lake: Lake,
    config: GeneratorConfig,
    *,
    training_job: TrainingJob | None = None,
    stage: Callable[[str], None] = lambda _: None,
) -> DemoResult:
    """generate → bronze → silver (+quarantine) → gold → oracle score → TrainingJob → champion."""
    stage("Generating the synthetic cohort")
    cohort = generate(config)
    stage("Writing event streams to bronze")
    emitted = emit_to_lake(cohort, lake)
    stage("Validating bronze into silver and quarantine")
    silver = bronze_to_silver(lake)
    stage("Building the gold encounter feature table")
    gold = build_gold(lake)
    stage("Scoring the oracle on the test split")
    oracle = oracle_auc(lake)
    training = None
    if training_job is not None:
        stage(f"Running TrainingJob {training_job.metadata.name}")
        training = run_training_job(
            training_job, lake_root=lake.root, on_step=lambda step: stage(f"TrainingJob step {step}")
        )
    return DemoResult(
        cohort=cohort,
        emitted=emitted,
        silver=silver,
        gold_rows=len(gold),
        gold_features=gold.shape[1],
        label_rate=float(gold["readmitted_30d"].mean()),
        oracle=oracle,
        training=training,
    )
