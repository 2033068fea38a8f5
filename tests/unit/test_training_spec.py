from __future__ import annotations

from pathlib import Path

import pytest
from ray import tune

from clinops.errors import ClinopsError
from clinops.specs.common import load_resource, parse_resource
from clinops.specs.training_job import Algorithm, ParameterRange, TrainingJob
from clinops.training.algorithms import DEFAULT_SEARCH_SPACES, search_space

SAMPLE = Path(__file__).parents[2] / "manifests" / "samples" / "training-job.yaml"


def job(**spec) -> dict:
    base = {"model": {"name": "m"}, "dataset": {"uri": "lake://gold/encounters/", "target": "readmitted_30d"}}
    return {
        "apiVersion": "clinops.io/v1alpha1",
        "kind": "TrainingJob",
        "metadata": {"name": "j"},
        "spec": {**base, **spec},
    }


def test_sample_is_valid_and_camel_case() -> None:
    loaded = load_resource(TrainingJob, SAMPLE)
    assert loaded.spec.tuning.max_concurrent_trials == 2
    assert loaded.spec.promotion.gates
    assert loaded.spec.dataset.test_fraction == 0.2
    dumped = loaded.model_dump(by_alias=True)
    assert "maxConcurrentTrials" in dumped["spec"]["tuning"]
    assert dumped["spec"]["tuning"]["search"] == "tpe"


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"algorithms": ["deep_magic"]}, "spec.algorithms.0"),
        ({"algorithms": []}, "spec.algorithms"),
        ({"algorithms": ["xgboost", "xgboost"]}, "must not repeat"),
        ({"tuning": {"trials": 0}}, "spec.tuning.trials"),
        ({"tuning": {"maxConcurrentTrails": 2}}, "maxConcurrentTrails"),
        ({"tuning": {"metric": "accuracy"}}, "spec.tuning.metric"),
        ({"tuning": {"search": "bayes"}}, "spec.tuning.search"),
        ({"schedule": "every sunday"}, "5-field cron"),
        ({"promotion": {"gates": {"roc_auc": 0.7, "f1": 0.5}}}, "spec.promotion.gates"),
        (
            {"tuning": {"searchSpace": {"random_forest": {"max_depth": {"type": "int", "low": 2, "high": 4}}}}},
            "not in algorithms",
        ),
        (
            {"tuning": {"searchSpace": {"xgboost": {"eta": {"type": "loguniform", "low": 0, "high": 1}}}}},
            "loguniform needs low > 0",
        ),
        ({"tuning": {"searchSpace": {"xgboost": {"eta": {"type": "choice"}}}}}, "non-empty values"),
    ],
)
def test_invalid_specs_name_the_field(spec, message) -> None:
    with pytest.raises(ClinopsError, match=message):
        parse_resource(TrainingJob, job(**spec))


def test_missing_file_and_bad_yaml(tmp_path) -> None:
    with pytest.raises(ClinopsError, match="no such file"):
        load_resource(TrainingJob, tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("spec: [unclosed")
    with pytest.raises(ClinopsError, match="not valid YAML"):
        load_resource(TrainingJob, bad)


def test_search_space_overrides_replace_and_add() -> None:
    overrides = {
        "max_depth": ParameterRange(type="choice", values=[3, 5]),
        "gamma": ParameterRange(type="uniform", low=0, high=1),
    }
    space = search_space(Algorithm.XGBOOST, overrides)
    assert set(space) == set(DEFAULT_SEARCH_SPACES[Algorithm.XGBOOST]) | {"gamma"}
    assert isinstance(space["max_depth"], tune.search.sample.Categorical)
    assert space["max_depth"].categories == [3, 5]
    n_estimators = space["n_estimators"]
    assert isinstance(n_estimators, tune.search.sample.Integer)
    assert (n_estimators.lower, n_estimators.upper) == (100, 601)  # inclusive high
    assert isinstance(space["learning_rate"].get_sampler(), tune.search.sample.Float._LogUniform)
