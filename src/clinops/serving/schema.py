"""Request bodies, checked against the served model's signature: a fast path for valid input, pydantic for errors.

The contract is one pydantic schema per model, derived from its signature: it produces the OpenAPI request schema
and every 422 message. Valid requests never reach it: a hand-written check that accepts a subset of what the
schema accepts (exact key sets, JSON numbers only) turns the parsed body straight into a float matrix. Anything it
does not accept is handed to pydantic, which either names each problem field by field or, for input the fast check
was too strict about, returns the validated body; so both paths agree on every input.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, NotRequired, Required

import numpy as np
import orjson
from numpy.typing import NDArray
from pydantic import ConfigDict, Field, TypeAdapter, ValidationError
from typing_extensions import TypedDict

from clinops.serving.model import Feature

# One request's rows at most: bounds memory and the event loop's time on a single request.
MAX_BATCH_ROWS = 10_000
_NUMBER = Annotated[float, Field(strict=True, allow_inf_nan=False)]
_FAST_TYPES = frozenset({float, int, type(None)})
MAX_KEY_LENGTH = 256


class RequestError(Exception):
    """A request that cannot be scored; ``errors`` are FastAPI-style field errors (``loc``, ``msg``, ``type``)."""

    def __init__(self, errors: list[dict[str, Any]]) -> None:
        super().__init__("; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in errors))
        self.errors = errors


def error(loc: list[str | int], msg: str, kind: str = "value_error") -> RequestError:
    return RequestError([{"type": kind, "loc": ["body", *loc], "msg": msg}])


@dataclass(frozen=True)
class Rows:
    """A parsed request: one feature row per instance and each instance's sticky key (None when absent)."""

    X: NDArray[np.float64]
    keys: list[str | None]
    single: bool


def _pydantic_errors(exc: ValidationError) -> RequestError:
    return RequestError(
        [{"type": e["type"], "loc": ["body", *e["loc"]], "msg": e["msg"]} for e in exc.errors(include_url=False)]
    )


def parse_json(body: bytes) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise error([], f"invalid JSON: {exc.msg}", "json_invalid") from exc


def _typed_dict(name: str, fields: dict[str, Any]) -> Any:
    """A TypedDict built at run time (its fields are the model's features) that rejects unknown keys."""
    make: Any = TypedDict
    typed = make(name, fields)
    typed.__pydantic_config__ = ConfigDict(extra="forbid", title=name)
    return typed


class PredictSchema:
    """The ``POST /predict`` body for one model.

    ``{"features": {...}, "<stickyKey>": "..."}`` for one instance, or ``{"instances": [that, ...]}`` for a batch.
    Features the model was trained to see missing may be absent or null; the rest are required numbers.
    """

    def __init__(self, features: tuple[Feature, ...], sticky_key: str) -> None:
        self.names = [f.name for f in features]
        self.sticky_key = sticky_key
        self._name_set = frozenset(self.names)
        self._required = frozenset(f.name for f in features if f.required)
        self._instance_keys = frozenset({"features", sticky_key})
        features_type = _typed_dict(
            "Features",
            {f.name: Required[_NUMBER] if f.required else NotRequired[_NUMBER | None] for f in features},
        )
        key_type = Annotated[str, Field(min_length=1, max_length=MAX_KEY_LENGTH)]
        instance_type = _typed_dict(
            "Instance", {"features": Required[features_type], sticky_key: NotRequired[key_type]}
        )
        rows = Field(min_length=1, max_length=MAX_BATCH_ROWS)
        rows_type = Annotated[list[instance_type], rows]  # type: ignore[valid-type]
        batch_type = _typed_dict("Batch", {"instances": Required[rows_type]})
        self._instance = TypeAdapter(instance_type)
        self._batch = TypeAdapter(batch_type)

    def json_schema(self) -> dict[str, Any]:
        """One instance or a batch, for the OpenAPI document."""
        return {"oneOf": [self._instance.json_schema(), self._batch.json_schema()]}

    def parse(self, body: bytes) -> Rows:
        document = parse_json(body)
        if type(document) is not dict:
            raise error([], "expected a JSON object with features, or with instances", "dict_type")
        single = "instances" not in document
        instances = [document] if single else document["instances"]
        rows = self._fast_rows(instances) if single or len(document) == 1 else None
        if rows is None:
            instances = self._validated(document, single)
            rows = self._fast_rows(instances)
            if rows is None:  # pragma: no cover - the schema accepted what the matrix cannot hold
                raise error([], "the request could not be read as numbers")
        X, keys = rows
        return Rows(X=X, keys=keys, single=single)

    def _validated(self, document: dict[str, Any], single: bool) -> list[dict[str, Any]]:
        try:
            if single:
                return [self._instance.validate_python(document)]
            return list(self._batch.validate_python(document)["instances"])
        except ValidationError as exc:
            raise _pydantic_errors(exc) from exc

    def _fast_rows(self, instances: Any) -> tuple[NDArray[np.float64], list[str | None]] | None:
        if type(instances) is not list or not 0 < len(instances) <= MAX_BATCH_ROWS:
            return None
        names, name_set, required, sticky_key = self.names, self._name_set, self._required, self.sticky_key
        values: list[list[Any]] = []
        keys: list[str | None] = []
        for instance in instances:
            if type(instance) is not dict or not instance.keys() <= self._instance_keys:
                return None
            features = instance.get("features")
            key = instance.get(sticky_key)
            if type(features) is not dict or (
                key is not None and (type(key) is not str or not 0 < len(key) <= MAX_KEY_LENGTH)
            ):
                return None
            present = features.keys()
            if not (present <= name_set and required <= present):
                return None
            row = [features.get(n) for n in names]
            if not set(map(type, row)) <= _FAST_TYPES:
                return None
            if None in row and any(features.get(n) is None for n in required):
                return None
            values.append(row)
            keys.append(key)
        try:
            X = np.array(values, dtype=np.float64)
        except OverflowError:
            return None
        return X, keys
