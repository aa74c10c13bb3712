"""Your own extraction data: rows with a ``schema`` and (optionally) the expected object.

A row is a normal rftgym row (``messages`` ending with the user's prompt) plus:

* ``schema`` - a JSON Schema object, a JSON text of one, or a path to a ``.json`` file (relative
  paths are resolved against the dataset file's folder, or the working directory for rows given
  in Python);
* ``ground_truth`` - the expected value, or absent / ``null`` to grade on schema validity alone.
  A string is parsed as JSON when the schema's top-level type is not ``string``.

Every schema is checked and every expected value must validate against its schema; problems
raise ``DatasetError`` naming the row.
"""

from __future__ import annotations

import json
import os
import weakref
from typing import Any

from jsonschema.exceptions import SchemaError

from rftgym.datasets import Dataset, DatasetError, load_dataset

from .validation import get_validator, validation_errors

_PREPARED: "weakref.WeakKeyDictionary[Dataset, Dataset]" = weakref.WeakKeyDictionary()
_FILES: dict[tuple[str, int], Any] = {}


def _strict_json(text: str) -> Any:
    def reject(name: str) -> Any:
        raise ValueError(f"{name} is not valid JSON")
    return json.loads(text, parse_constant=reject)


def load_schema(spec: Any, base_dir: str | None = None) -> Any:
    """A schema from an object, a JSON text or a ``.json`` path; raises ``DatasetError``."""
    if isinstance(spec, (dict, bool)):
        return spec
    if isinstance(spec, os.PathLike):
        spec = os.fspath(spec)
    if not isinstance(spec, str):
        raise DatasetError(f"'schema' must be a JSON Schema object or a path to a .json file, "
                           f"got {type(spec).__name__}")
    if spec.lstrip().startswith("{"):
        try:
            return _strict_json(spec)
        except ValueError as exc:
            raise DatasetError(f"'schema' is not valid JSON: {exc}") from None
    path = spec if os.path.isabs(spec) or base_dir is None else os.path.join(base_dir, spec)
    try:
        key = (os.path.abspath(path), os.stat(path).st_mtime_ns)
    except OSError:
        raise DatasetError(f"schema file not found: {path}") from None
    if key not in _FILES:
        try:
            with open(path, encoding="utf-8") as handle:
                _FILES[key] = _strict_json(handle.read())
        except (ValueError, UnicodeDecodeError) as exc:
            raise DatasetError(f"schema file {path} is not valid JSON: {exc}") from None
    return _FILES[key]


def coerce_expected(ground_truth: Any, schema: Any) -> Any:
    """The expected value of a row: a JSON string is parsed unless the schema expects a string."""
    if isinstance(ground_truth, str) and isinstance(schema, dict) and schema.get("type") != "string":
        text = ground_truth.strip()
        if text[:1] in ("{", "["):
            try:
                return _strict_json(text)
            except ValueError as exc:
                raise DatasetError(f"'ground_truth' is a string but not valid JSON: {exc}") from None
    return ground_truth


def _prepare_row(row: dict[str, Any], where: str, base_dir: str | None) -> dict[str, Any]:
    if "schema" not in row:
        raise DatasetError(f"{where}: missing 'schema' (a JSON Schema object or a path to a .json file)")
    try:
        schema = load_schema(row["schema"], base_dir)
        get_validator(schema)
        expected = coerce_expected(row.get("ground_truth"), schema)
    except DatasetError as exc:
        raise DatasetError(f"{where}: {exc}") from None
    except SchemaError as exc:
        raise DatasetError(f"{where}: 'schema' is not a valid JSON Schema: {exc.message}") from None
    if expected is not None:
        errors = validation_errors(expected, schema)
        if errors:
            raise DatasetError(f"{where}: 'ground_truth' does not validate against its schema: {errors[0]}")
    return {**row, "schema": schema, "ground_truth": expected}


def prepare_dataset(dataset: Any) -> Dataset:
    """Load and check user rows (a JSONL path, a list of rows or a ``Dataset``); cached per Dataset."""
    base_dir = None
    if isinstance(dataset, (str, os.PathLike)):
        base_dir = os.path.dirname(os.path.abspath(os.fspath(dataset)))
    source = load_dataset(dataset)
    cached = _PREPARED.get(source)
    if cached is not None:
        return cached
    if base_dir is None and os.path.exists(source.source):  # a Dataset read from a file
        base_dir = os.path.dirname(os.path.abspath(source.source))
    rows = [_prepare_row(row, f"{source.source}: row {i + 1} (task_id {source.task_id(i)!r})", base_dir)
            for i, row in enumerate(source)]
    prepared = Dataset(rows, source=source.source)
    _PREPARED[source] = prepared
    return prepared
