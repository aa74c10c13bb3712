"""Field-level credit: how many leaves of the expected object a reply got right.

A **leaf** is a string, number, boolean or null, or an empty object or array (which counts as one
leaf, so ``"tags": []`` can be right or wrong). Object members whose value is ``null`` count as
absent on both sides. The reply's leaves that match expected leaves (same path, equal under the
rules of ``scalars``) give

    precision = matched / leaves in the reply      recall = matched / expected leaves
    F1 = 2 * precision * recall / (precision + recall)

so a missing field lowers recall and an extra key or array item lowers precision.

Arrays are compared position by position, unless the array's schema has ``"x-unordered": true``
or ``"uniqueItems": true`` (``"x-unordered": false`` overrides ``uniqueItems``): then items are
paired by a maximum-weight matching on matched leaves, so order does not matter.

Schema annotations (``x-unordered``, ``x-compare``, ``x-tolerance``, ``format``, ``enum``...) are
read through local ``$ref``s (``#/$defs/...``), ``allOf``, and the ``anyOf``/``oneOf`` branch whose
``type`` admits the expected value.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Mapping

from .assignment import max_weight_matching
from .scalars import scalars_equal
from .validation import json_path

MAX_NOTES = 5
_MAX_REF_HOPS = 16
_COMPOSITION = {"$ref", "allOf", "anyOf", "oneOf"}
_JSON_TYPES = {"object": dict, "array": list, "string": str, "boolean": bool}


def count_leaves(value: Any) -> int:
    """The number of leaves in a JSON value (see the module docstring)."""
    if isinstance(value, dict):
        total = sum(count_leaves(v) for v in value.values() if v is not None)
        return total or 1
    if isinstance(value, list):
        return sum(count_leaves(v) for v in value) or 1
    return 1


def _type_admits(declared: Any, value: Any) -> bool:
    if declared is None:
        return True
    names = declared if isinstance(declared, list) else [declared]
    for name in names:
        if name == "null" and value is None:
            return True
        if name in ("number", "integer") and isinstance(value, (int, float)) and not isinstance(value, bool):
            return name == "number" or float(value).is_integer()
        if name in _JSON_TYPES and isinstance(value, _JSON_TYPES[name]):
            return True
    return False


class SchemaView:
    """Reads the annotations that apply to a value from a root schema."""

    def __init__(self, root: Any):
        self.root = root if isinstance(root, dict) else {}

    def _pointer(self, ref: str) -> Any:
        if not ref.startswith("#"):
            return {}
        node: Any = self.root
        for part in ref[1:].split("/")[1:]:
            part = part.replace("~1", "/").replace("~0", "~")
            if isinstance(node, dict) and part in node:
                node = node[part]
            elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
                node = node[int(part)]
            else:
                return {}
        return node

    def resolve(self, schema: Any, value: Any, hops: int = 0) -> dict[str, Any]:
        """The effective annotations of ``schema`` for ``value``."""
        if not isinstance(schema, dict) or hops > _MAX_REF_HOPS:
            return {}
        if not _COMPOSITION & schema.keys():
            return schema
        merged: dict[str, Any] = {}
        if isinstance(schema.get("$ref"), str):
            merged.update(self.resolve(self._pointer(schema["$ref"]), value, hops + 1))
        for part in schema.get("allOf", ()) if isinstance(schema.get("allOf"), list) else ():
            merged.update(self.resolve(part, value, hops + 1))
        for keyword in ("anyOf", "oneOf"):
            branches = schema.get(keyword)
            if isinstance(branches, list):
                for branch in branches:
                    resolved = self.resolve(branch, value, hops + 1)
                    if _type_admits(resolved.get("type"), value):
                        merged.update(resolved)
                        break
        merged.update({k: v for k, v in schema.items() if k not in _COMPOSITION})
        return merged

    @staticmethod
    def member(schema: Mapping[str, Any], key: str) -> Any:
        properties = schema.get("properties")
        if isinstance(properties, dict) and key in properties:
            return properties[key]
        patterns = schema.get("patternProperties")
        if isinstance(patterns, dict):
            for pattern, subschema in patterns.items():
                try:
                    if re.search(pattern, key):
                        return subschema
                except re.error:
                    continue
        extra = schema.get("additionalProperties")
        return extra if isinstance(extra, dict) else {}

    @staticmethod
    def item(schema: Mapping[str, Any], index: int) -> Any:
        prefix = schema.get("prefixItems")
        if isinstance(prefix, list) and index < len(prefix):
            return prefix[index]
        items = schema.get("items")
        if isinstance(items, list):  # drafts before 2020-12
            return items[index] if index < len(items) else schema.get("additionalItems", {})
        return items if isinstance(items, dict) else {}

    @staticmethod
    def unordered(schema: Mapping[str, Any]) -> bool:
        flag = schema.get("x-unordered")
        if isinstance(flag, bool):
            return flag
        return schema.get("uniqueItems") is True


@dataclass
class _Notes:
    wrong: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    extra: list[str] = field(default_factory=list)

    def add(self, kind: str, path: list) -> None:
        bucket = getattr(self, kind)
        if len(bucket) < MAX_NOTES:
            bucket.append(json_path(path))


@dataclass(frozen=True)
class FieldScores:
    """Leaf counts and precision / recall / F1 of a reply against the expected object."""

    matched: int
    predicted: int
    expected: int
    precision: float
    recall: float
    f1: float
    wrong: tuple[str, ...] = ()
    missing: tuple[str, ...] = ()
    extra: tuple[str, ...] = ()

    def summary(self) -> str:
        text = (f"field F1 {self.f1:.3f} (precision {self.precision:.3f}, recall {self.recall:.3f}; "
                f"{self.matched}/{self.expected} expected fields matched)")
        for label, paths in (("wrong", self.wrong), ("missing", self.missing), ("extra", self.extra)):
            if paths:
                text += f"; {label}: {', '.join(paths)}" + (" ..." if len(paths) >= MAX_NOTES else "")
        return text


class _Comparer:
    def __init__(self, root: Any):
        self.view = SchemaView(root)

    def compare(self, pred: Any, exp: Any, schema: Any, path: list, notes: _Notes | None) -> int:
        """Matched leaves of ``pred`` against ``exp``; records differences in ``notes`` if given."""
        annotations = self.view.resolve(schema, exp)
        if isinstance(exp, dict):
            return self._objects(pred, exp, annotations, path, notes)
        if isinstance(exp, list):
            return self._arrays(pred, exp, annotations, path, notes)
        if not isinstance(pred, (dict, list)) and scalars_equal(pred, exp, annotations):
            return 1
        if notes is not None:
            notes.add("wrong", path)
        return 0

    def _objects(self, pred: Any, exp: dict, schema: dict, path: list, notes: _Notes | None) -> int:
        if not isinstance(pred, dict):
            if notes is not None:
                notes.add("wrong", path)
            return 0
        exp_keys = [k for k, v in exp.items() if v is not None]
        pred_keys = [k for k, v in pred.items() if v is not None]
        if not exp_keys:
            if pred_keys and notes is not None:
                for key in pred_keys:
                    notes.add("extra", path + [key])
            return 0 if pred_keys else 1
        matched = 0
        for key in exp_keys:
            if key in pred and pred[key] is not None:
                matched += self.compare(pred[key], exp[key], self.view.member(schema, key), path + [key], notes)
            elif notes is not None:
                notes.add("missing", path + [key])
        if notes is not None:
            for key in pred_keys:
                if key not in exp or exp[key] is None:
                    notes.add("extra", path + [key])
        return matched

    def _arrays(self, pred: Any, exp: list, schema: dict, path: list, notes: _Notes | None) -> int:
        if not isinstance(pred, list):
            if notes is not None:
                notes.add("wrong", path)
            return 0
        if not exp or not pred:
            if notes is not None and exp:
                notes.add("missing", path + [0])
            if notes is not None and pred:
                notes.add("extra", path + [0])
            return 0 if (exp or pred) else 1
        if self.view.unordered(schema):
            weights = [[self.compare(p, e, self.view.item(schema, i), path + [i], None) for p in pred]
                       for i, e in enumerate(exp)]
            pairs = max_weight_matching(weights)
        else:
            pairs = [(i, i) for i in range(min(len(exp), len(pred)))]
            weights = None
        matched = 0
        for i, j in pairs:
            if notes is None and weights is not None:
                matched += weights[i][j]
            else:
                matched += self.compare(pred[j], exp[i], self.view.item(schema, i), path + [i], notes)
        if notes is not None:
            paired_exp, paired_pred = {i for i, _ in pairs}, {j for _, j in pairs}
            for i in range(len(exp)):
                if i not in paired_exp:
                    notes.add("missing", path + [i])
            for j in range(len(pred)):
                if j not in paired_pred:
                    notes.add("extra", path + [j])
        return matched


def field_scores(predicted: Any, expected: Any, schema: Any = None) -> FieldScores:
    """Compare a reply's value with the expected value, leaf by leaf (see the module docstring)."""
    notes = _Notes()
    matched = _Comparer(schema).compare(predicted, expected, schema, [], notes)
    n_pred, n_exp = count_leaves(predicted), count_leaves(expected)
    precision = matched / n_pred if n_pred else 0.0
    recall = matched / n_exp if n_exp else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return FieldScores(matched, n_pred, n_exp, precision, recall, f1,
                       tuple(notes.wrong), tuple(notes.missing), tuple(notes.extra))
