from __future__ import annotations

import pytest

from clinops.specs.training_job import Metric, PromotionSpec
from clinops.training.policy import decide

POLICY = PromotionSpec(alias="champion", min_improvement=0.01, gates={Metric.ROC_AUC: 0.75, Metric.BRIER: 0.2})
GOOD = {"roc_auc": 0.85, "brier": 0.1}


def test_no_champion_and_gates_passed_promotes() -> None:
    decision = decide(GOOD, None, POLICY, Metric.ROC_AUC)
    assert decision.promote
    assert "no champion exists yet" in decision.reason


@pytest.mark.parametrize(
    ("candidate", "failure"),
    [
        ({"roc_auc": 0.70, "brier": 0.1}, "roc_auc 0.7000 < 0.75"),
        ({"roc_auc": 0.85, "brier": 0.3}, "brier 0.3000 > 0.2"),
        ({"roc_auc": 0.85}, "brier not measured"),
    ],
)
def test_a_failed_gate_blocks_promotion_even_without_champion(candidate, failure) -> None:
    decision = decide(candidate, None, POLICY, Metric.ROC_AUC)
    assert not decision.promote
    assert failure in decision.reason
    assert decision.failed_gates


def test_beating_the_champion_by_the_margin_promotes() -> None:
    decision = decide(GOOD, 0.83, POLICY, Metric.ROC_AUC)
    assert decision.promote
    assert decision.champion == 0.83
    assert "beats champion 0.8300 by 0.0200" in decision.reason


def test_a_margin_too_small_keeps_the_champion() -> None:
    decision = decide(GOOD, 0.845, POLICY, Metric.ROC_AUC)
    assert not decision.promote
    assert "improvement 0.0050 < 0.01" in decision.reason


def test_lower_is_better_metrics_compare_the_other_way() -> None:
    policy = PromotionSpec(min_improvement=0.01)
    assert decide({"brier": 0.10}, 0.12, policy, Metric.BRIER).promote
    assert not decide({"brier": 0.12}, 0.10, policy, Metric.BRIER).promote


def test_a_champion_that_cannot_be_scored_blocks_automatic_promotion() -> None:
    decision = decide(GOOD, None, POLICY, Metric.ROC_AUC, champion_problem="the test data lacks its features")
    assert not decision.promote
    assert "could not be compared" in decision.reason


def test_gates_are_checked_before_the_champion() -> None:
    decision = decide({"roc_auc": 0.7, "brier": 0.1}, 0.5, POLICY, Metric.ROC_AUC)
    assert not decision.promote
    assert decision.reason.startswith("failed gates")
