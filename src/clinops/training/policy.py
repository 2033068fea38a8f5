"""The promotion decision: gates first, then a margin over the current champion on the same held-out data."""

from __future__ import annotations

from dataclasses import dataclass

from clinops.specs.training_job import Metric, PromotionSpec


@dataclass(frozen=True)
class PromotionDecision:
    promote: bool
    reason: str
    candidate: float
    champion: float | None = None
    failed_gates: tuple[str, ...] = ()


def failed_gates(candidate: dict[str, float], gates: dict[Metric, float]) -> list[str]:
    failures = []
    for metric, bound in gates.items():
        value = candidate.get(metric.value)
        if value is None:
            failures.append(f"{metric.value} not measured (gate {bound})")
        elif metric.higher_is_better and value < bound:
            failures.append(f"{metric.value} {value:.4f} < {bound}")
        elif not metric.higher_is_better and value > bound:
            failures.append(f"{metric.value} {value:.4f} > {bound}")
    return failures


def decide(
    candidate: dict[str, float],
    champion: float | None,
    policy: PromotionSpec,
    metric: Metric,
    *,
    champion_problem: str | None = None,
) -> PromotionDecision:
    """Promote only a candidate that passes every gate and beats the champion by ``min_improvement``.

    ``champion`` is the current champion's ``metric`` on the candidate's test split (None: there is none);
    ``champion_problem`` says why a champion exists but could not be scored, which blocks automatic promotion.
    """
    value = candidate[metric.value]
    failures = failed_gates(candidate, policy.gates)
    if failures:
        return PromotionDecision(False, "failed gates: " + "; ".join(failures), value, champion, tuple(failures))
    if champion_problem is not None:
        return PromotionDecision(False, f"current {policy.alias} could not be compared: {champion_problem}", value)
    if champion is None:
        return PromotionDecision(True, f"passed gates and no {policy.alias} exists yet", value)
    improvement = value - champion if metric.higher_is_better else champion - value
    if improvement >= policy.min_improvement:
        return PromotionDecision(
            True,
            f"{metric.value} {value:.4f} beats {policy.alias} {champion:.4f} by {improvement:.4f} "
            f"(>= {policy.min_improvement})",
            value,
            champion,
        )
    return PromotionDecision(
        False,
        f"{metric.value} {value:.4f} vs {policy.alias} {champion:.4f}: improvement {improvement:.4f} "
        f"< {policy.min_improvement}",
        value,
        champion,
    )
