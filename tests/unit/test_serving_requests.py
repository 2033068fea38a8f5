"""Request parsing: the fast path agrees with the pydantic schema on every input; V2 layouts; canary routing."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from clinops.serving.model import Feature
from clinops.serving.routing import BUCKETS, CANARY, PRIMARY, Routing, bucket
from clinops.serving.schema import PredictSchema, RequestError
from clinops.serving.v2 import parse_infer

FEATURES = (Feature("age", "long", True), Feature("heart_rate", "double", True), Feature("lactate", "double", False))
SCHEMA = PredictSchema(FEATURES, "patient_id")


def parse(body: Any) -> Any:
    # The standard library writes integers of any size, as a client might.
    return SCHEMA.parse(json.dumps(body).encode())


def errors(body: Any) -> list[dict[str, Any]]:
    with pytest.raises(RequestError) as caught:
        parse(body)
    return caught.value.errors


def test_a_single_instance_becomes_one_row_in_feature_order_with_missing_as_nan() -> None:
    rows = parse({"patient_id": "p-1", "features": {"heart_rate": 88.5, "age": 71}})
    assert rows.single
    assert rows.keys == ["p-1"]
    np.testing.assert_array_equal(rows.X, [[71.0, 88.5, np.nan]])


def test_a_batch_keeps_each_instance_key() -> None:
    body = {"instances": [{"features": {"age": 1, "heart_rate": 2, "lactate": 3}}, {"patient_id": "b", **F}]}
    rows = parse(body)
    assert not rows.single
    assert rows.keys == [None, "b"]
    np.testing.assert_array_equal(rows.X, [[1, 2, 3], [70, 80, np.nan]])


F = {"features": {"age": 70, "heart_rate": 80}}


@pytest.mark.parametrize(
    ("body", "loc", "kind"),
    [
        ({"features": {"age": 70}}, ["body", "features", "heart_rate"], "missing"),
        ({"features": {"age": 70, "heart_rate": None}}, ["body", "features", "heart_rate"], "float_type"),
        ({"features": {"age": "70", "heart_rate": 80}}, ["body", "features", "age"], "float_type"),
        ({"features": {"age": True, "heart_rate": 80}}, ["body", "features", "age"], "float_type"),
        ({"features": {"age": 70, "heart_rate": 80, "bmi": 22}}, ["body", "features", "bmi"], "extra_forbidden"),
        ({**F, "mrn": "123"}, ["body", "mrn"], "extra_forbidden"),
        ({**F, "patient_id": 5}, ["body", "patient_id"], "string_type"),
        ({"instances": []}, ["body", "instances"], "too_short"),
        ({"instances": [F, {"features": {}}]}, ["body", "instances", 1, "features", "age"], "missing"),
    ],
)
def test_invalid_bodies_name_the_field(body: Any, loc: list[Any], kind: str) -> None:
    first = errors(body)[0]
    assert (first["loc"], first["type"]) == (loc, kind)


def test_malformed_json_and_non_objects_are_errors_too() -> None:
    with pytest.raises(RequestError, match="Invalid JSON"):
        SCHEMA.parse(b"{")
    assert errors([1, 2])[0]["type"] == "dict_type"
    with pytest.raises(RequestError, match="finite number"):
        SCHEMA.parse(b'{"features": {"age": 1e999, "heart_rate": 1}}')


def test_the_openapi_schema_lists_features_and_marks_the_optional_ones() -> None:
    single, batch = SCHEMA.json_schema()["oneOf"]
    assert "instances" in batch["properties"]
    features = single["$defs"]["Features"] if "$defs" in single else single["properties"]["features"]
    assert set(features["required"]) == {"age", "heart_rate"}
    assert features["additionalProperties"] is False


JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=6,
)
ANY_VALUE = (
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=3)
)
NUMBER = st.integers(-(2**70), 2**70) | st.floats(allow_nan=False, allow_infinity=False)
# Mostly well-formed, so both paths see many valid bodies as well as every kind of invalid one.
FEATURE = NUMBER | NUMBER | NUMBER | ANY_VALUE
INSTANCES = st.fixed_dictionaries(
    {
        "features": st.fixed_dictionaries(
            {"age": FEATURE, "heart_rate": FEATURE}, optional={"lactate": FEATURE | st.none()}
        )
        | st.dictionaries(st.text(max_size=3), ANY_VALUE, max_size=3)
    },
    optional={"patient_id": st.text(min_size=1, max_size=4) | st.text(max_size=300) | st.integers()},
) | st.fixed_dictionaries({"features": JSON_VALUES, "other": JSON_VALUES})
BODIES = INSTANCES | st.fixed_dictionaries({"instances": st.lists(INSTANCES, max_size=3)}) | JSON_VALUES


def _is_number(value: Any) -> bool:
    return type(value) in (int, float)


def _valid_instance(instance: Any) -> bool:
    """What the contract says, written independently of pydantic."""
    if not isinstance(instance, dict) or "features" not in instance or set(instance) - {"features", "patient_id"}:
        return False
    key = instance.get("patient_id", "k")
    features = instance["features"]
    if not (isinstance(key, str) and 0 < len(key) <= 256) or not isinstance(features, dict):
        return False
    if set(features) - {f.name for f in FEATURES}:
        return False
    for f in FEATURES:
        value = features.get(f.name)
        if f.required and (f.name not in features or not _is_number(value)):
            return False
        if not f.required and value is not None and not _is_number(value):
            return False
    return True


def _expected(body: Any) -> list[Any] | None:
    if not isinstance(body, dict):
        return None
    if "instances" in body:
        instances = body["instances"]
        ok = set(body) == {"instances"} and isinstance(instances, list) and len(instances) > 0
        return instances if ok and all(_valid_instance(i) for i in instances) else None
    return [body] if _valid_instance(body) else None


@settings(max_examples=400, deadline=None)
@given(BODIES)
def test_every_body_is_either_the_matrix_the_contract_implies_or_a_field_error(body: Any) -> None:
    body = orjson.loads(json.dumps(body))  # what the server sees: integers past 64 bits arrive as floats
    expected = _expected(body)
    if expected is None:
        with pytest.raises(RequestError) as caught:
            parse(body)
        assert all(e["loc"][0] == "body" and e["msg"] for e in caught.value.errors)
        return
    rows = parse(body)
    matrix = [[i["features"].get(f.name) for f in FEATURES] for i in expected]
    np.testing.assert_array_equal(rows.X, np.array(matrix, dtype=np.float64))
    assert rows.keys == [i.get("patient_id") for i in expected]


def v2_body(**extra: Any) -> bytes:
    return orjson.dumps(
        {"inputs": [{"name": "m", "shape": [2, 3], "datatype": "FP32", "data": [1, 2, 3, 4, 5, None]}], **extra}
    )


def test_v2_accepts_a_matrix_and_per_feature_inputs_with_the_same_rows() -> None:
    _, matrix = parse_infer(v2_body(), FEATURES, "patient_id")
    columns = orjson.dumps(
        {
            "inputs": [
                {"name": "heart_rate", "shape": [2, 1], "datatype": "FP64", "data": [[2], [5]]},
                {"name": "age", "shape": [2], "datatype": "INT64", "data": [1, 4]},
                {"name": "lactate", "shape": [2], "datatype": "FP64", "data": [3, None]},
                {"name": "patient_id", "shape": [2], "datatype": "BYTES", "data": ["a", "b"]},
            ]
        }
    )
    _, by_column = parse_infer(columns, FEATURES, "patient_id")
    np.testing.assert_array_equal(matrix.X, by_column.X)
    assert by_column.keys == ["a", "b"]
    _, shared = parse_infer(v2_body(parameters={"patient_id": "p"}), FEATURES, "patient_id")
    assert shared.keys == ["p", "p"]


@pytest.mark.parametrize(
    ("inputs", "message"),
    [
        ([{"name": "age", "shape": [1], "datatype": "INT64", "data": [1]}], "missing required features"),
        ([{"name": "m", "shape": [1, 3], "datatype": "FP32", "data": [1, None, 3]}], "required feature has a missing"),
        ([{"name": "m", "shape": [2, 3], "datatype": "FP32", "data": [1, 2, 3]}], "holds 6 elements"),
        ([{"name": "m", "shape": [1, 3], "datatype": "FP32", "data": ["a", 2, 3]}], "expected numbers"),
        ([{"name": "m", "shape": [1, 3], "datatype": "BYTES", "data": [1, 2, 3]}], "must be numeric"),
        (
            [
                {"name": "age", "shape": [1], "datatype": "INT64", "data": [1]},
                {"name": "heart_rate", "shape": [2], "datatype": "FP64", "data": [1, 2]},
            ],
            "2 rows where earlier",
        ),
        ([{"name": "weight", "shape": [1], "datatype": "FP64", "data": [1]}], "unknown inputs"),
        ([{"name": "m", "shape": [1, 3], "datatype": "FP99", "data": [1, 2, 3]}], "datatype"),
    ],
)
def test_v2_errors_are_specific(inputs: list[dict[str, Any]], message: str) -> None:
    with pytest.raises(RequestError, match=message):
        parse_infer(orjson.dumps({"inputs": inputs}), FEATURES, "patient_id")


class _Model:
    def __init__(self, version: str) -> None:
        self.version = version


def test_canary_share_is_within_three_points_over_5000_keys_and_each_key_is_sticky() -> None:
    routing = Routing(primary=_Model("1"), canary=_Model("2"), canary_percent=10)  # type: ignore[arg-type]
    keys = [f"patient-{i}" for i in range(5000)]
    first = [routing.variant_for(k)[0] for k in keys]
    assert abs(first.count(CANARY) / len(keys) * 100 - 10) <= 3
    assert [routing.variant_for(k)[0] for k in keys] == first
    # Raising the share only moves keys to the canary: nobody already on it goes back.
    wider = Routing(primary=_Model("1"), canary=_Model("2"), canary_percent=30)  # type: ignore[arg-type]
    assert all(wider.variant_for(k)[0] == CANARY for k, v in zip(keys, first, strict=True) if v == CANARY)


def test_bucket_is_a_fixed_function_of_the_key() -> None:
    assert bucket("patient-1") == bucket("patient-1")
    assert 0 <= bucket("x") < BUCKETS
    assert Routing(primary=_Model("1")).variant_for("k")[0] == PRIMARY  # type: ignore[arg-type]
