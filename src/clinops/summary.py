"""The demo's closing summary: records per layer, event mix, quarantine reasons, labels and the oracle."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from clinops.data.schemas import TOPIC_BY_EVENT_TYPE
from clinops.demo import DemoResult
from clinops.lake.store import Lake
from clinops.local.training import TrainingOutcome


def reasons_table(reasons: dict[str, int], *, limit: int | None = None) -> Table:
    """Quarantine reasons, most frequent first; past ``limit`` rows the rest are summed into one."""
    ordered = sorted(reasons.items(), key=lambda item: -item[1])
    table = Table("quarantine reason", "records", title="quarantine reasons")
    for reason, count in ordered[:limit]:
        table.add_row(reason, f"{count:,}")
    if limit is not None and len(ordered) > limit:
        table.add_row(f"… {len(ordered) - limit} more", f"{sum(c for _, c in ordered[limit:]):,}")
    return table


def training_table(outcome: TrainingOutcome, title: str, *, oracle_auc: float | None = None) -> Table:
    """What a TrainingJob produced: the winner, its held-out metrics (against the oracle's) and the decision."""
    table = Table("", "", title=title, show_header=False)
    table.add_row("best algorithm", str(outcome.best.get("algorithm")))
    table.add_row("best parameters", ", ".join(f"{k}={v}" for k, v in outcome.best.items() if k != "algorithm"))
    table.add_row("registered", f"version {outcome.version}")
    for name, value in sorted(outcome.test_metrics.items()):
        table.add_row(f"test {name}", f"{value:.4f}")
    if oracle_auc is not None:
        auc = outcome.test_metrics.get("roc_auc", float("nan"))
        table.add_row("oracle roc_auc", f"{oracle_auc:.4f}")
        table.add_row("model / oracle", f"{auc / oracle_auc:.3f}")
    decision = outcome.decision
    verdict = "promoted to @" if decision["promote"] else "kept as @challenger, not @"
    table.add_row("decision", verdict + decision["alias"])
    table.add_row("reason", decision["reason"])
    table.add_row("mlflow run", outcome.run_id)
    return table


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

    console.print(reasons_table(result.silver.reason_totals()))

    oracle = result.oracle
    if result.training is not None:
        console.print(training_table(result.training, "training", oracle_auc=oracle.auc))
    console.print(
        f"30-day readmission rate {100 * result.label_rate:.1f} % · "
        f"oracle AUC {oracle.auc:.3f} on {oracle.test_encounters:,} held-out encounters "
        f"(patient-grouped 20 % split, seed 7): the ceiling any model is judged against."
    )
