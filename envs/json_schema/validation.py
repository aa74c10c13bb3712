"""JSON Schema validation with format checking, cached per schema.

The dialect is the schema's ``$schema`` (Draft 2020-12 when absent or unknown). Formats are
asserted, with stricter checkers than ``jsonschema``'s defaults for the ones the generated tasks
use: ``date`` (``YYYY-MM-DD``, a real calendar day), ``date-time`` and ``time`` (RFC 3339, with a
time zone) and ``email`` (``local@domain.tld``, no spaces). ``uniqueItems`` is checked in linear
time (``jsonschema``'s own check is quadratic on arrays of objects).
"""

from __future__ import annotations

import datetime as dt
import functools
import itertools
import json
import re
from typing import Any, Iterator

from jsonschema import Draft202012Validator, FormatChecker, ValidationError
from jsonschema.exceptions import SchemaError
from jsonschema.validators import extend, validator_for

_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_TIME = r"[0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]+)?(?:[Zz]|[+-][0-9]{2}:[0-9]{2})"
_DATE_TIME = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt]" + _TIME)
_FULL_TIME = re.compile(_TIME)
_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_EMAIL = re.compile(rf"{_ATOM}(?:\.{_ATOM})*@{_LABEL}(?:\.{_LABEL})+")


def is_date(value: object) -> bool:
    if not isinstance(value, str):
        return True
    if not _DATE.fullmatch(value):
        return False
    try:
        dt.date.fromisoformat(value)
    except ValueError:
        return False
    return True


def parse_date_time(value: str) -> dt.datetime | None:
    """An RFC 3339 date-time as an aware ``datetime``, or ``None``."""
    if not _DATE_TIME.fullmatch(value):
        return None
    try:
        return dt.datetime.fromisoformat(value.upper().replace("Z", "+00:00"))
    except ValueError:
        return None


def is_date_time(value: object) -> bool:
    return not isinstance(value, str) or parse_date_time(value) is not None


def is_time(value: object) -> bool:
    if not isinstance(value, str):
        return True
    if not _FULL_TIME.fullmatch(value):
        return False
    try:
        dt.time.fromisoformat(value.upper().replace("Z", "+00:00"))
    except ValueError:
        return False
    return True


def is_email(value: object) -> bool:
    return not isinstance(value, str) or (len(value) <= 254 and bool(_EMAIL.fullmatch(value)))


def _format_checker() -> FormatChecker:
    checker = FormatChecker(Draft202012Validator.FORMAT_CHECKER.checkers)
    for name, check in (("date", is_date), ("date-time", is_date_time), ("time", is_time), ("email", is_email)):
        checker.checks(name)(check)
    return checker


FORMAT_CHECKER = _format_checker()


def _canonical(value: Any) -> Any:
    """A hashable form with JSON equality: 1 == 1.0, but true != 1 and key order is ignored."""
    if isinstance(value, bool):
        return ("bool", value)
    if isinstance(value, dict):
        return ("object", frozenset((key, _canonical(item)) for key, item in value.items()))
    if isinstance(value, list):
        return ("array", tuple(_canonical(item) for item in value))
    return ("scalar", value)


def _unique_items(validator: Any, unique: Any, instance: Any, schema: Any) -> Iterator[ValidationError]:
    if not unique or not validator.is_type(instance, "array"):
        return
    seen: set = set()
    for index, item in enumerate(instance):
        key = _canonical(item)
        if key in seen:
            yield ValidationError(f"array items are not unique (item {index} repeats an earlier item)")
            return
        seen.add(key)


@functools.lru_cache(maxsize=None)
def _fast_class(base: type) -> type:
    return extend(base, {"uniqueItems": _unique_items})


@functools.lru_cache(maxsize=512)
def _validator_from_key(key: str) -> Any:
    schema = json.loads(key)
    base = validator_for(schema, default=Draft202012Validator)
    base.check_schema(schema)
    return _fast_class(base)(schema, format_checker=FORMAT_CHECKER)


def schema_key(schema: Any) -> str:
    """The cache key of a schema (its JSON text)."""
    try:
        return json.dumps(schema, sort_keys=True, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise SchemaError(f"the schema is not JSON-serializable: {exc}") from None


def get_validator(schema: Any) -> Any:
    """A (cached) validator for ``schema``; raises ``jsonschema.SchemaError`` if it is invalid."""
    return _validator_from_key(schema_key(schema))


def json_path(parts: Any) -> str:
    """A JSON Pointer for a path of keys and indices (``/items/0/name``; ``/`` for the root)."""
    text = "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in parts)
    return text or "/"


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def validation_errors(value: Any, schema: Any, limit: int = 3) -> list[str]:
    """Up to ``limit`` readable validation errors (``"<pointer>: <message>"``); ``[]`` if valid.

    When there are more errors than ``limit``, the list ends with ``"..."``.
    """
    errors = list(itertools.islice(get_validator(schema).iter_errors(value), limit + 1))
    shown = [f"{json_path(e.absolute_path)}: {_clip(e.message, 160)}" for e in errors[:limit]]
    return shown + (["..."] if len(errors) > limit else [])
