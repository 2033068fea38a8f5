"""The Open Inference Protocol (V2) request and response bodies, mapped onto the served model's feature matrix.

Two input layouts are accepted, as KServe and MLServer clients send them: one tensor of shape ``[rows, features]``
in the model's feature order, or one input per feature (shape ``[rows]`` or ``[rows, 1]``), named as the model's
features. A ``BYTES`` input named as the sticky key carries one key per row; the request's ``parameters`` may
carry one key for all rows instead.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from clinops.serving.model import Feature
from clinops.serving.schema import MAX_BATCH_ROWS, Rows, error, field_errors, parse_json

NUMERIC_DATATYPES = (
    "BOOL",
    "UINT8",
    "UINT16",
    "UINT32",
    "UINT64",
    "INT8",
    "INT16",
    "INT32",
    "INT64",
    "FP16",
    "FP32",
    "FP64",
)
Datatype = Literal[
    "BOOL", "UINT8", "UINT16", "UINT32", "UINT64", "INT8", "INT16", "INT32", "INT64", "FP16", "FP32", "FP64", "BYTES"
]


class InferInput(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, description="Tensor name: a feature, the sticky key, or any name for the matrix.")
    shape: list[int] = Field(min_length=1, max_length=2, description="[rows] or [rows, columns].")
    datatype: Datatype = Field(description="Element type.")
    parameters: dict[str, Any] | None = Field(None, description="Per-input parameters (unused).")
    data: list[Any] = Field(description="Row-major elements, flat or nested; null marks a missing value.")


class InferRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str | None = Field(None, max_length=256, description="Request id, echoed in the response.")
    parameters: dict[str, Any] | None = Field(None, description="May carry the sticky key for every row.")
    inputs: list[InferInput] = Field(min_length=1, description="The feature matrix, or one input per feature.")
    outputs: list[dict[str, Any]] | None = Field(None, description="Requested outputs (all are always returned).")


def _flat(values: list[Any]) -> list[Any]:
    if values and isinstance(values[0], list):
        return [v for row in values for v in (row if isinstance(row, list) else [row])]
    return values


def _numbers(values: list[Any], loc: list[str | int]) -> np.ndarray[Any, np.dtype[np.float64]]:
    if not all(type(v) in (float, int, bool) or v is None for v in values):
        raise error(loc, "expected numbers (or null for a missing value)", "float_type")
    return np.array(values, dtype=np.float64)


def parse_infer(body: bytes, features: tuple[Feature, ...], sticky_key: str) -> tuple[InferRequest, Rows]:
    try:
        request = InferRequest.model_validate(parse_json(body))
    except ValidationError as exc:
        raise field_errors(exc) from exc
    names = [f.name for f in features]
    by_name = {i.name: (n, i) for n, i in enumerate(request.inputs)}
    key_input = by_name.pop(sticky_key, None)
    columns = [i for i in request.inputs if key_input is None or i is not key_input[1]]
    if len(columns) == 1 and len(columns[0].shape) == 2 and columns[0].shape[1] == len(names) > 1:
        X = _matrix(columns[0], request.inputs.index(columns[0]), len(names))
    else:
        X = _columns(by_name, features)
    rows = X.shape[0]
    if not 0 < rows <= MAX_BATCH_ROWS:
        raise error(["inputs"], f"expected between 1 and {MAX_BATCH_ROWS} rows, got {rows}")
    required = [j for j, f in enumerate(features) if f.required]
    missing = np.isnan(X[:, required]).any(axis=0) if required else np.zeros(0, dtype=bool)
    if missing.any():
        first = features[required[int(np.argmax(missing))]].name
        raise error(["inputs", first], "required feature has a missing value", "missing")
    keys = _keys(request, key_input, rows, sticky_key)
    return request, Rows(X=X, keys=keys, single=False)


def _matrix(tensor: InferInput, index: int, width: int) -> np.ndarray[Any, np.dtype[np.float64]]:
    loc: list[str | int] = ["inputs", index, "data"]
    if tensor.datatype not in NUMERIC_DATATYPES:
        raise error(["inputs", index, "datatype"], "the feature matrix must be numeric")
    values = _numbers(_flat(tensor.data), loc)
    if values.size != tensor.shape[0] * width:
        raise error(loc, f"shape {tensor.shape} holds {tensor.shape[0] * width} elements, data has {values.size}")
    return values.reshape(tensor.shape[0], width)


def _columns(by_name: dict[str, tuple[int, InferInput]], features: tuple[Feature, ...]) -> np.ndarray[Any, Any]:
    unknown = sorted(set(by_name) - {f.name for f in features})
    if unknown:
        raise error(["inputs"], f"unknown inputs {unknown[:5]}: the model's features are listed in its metadata")
    absent = [f.name for f in features if f.required and f.name not in by_name]
    if absent:
        raise error(["inputs"], f"missing required features {absent[:5]}", "missing")
    rows: int | None = None
    X: np.ndarray[Any, Any] | None = None
    for j, feature in enumerate(features):
        if feature.name not in by_name:
            continue
        index, column = by_name[feature.name]
        loc: list[str | int] = ["inputs", index]
        if column.datatype not in NUMERIC_DATATYPES:
            raise error([*loc, "datatype"], f"feature {feature.name} must be numeric")
        if len(column.shape) == 2 and column.shape[1] != 1:
            raise error([*loc, "shape"], "a feature input has shape [rows] or [rows, 1]")
        values = _numbers(_flat(column.data), [*loc, "data"])
        if values.size != column.shape[0]:
            raise error(
                [*loc, "data"], f"shape {column.shape} holds {column.shape[0]} elements, data has {values.size}"
            )
        if rows is None:
            rows = values.size
            X = np.full((rows, len(features)), np.nan)
        elif values.size != rows:
            raise error([*loc, "shape"], f"{values.size} rows where earlier inputs have {rows}")
        assert X is not None
        X[:, j] = values
    if X is None:
        raise error(["inputs"], "no feature inputs", "missing")
    return X


def _keys(request: InferRequest, key_input: tuple[int, InferInput] | None, rows: int, name: str) -> list[str | None]:
    if key_input is not None:
        index, tensor = key_input
        keys = _flat(tensor.data)
        if tensor.datatype != "BYTES" or len(keys) != rows or not all(isinstance(k, str) and k for k in keys):
            raise error(["inputs", index], f"{name} must be a BYTES input with one non-empty string per row")
        return list(keys)
    shared = (request.parameters or {}).get(name)
    if shared is not None and not (isinstance(shared, str) and shared):
        raise error(["parameters", name], "the sticky key must be a non-empty string")
    return [shared] * rows


def infer_response(
    *,
    model_name: str,
    request_id: str,
    versions: list[str],
    variants: list[str],
    scores: list[float],
    labels: list[int],
) -> dict[str, Any]:
    rows = len(scores)
    uniform = len(set(versions)) == 1
    return {
        "model_name": model_name,
        "model_version": versions[0] if uniform else "mixed",
        "id": request_id,
        "outputs": [
            {"name": "score", "datatype": "FP64", "shape": [rows], "data": scores},
            {"name": "label", "datatype": "INT64", "shape": [rows], "data": labels},
            {"name": "variant", "datatype": "BYTES", "shape": [rows], "data": variants},
            {"name": "model_version", "datatype": "BYTES", "shape": [rows], "data": versions},
        ],
    }


def model_metadata(name: str, versions: list[str], features: tuple[Feature, ...], sticky_key: str) -> dict[str, Any]:
    datatype = {"double": "FP64", "float": "FP32", "long": "INT64", "integer": "INT32", "boolean": "BOOL"}
    return {
        "name": name,
        "versions": versions,
        "platform": "clinops-xgboost-sklearn",
        "inputs": [
            *({"name": f.name, "datatype": datatype[f.type], "shape": [-1]} for f in features),
            {"name": sticky_key, "datatype": "BYTES", "shape": [-1], "optional": True},
        ],
        "outputs": [
            {"name": "score", "datatype": "FP64", "shape": [-1]},
            {"name": "label", "datatype": "INT64", "shape": [-1]},
            {"name": "variant", "datatype": "BYTES", "shape": [-1]},
            {"name": "model_version", "datatype": "BYTES", "shape": [-1]},
        ],
    }
