"""rft/JSONSchema-v0: generated data, the environment, group envs and user datasets."""

from __future__ import annotations

import json
import re

import gymnasium as gym
import pytest
from gymnasium.utils.env_checker import check_env

import rftgym
from rftgym import DatasetError
from rftgym.envs.json_schema import DOMAINS, SYSTEM_PROMPT, JSONSchemaEnv, grade, make_dataset
from rftgym.envs.json_schema.field_match import SchemaView
from rftgym.envs.json_schema.generator import _make_dataset
from rftgym.envs.json_schema.validation import get_validator, validation_errors


@pytest.fixture(scope="module")
def train():
    return make_dataset("train")


@pytest.fixture(scope="module")
def test_split():
    return make_dataset("test")


# --- generated data ---------------------------------------------------------------------------

def test_default_sizes_domains_and_levels(train, test_split):
    assert len(train) >= 2000 and len(test_split) >= 300
    assert len(DOMAINS) >= 10
    assert {row["domain"] for row in train} == set(DOMAINS)
    assert {row["difficulty"] for row in train} == {1, 2, 3}
    per_domain = [sum(row["domain"] == d for row in train) for d in DOMAINS]
    assert max(per_domain) - min(per_domain) <= 1


def test_splits_are_disjoint_and_deduplicated(train, test_split):
    train_prompts = {row["messages"][-1]["content"] for row in train}
    test_prompts = {row["messages"][-1]["content"] for row in test_split}
    assert len(train_prompts) == len(train) and len(test_prompts) == len(test_split)
    assert not train_prompts & test_prompts
    bigger = {row["messages"][-1]["content"] for row in make_dataset("test", size=1000)}
    assert not train_prompts & bigger  # disjoint whatever the sizes


def test_generation_is_deterministic_and_seeded(train):
    first = [row["messages"][-1]["content"] for row in make_dataset("train", size=50, seed=7)]
    _make_dataset.cache_clear()
    again = [row["messages"][-1]["content"] for row in make_dataset("train", size=50, seed=7)]
    assert first == again
    assert first != [row["messages"][-1]["content"] for row in make_dataset("train", size=50, seed=8)]
    # a row does not depend on the dataset size
    assert [row["ground_truth"] for row in make_dataset("train", size=30, seed=7)] == \
        [row["ground_truth"] for row in make_dataset("train", size=50, seed=7)][:30]


def test_every_expected_object_validates_against_its_own_schema(train, test_split):
    for row in list(train) + list(test_split):
        get_validator(row["schema"])  # the schema itself is valid
        assert validation_errors(row["ground_truth"], row["schema"]) == [], row["task_id"]


def test_perfect_reply_scores_one_and_empty_object_scores_low(train, test_split):
    for row in list(train) + list(test_split):
        assert grade(json.dumps(row["ground_truth"]), row["schema"], row["ground_truth"]).score == 1.0
        assert grade("{}", row["schema"], row["ground_truth"]).score == 0.0


def _string_leaves(value, schema, view):
    """(string, annotations) for every string leaf that must be copied from the text."""
    annotations = view.resolve(schema, value)
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _string_leaves(item, view.member(annotations, key), view)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _string_leaves(item, view.item(annotations, i), view)
    elif isinstance(value, str) and not {"enum", "format", "pattern"} & set(annotations):
        yield value


def test_expected_strings_are_stated_in_the_text(train):
    """Every free-text field of the expected object can be read from the text (no invented values)."""
    for row in train:
        text = row["messages"][-1]["content"].split('Text:\n"""', 1)[1].lower()
        view = SchemaView(row["schema"])
        for leaf in _string_leaves(row["ground_truth"], row["schema"], view):
            assert leaf.lower() in text, (row["task_id"], leaf)


def test_generated_rows_cover_the_schema_features(train):
    def walk(schema, view, found):
        schema = view.resolve(schema, None)
        if "enum" in schema:
            found.add("enum")
        if schema.get("format") in ("date", "email"):
            found.add(schema["format"])
        if schema.get("pattern", "").startswith("^[0-9]"):
            found.add("numeric string")
        if schema.get("type") == "array":
            found.add("array of objects" if view.resolve(schema.get("items"), None).get("type") == "object"
                      else "array of strings")
            found.add("unordered" if view.unordered(schema) else "ordered")
            walk(schema.get("items"), view, found)
        for sub in schema.get("properties", {}).values():
            if view.resolve(sub, None).get("type") == "object":
                found.add("nested object")
            if view.resolve(sub, None).get("type") in ("number", "integer"):
                found.add("number")
            walk(sub, view, found)

    found: set = set()
    optional_absent = optional_present = 0
    for row in train:
        view = SchemaView(row["schema"])
        walk(row["schema"], view, found)
        optional = set(row["schema"]["properties"]) - set(row["schema"]["required"])
        optional_absent += bool(optional - set(row["ground_truth"]))
        optional_present += bool(optional & set(row["ground_truth"]))
    assert found >= {"enum", "date", "email", "numeric string", "array of objects", "array of strings",
                     "unordered", "ordered", "nested object", "number"}
    assert optional_absent > len(train) // 4 and optional_present > len(train) // 4


def test_bad_generator_arguments_are_named():
    with pytest.raises(ValueError, match="split must be one of"):
        make_dataset("dev")
    with pytest.raises(ValueError, match="unknown domain"):
        make_dataset(domains=["invoice", "horoscope"])
    with pytest.raises(ValueError, match="difficulty must be 1, 2, 3 or None"):
        make_dataset(difficulty=4)
    with pytest.raises(ValueError, match="size must be a positive integer"):
        make_dataset(size=0)


# --- the environment --------------------------------------------------------------------------

def test_gym_make_without_arguments_and_an_episode(train):
    env = gym.make("rft/JSONSchema-v0")
    assert len(env.unwrapped.dataset) == len(train)
    obs, info = env.reset(seed=3)
    assert obs[0] == {"role": "system", "content": SYSTEM_PROMPT}
    assert "JSON Schema:" in obs[1]["content"] and "Text:" in obs[1]["content"]
    assert set(info) == {"index", "task_id", "schema", "domain", "difficulty"}
    row = env.unwrapped.dataset[info["index"]]
    assert json.dumps(row["ground_truth"]) not in obs[1]["content"]
    reply = "```json\n" + json.dumps(row["ground_truth"], indent=2) + "\n```"
    obs, reward, terminated, truncated, info = env.step(reply)
    assert (reward, terminated, truncated) == (1.0, True, False)
    assert info["evaluation"]["metrics"]["field_f1"] == 1.0
    assert obs[-1] == {"role": "assistant", "content": reply}
    env.reset(options={"task_id": row["task_id"]})
    _, reward, *_, info = env.step("I could not find the data.")
    assert reward == 0.0 and "does not start with a JSON value" in info["evaluation"]["reason"]


def test_check_env_passes():
    check_env(gym.make("rft/JSONSchema-v0", split="test", size=40).unwrapped)
    check_env(gym.make("rft/JSONSchema-v0").unwrapped)


def test_domains_difficulty_and_grading_options():
    env = JSONSchemaEnv(split="test", size=12, domains=["flight", "receipt"], difficulty=3,
                        grading={"parsed_weight": 0.5, "fields_weight": 0.5})
    assert {row["domain"] for row in env.dataset} == {"flight", "receipt"}
    assert {row["difficulty"] for row in env.dataset} == {3}
    env.reset(options={"index": 0})
    _, reward, *_ = env.step("{}")
    assert reward == pytest.approx(0.5)  # parsed (weight 0.5), invalid so no field credit
    with pytest.raises(ValueError, match="unknown grading option"):
        JSONSchemaEnv(size=12, grading={"weight": 1})


@pytest.mark.parametrize("executor", ["thread", "process"])
def test_group_env(executor):
    group = rftgym.make_group_env("rft/JSONSchema-v0", num_prompts=2, group_size=3, executor=executor,
                                  max_workers=2, split="test", size=24)
    try:
        _, infos = group.reset(seed=0)
        replies = []
        for member, info in enumerate(infos):
            truth = group.envs[member].dataset[info["index"]]["ground_truth"]
            replies.append([json.dumps(truth), "{}", "not json"][member % 3])
        _, rewards, terminated, _, step_infos = group.step(replies)
        assert rewards.tolist() == [1.0, 0.0, 0.0, 1.0, 0.0, 0.0]
        assert terminated.all()
        assert "no usable JSON" in step_infos[2]["evaluation"]["reason"]
    finally:
        group.close()


# --- user datasets ----------------------------------------------------------------------------

PERSON = {"type": "object", "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
          "required": ["name"], "additionalProperties": False}


def _row(content="Ana is 34.", **fields):
    return {"messages": [{"role": "user", "content": content}], **fields}


def test_user_dataset_with_schema_objects_paths_and_validity_only_rows(tmp_path):
    (tmp_path / "schemas").mkdir()
    (tmp_path / "schemas" / "person.json").write_text(json.dumps(PERSON))
    rows = [_row(schema=PERSON, ground_truth={"name": "Ana", "age": 34}, task_id="inline"),
            _row(schema="schemas/person.json", ground_truth='{"name": "Ana", "age": 34}', task_id="path"),
            _row(schema=PERSON, task_id="no-truth")]
    path = tmp_path / "rows.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    env = gym.make("rft/JSONSchema-v0", dataset=str(path))
    for task_id in ("inline", "path"):
        env.reset(options={"task_id": task_id})
        _, reward, *_ = env.step('{"name": "ana", "age": 34}')
        assert reward == 1.0
        env.reset(options={"task_id": task_id})
        _, reward, *_ = env.step('{"name": "Ana"}')
        assert reward == pytest.approx(2 / 3)  # P = 1, R = 1/2
    env.reset(options={"task_id": "no-truth"})
    _, reward, *_, info = env.step('{"name": "Bo", "age": 7}')
    assert reward == 1.0 and set(info["evaluation"]["metrics"]) == {"parsed", "valid"}
    env.reset(options={"task_id": "no-truth"})
    _, reward, *_ = env.step('{"name": "Bo", "age": "seven"}')
    assert reward == 0.0


@pytest.mark.parametrize("row,message", [
    (_row(ground_truth={"name": "x"}), "missing 'schema'"),
    (_row(schema={"type": "nope"}), "'schema' is not a valid JSON Schema"),
    (_row(schema="missing.json"), "schema file not found"),
    (_row(schema=PERSON, ground_truth={"name": 5}), "'ground_truth' does not validate against its schema: /name"),
    (_row(schema=PERSON, ground_truth="{not json"), "'ground_truth' is a string but not valid JSON"),
])
def test_user_dataset_errors_name_the_row(row, message):
    with pytest.raises(DatasetError, match=re.escape(message)) as excinfo:
        JSONSchemaEnv(dataset=[_row(schema=PERSON), row])
    assert "row 2" in str(excinfo.value)


def test_dataset_and_generator_arguments_conflict():
    with pytest.raises(ValueError, match="do not also pass split, size"):
        JSONSchemaEnv(dataset=[_row(schema=PERSON)], split="test", size=3)
