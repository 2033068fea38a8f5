"""The demo's closing summary: records per layer, event mix, quarantine reasons, labels and the oracle."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from clinops.data.schemas import TOPIC_BY_EVENT_TYPE
from clinops.demo import DemoResult
from clinops.lake.store import Lake


def render_summary(console: Console, result: DemoResult, lake: Lake) -> None:
    emitted = result.emitted.records
    total = sum(emitted.values())
    mix = Table("topic", "bronze records (as sent)", "share of generated events", title="event mix")
    for kind, topic in TOPIC_BY_EVENT_TYPE.items():
        clean = len(result.cohort.events[kind])
        mix.add_row(topic, f"{emitted.get(topic, 0):,}", f"{100 * clean / result.cohort.event_count:.1f} %")
    console.print(mix)

    layers = Table("layer", "records", title=f"lake at {lake.uri()}")
    layers.add_row("bronze", f"{total:,}")
    layers.add_row("silver (valid)", f"{sum(r.valid for r in result.silver.entities.values()):,}")
    layers.add_row("quarantine", f"{result.silver.quarantined + result.emitted.quarantined_at_ingest:,}")
    layers.add_row("transport replays dropped", f"{sum(r.replayed for r in result.silver.entities.values()):,}")
    layers.add_row("gold encounters", f"{result.gold_rows:,} × {result.gold_features} columns")
    console.print(layers)

    reasons = Table("quarantine reason", "records", title="quarantine reasons")
    for reason, count in result.silver.reason_totals().items():
        reasons.add_row(reason, f"{count:,}")
    console.print(reasons)

    oracle = result.oracle
    if result.training is not None:
        trained = result.training
        auc = trained.test_metrics.get("roc_auc", float("nan"))
        training = Table("", "", title="training", show_header=False)
        training.add_row("best algorithm", str(trained.best.get("algorithm")))
        training.add_row("registered", f"version {trained.version}")
        training.add_row("test ROC AUC", f"{auc:.3f}")
        training.add_row("oracle ROC AUC", f"{oracle.auc:.3f}")
        training.add_row("model / oracle", f"{auc / oracle.auc:.3f}")
        decision = trained.decision
        outcome = "promoted to @" if decision["promote"] else "not promoted to @"
        training.add_row("decision", outcome + decision["alias"])
        training.add_row("reason", decision["reason"])
        console.print(training)
    console.print(
        f"30-day readmission rate {100 * result.label_rate:.1f} % · "
        f"oracle AUC {oracle.auc:.3f} on {oracle.test_encounters:,} held-out encounters "
        f"(patient-grouped 20 % split, seed 7): the ceiling any model is judged against."
    )
