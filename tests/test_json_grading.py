"""Hand-checked grading cases for rft/JSONSchema-v0: parsing, validation, field credit, hostile input.

The reference object below has 16 leaves: name, email, born, zip, age, status, 2 tags, 4 item
fields, 2 steps, 2 address fields. Expected scores are worked out by hand in each case's comment.
"""

from __future__ import annotations

import copy
import itertools
import json
import pickle
import random
import time

import pytest

from rftgym import evaluate_safely
from rftgym.envs.json_schema import (
    GradingConfig, JSONReplyError, JSONSchemaEvaluator, ParseLimits, field_scores, grade, parse_reply,
)
from rftgym.envs.json_schema.assignment import max_weight_matching
from rftgym.envs.json_schema.parsing import nesting_depth
from rftgym.envs.json_schema.scalars import parse_date
from rftgym.envs.json_schema.validation import validation_errors

SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "properties": {
        "name": {"type": "string"},
        "email": {"type": "string", "format": "email"},
        "born": {"type": "string", "format": "date"},
        "zip": {"type": "string", "pattern": "^[0-9]{5}$"},
        "age": {"type": "integer"},
        "status": {"type": "string", "enum": ["active", "inactive"]},
        "tags": {"type": "array", "items": {"type": "string"}, "uniqueItems": True},
        "items": {"type": "array", "x-unordered": True,
                  "items": {"type": "object", "properties": {"sku": {"type": "string"}, "qty": {"type": "integer"}},
                            "required": ["sku", "qty"], "additionalProperties": False}},
        "steps": {"type": "array", "items": {"type": "string"}},
        "address": {"type": "object", "properties": {"city": {"type": "string"}, "street": {"type": "string"}},
                    "required": ["city"]},
        "note": {"type": ["string", "null"]},
    },
    "required": ["name", "status", "items"],
}
EXPECTED = {"name": "Ana Silva", "email": "ana@mail.example", "born": "1990-03-05", "zip": "02139", "age": 34,
            "status": "active", "tags": ["a", "b"], "items": [{"sku": "A1", "qty": 2}, {"sku": "B2", "qty": 1}],
            "steps": ["mix", "bake"], "address": {"city": "Boston", "street": "1 Main St"}}
LENIENT = GradingConfig(require_valid=False)


def reply(**changes) -> str:
    """The expected object with some fields changed (a value of ... removes the field)."""
    value = copy.deepcopy(EXPECTED)
    for key, new in changes.items():
        if new is ...:
            del value[key]
        else:
            value[key] = new
    return json.dumps(value)


def score(text: str, config: GradingConfig = GradingConfig(), expected=EXPECTED, schema=SCHEMA):
    return grade(text, schema, expected, config)


# --- perfect replies and their accepted shapes -----------------------------------------------

def test_perfect_raw_reply_scores_one_with_all_metrics():
    result = score(json.dumps(EXPECTED))
    assert result.score == 1.0
    assert result.metrics == {"parsed": 1.0, "valid": 1.0, "field_precision": 1.0, "field_recall": 1.0,
                              "field_f1": 1.0}
    assert "16/16 expected fields matched" in result.reason


def test_single_fenced_block_with_prose_around_it_is_accepted():
    text = f"Here is the data:\n```json\n{json.dumps(EXPECTED, indent=2)}\n```\nLet me know!"
    assert score(text).score == 1.0
    assert parse_reply(text).source == "fenced"
    assert parse_reply("```\n[1, 2]\n```").value == [1, 2]  # no info string


# --- field credit (hand-computed F1) ---------------------------------------------------------

def test_unordered_array_of_objects_matches_in_any_order():
    assert score(reply(items=list(reversed(EXPECTED["items"])))).score == 1.0


def test_unique_items_array_is_order_insensitive():
    assert score(reply(tags=["b", "a"])).score == 1.0


def test_ordered_array_in_wrong_order_loses_those_leaves():
    # steps reversed: both step leaves wrong -> 14/16 matched, P = R = 14/16
    result = score(reply(steps=["bake", "mix"]))
    assert result.score == pytest.approx(14 / 16)
    assert "wrong: /steps/0, /steps/1" in result.reason


def test_string_normalization_whitespace_and_case():
    assert score(reply(name="  ana   SILVA ")).score == 1.0
    assert score(reply(email="ANA@MAIL.EXAMPLE")).score == 1.0  # email: text rule (case-folded)


def test_integer_written_as_float_is_equal():
    assert score(reply(age=34.0)).score == 1.0  # 34.0 is a valid integer and numerically equal


def test_missing_optional_field_lowers_recall():
    # 15 of 16 leaves given, all right: P = 1, R = 15/16, F1 = 30/31
    result = score(reply(email=...))
    assert result.metrics["valid"] == 1.0
    assert result.metrics["field_precision"] == 1.0
    assert result.metrics["field_recall"] == pytest.approx(15 / 16)
    assert result.score == pytest.approx(30 / 31)
    assert "missing: /email" in result.reason


def test_extra_key_lowers_precision():
    # 17 leaves given, 16 right: P = 16/17, R = 1, F1 = 32/33
    result = score(reply(nickname="Ani"))
    assert result.score == pytest.approx(32 / 33)
    assert "extra: /nickname" in result.reason


def test_extra_array_item_lowers_precision():
    # 18 leaves given, 16 right: F1 = 2*16 / (18 + 16)
    result = score(reply(items=EXPECTED["items"] + [{"sku": "C3", "qty": 5}]))
    assert result.score == pytest.approx(32 / 34)


def test_one_wrong_nested_leaf():
    # qty of A1 wrong: 15/16 right, P = R = 15/16
    result = score(reply(items=[{"sku": "B2", "qty": 1}, {"sku": "A1", "qty": 3}]))
    assert result.score == pytest.approx(15 / 16)
    assert "wrong: /items/0/qty" in result.reason


def test_empty_array_instead_of_two_tags():
    # tags [] is one (wrong) leaf: 15 given, 14 right; F1 = 28 / (15 + 16)
    assert score(reply(tags=[])).score == pytest.approx(28 / 31)


def test_null_member_counts_as_absent():
    assert score(reply(note=None)).score == 1.0  # the schema allows null; not an extra key


def test_empty_object_scores_zero():
    result = score("{}")
    assert result.score == 0.0
    assert result.metrics["parsed"] == 1.0 and result.metrics["valid"] == 0.0
    assert "'name' is a required property" in result.reason


# --- validation gate, formats, numbers vs numeric strings --------------------------------------

def test_number_instead_of_numeric_string_is_invalid():
    result = score(reply(zip=2139))
    assert result.score == 0.0
    assert "/zip: 2139 is not of type 'string'" in result.reason
    # without the validity gate only that leaf is lost: P = R = 15/16
    assert score(reply(zip=2139), LENIENT).score == pytest.approx(15 / 16)


def test_numeric_string_instead_of_integer_is_invalid_and_never_equal():
    assert score(reply(age="34")).score == 0.0
    assert field_scores({"a": "12"}, {"a": 12}).f1 == 0.0
    assert field_scores({"a": 1}, {"a": True}).f1 == 0.0  # booleans are not numbers


def test_enum_is_exact():
    result = score(reply(status="Active"))
    assert result.score == 0.0 and "/status: 'Active' is not one of" in result.reason
    assert score(reply(status="Active"), LENIENT).score == pytest.approx(15 / 16)  # exact rule: wrong


def test_date_format_is_checked_and_written_dates_normalize_without_the_gate():
    result = score(reply(born="March 5, 1990"))
    assert result.score == 0.0 and "/born: 'March 5, 1990' is not a 'date'" in result.reason
    assert score(reply(born="March 5, 1990"), LENIENT).score == 1.0  # the same calendar day
    assert score(reply(born="1990-02-30")).score == 0.0  # not a real day


def test_email_format_is_strict():
    assert score(reply(email="ana at mail.example")).score == 0.0
    assert score(reply(email="ana@localhost")).score == 0.0  # needs a dotted domain


def test_date_time_rule_compares_instants():
    schema = {"type": "object", "properties": {"at": {"type": "string", "format": "date-time"}}}
    expected = {"at": "2024-03-05T09:00:00Z"}
    assert grade('{"at": "2024-03-05T10:00:00+01:00"}', schema, expected).score == 1.0
    assert grade('{"at": "2024-03-05T10:00:00Z"}', schema, expected).score == 0.0
    assert grade('{"at": "2024-03-05 09:00"}', schema, expected).score == 0.0  # not RFC 3339


def test_x_compare_exact_and_x_tolerance_annotations():
    schema = {"type": "object", "properties": {"code": {"type": "string", "x-compare": "exact"},
                                               "total": {"type": "number", "x-tolerance": 0.01}}}
    expected = {"code": "AbC", "total": 10.0}
    assert grade('{"code": "AbC", "total": 10.004}', schema, expected).score == 1.0
    # code wrong (case differs under "exact"), total right: P = R = 1/2
    assert grade('{"code": "abc", "total": 10.004}', schema, expected).score == pytest.approx(0.5)
    assert grade('{"code": "AbC", "total": 10.02}', schema, expected).score == pytest.approx(0.5)


def test_annotations_are_read_through_ref_and_any_of():
    schema = {"$defs": {"pets": {"type": "array", "items": {"type": "string"}, "x-unordered": True}},
              "type": "object",
              "properties": {"pets": {"$ref": "#/$defs/pets"},
                             "when": {"anyOf": [{"type": "null"}, {"type": "string", "format": "date"}]}}}
    expected = {"pets": ["cat", "dog"], "when": "2024-01-02"}
    assert grade('{"pets": ["dog", "cat"], "when": "2024-01-02"}', schema, expected).score == 1.0
    assert field_scores({"pets": ["dog", "cat"], "when": "January 2, 2024"}, expected, schema).f1 == 1.0


def test_row_without_expected_object_is_graded_on_validity():
    result = grade(json.dumps(EXPECTED), SCHEMA, None)
    assert result.score == 1.0 and set(result.metrics) == {"parsed", "valid"}
    assert grade('{"name": "x"}', SCHEMA, None).score == 0.0


def test_configurable_weights():
    config = GradingConfig(parsed_weight=0.2, valid_weight=0.3, fields_weight=0.5, require_valid=False)
    # invalid (zip is a number), parsed, F1 15/16: 0.2 + 0 + 0.5 * 15/16
    assert score(reply(zip=2139), config).score == pytest.approx(0.2 + 0.5 * 15 / 16)
    gated = GradingConfig(parsed_weight=0.2, valid_weight=0.3, fields_weight=0.5)
    assert score(reply(zip=2139), gated).score == pytest.approx(0.2)
    assert score(json.dumps(EXPECTED), gated).score == pytest.approx(1.0)
    with pytest.raises(ValueError, match="weights sum to zero"):
        GradingConfig(parsed_weight=0, valid_weight=0, fields_weight=0)
    with pytest.raises(ValueError, match="unknown grading option"):
        GradingConfig.from_any({"field_weight": 1})


def test_validation_errors_are_capped_and_pointed():
    errors = validation_errors({"items": [{"sku": 1, "qty": "x"}]}, SCHEMA, limit=2)
    assert len(errors) == 3 and errors[-1] == "..."
    assert errors[0].startswith("/")


# --- hostile replies: score 0 with a reason, quickly -----------------------------------------

HOSTILE = [
    ("truncated", json.dumps(EXPECTED)[:-20], "ends early (truncated?)"),
    ("truncated string", '{"name": "Ana', "ends early (truncated?)"),
    ("10 MB of JSON", json.dumps({"name": "x" * 10_000_000}), "characters long; the limit is 1,000,000"),
    ("500 KB of JSON", json.dumps({"name": "x" * 500_000}), "the JSON is 500,012 characters long"),
    ("10,000 nesting levels", "[" * 10_000 + "]" * 10_000, "nests deeper than 64 levels"),
    ("10,000 open brackets", '{"a": ' + "[" * 10_000, "nests deeper than 64 levels"),
    ("NaN", '{"name": "x", "age": NaN}', "NaN is not valid JSON"),
    ("Infinity", '{"age": Infinity}', "Infinity is not valid JSON"),
    ("-Infinity", '{"age": -Infinity}', "-Infinity is not valid JSON"),
    ("overflow to infinity", '{"age": 1e999}', "out of range"),
    ("huge integer", '{"age": ' + "9" * 5000 + "}", "number literal of 5000 characters is too long"),
    ("duplicate keys", '{"name": "a", "status": "active", "name": "b", "items": []}', 'duplicate key "name"'),
    ("unpaired surrogate", '{"name": "\\ud800"}', "unpaired UTF-16 surrogate"),
    ("too many values", json.dumps({"tags": [0] * 20_000}), "more than 10000 values"),
    ("two fenced blocks", "```json\n{}\n```\nand\n```json\n{}\n```", "2 fenced code blocks"),
    ("unclosed fence", "```json\n" + json.dumps(EXPECTED), "unclosed fenced code block"),
    ("prose before raw JSON", "Sure! " + json.dumps(EXPECTED), "does not start with a JSON value"),
    ("text after JSON", json.dumps(EXPECTED) + " Hope this helps", "extra text after the JSON value"),
    ("two JSON values", "{} {}", "extra text after the JSON value"),
    ("empty reply", "   ", "the reply is empty"),
    ("single quotes", "{'name': 'Ana'}", "invalid JSON: Expecting property name enclosed in double quotes"),
]


@pytest.mark.parametrize("label,text,reason", HOSTILE, ids=[h[0] for h in HOSTILE])
def test_hostile_reply_scores_zero_with_reason_quickly(label, text, reason):
    start = time.perf_counter()
    result = score(text)
    assert time.perf_counter() - start < 5.0
    assert result.score == 0.0
    assert result.metrics["parsed"] == 0.0
    assert reason in result.reason, result.reason


def test_non_string_reply_content():
    with pytest.raises(JSONReplyError, match="must be a string, got NoneType"):
        parse_reply(None)
    result = JSONSchemaEvaluator()([{"role": "assistant", "content": None}], EXPECTED, schema=SCHEMA)
    assert result.score == 0.0 and "must be a string" in result.reason


def test_brackets_inside_strings_do_not_count_as_nesting():
    text = json.dumps({"name": "[" * 5000 + "{" * 5000})
    assert nesting_depth(text) == 1
    assert parse_reply(text).value["name"].startswith("[[[")


def test_wide_hostile_arrays_are_graded_quickly():
    # 3,000 items in an order-insensitive array: matching is pruned to O(n*m), not cubic
    many = [{"sku": f"S{i}", "qty": i} for i in range(3000)]
    start = time.perf_counter()
    result = score(reply(items=many))
    assert time.perf_counter() - start < 5.0
    assert result.metrics["valid"] == 1.0 and result.score < 0.02
    # uniqueItems over 3,000 distinct objects plus one repeat is checked in linear time
    schema = {"type": "array", "uniqueItems": True, "items": {"type": "object"}}
    start = time.perf_counter()
    result = grade(json.dumps(many + [many[0]]), schema, None)
    assert time.perf_counter() - start < 5.0
    assert result.score == 0.0 and "not unique (item 3000 repeats" in result.reason


def test_limits_are_configurable():
    tight = GradingConfig(limits=ParseLimits(max_depth=2))
    assert score('{"address": {"city": {"x": 1}}}', tight).reason.endswith("nests deeper than 2 levels")
    assert GradingConfig.from_any({"limits": {"max_json_chars": 10}}).limits.max_json_chars == 10
    with pytest.raises(ValueError, match="max_depth must be a positive integer"):
        ParseLimits(max_depth=0)


# --- the evaluator ---------------------------------------------------------------------------

def test_evaluator_is_picklable_and_safe():
    evaluator = pickle.loads(pickle.dumps(JSONSchemaEvaluator(LENIENT)))
    messages = [{"role": "user", "content": "extract"}, {"role": "assistant", "content": reply(zip=2139)}]
    result = evaluate_safely(evaluator, messages, EXPECTED, {"schema": SCHEMA, "domain": "x"})
    assert result.score == pytest.approx(15 / 16)
    no_schema = evaluate_safely(evaluator, messages, EXPECTED, {})
    assert no_schema.score == 0.0 and "no 'schema' field" in no_schema.reason
    not_reply = evaluator([{"role": "user", "content": "hi"}], EXPECTED, schema=SCHEMA)
    assert not_reply.score == 0.0 and "does not end with an assistant reply" in not_reply.reason


def test_ground_truth_given_as_json_text():
    evaluator = JSONSchemaEvaluator()
    messages = [{"role": "assistant", "content": json.dumps(EXPECTED)}]
    assert evaluator(messages, json.dumps(EXPECTED), schema=SCHEMA).score == 1.0


# --- building blocks against independent references ------------------------------------------

def test_matching_is_optimal_against_brute_force():
    rng = random.Random(0)
    for _ in range(400):
        n, m = rng.randint(1, 5), rng.randint(1, 5)
        weights = [[rng.choice((0, 0, 1, 2, 3, 5)) for _ in range(m)] for _ in range(n)]
        pairs = max_weight_matching(weights)
        assert len({i for i, _ in pairs}) == len(pairs) == len({j for _, j in pairs})
        if n <= m:
            best = max(sum(weights[i][p[i]] for i in range(n)) for p in itertools.permutations(range(m), n))
        else:
            best = max(sum(weights[p[j]][j] for j in range(m)) for p in itertools.permutations(range(n), m))
        assert sum(weights[i][j] for i, j in pairs) == best


def test_written_dates_parse():
    assert parse_date("Tuesday, 5th March 2024").isoformat() == "2024-03-05"
    assert parse_date("the 21st of June 2025").isoformat() == "2025-06-21"
    assert parse_date("Sep 9, 2025").isoformat() == "2025-09-09"
    assert parse_date("2024/3/5").isoformat() == "2024-03-05"
    assert parse_date("03/05/2024") is None  # ambiguous day/month order
    assert parse_date("February 30, 2024") is None
