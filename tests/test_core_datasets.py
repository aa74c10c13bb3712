"""Dataset loading: Fireworks / OpenAI RFT JSONL rows and every malformed-input error."""

from __future__ import annotations

import json

import gymnasium as gym
import pytest

import rftgym
from rftgym import DatasetError, load_dataset

GOOD = {"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "1+1?"}],
        "ground_truth": "2", "level": 1}


def write_lines(tmp_path, lines, name="rows.jsonl"):
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_load_jsonl_keeps_extra_fields(tmp_path):
    path = write_lines(tmp_path, [json.dumps(GOOD), "", json.dumps({**GOOD, "task_id": "b"})])
    dataset = load_dataset(path)
    assert len(dataset) == 2 and dataset[0]["level"] == 1
    assert dataset.task_id(0) == "0" and dataset.task_id(1) == "b" and dataset.index_of("b") == 1


def test_content_parts_are_joined():
    rows = [{"messages": [{"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]}]}]
    assert load_dataset(rows)[0]["messages"][0]["content"] == "ab"


@pytest.mark.parametrize("line, problem", [
    ('{"messages": [', "invalid JSON"),
    ('[1, 2]', "a row must be a JSON object, got list"),
    ('{"ground_truth": 1}', "missing required field 'messages'"),
    ('{"messages": []}', "'messages' must be a non-empty list"),
    ('{"messages": [{"role": "wizard", "content": "x"}]}', "messages[0] has unknown role 'wizard'"),
    ('{"messages": [{"role": "user"}]}', "messages[0] (user) has no 'content'"),
    ('{"messages": [{"role": "user", "content": 5}]}', "messages[0].content must be a string, got int"),
    ('{"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]}',
     "the last message must be from the user"),
    ('{"messages": [{"role": "user", "content": "q"}], "ground_truth": NaN}', "invalid JSON"),
    ('{"messages": [{"role": "user", "content": "q", "color": "red"}]}', "unknown keys ['color']"),
])
def test_malformed_rows_name_file_line_and_problem(tmp_path, line, problem):
    path = write_lines(tmp_path, [json.dumps(GOOD), json.dumps(GOOD), line])
    with pytest.raises(DatasetError) as excinfo:
        load_dataset(path)
    message = str(excinfo.value)
    assert message.startswith(f"{path}:3: "), message
    assert problem in message


def test_empty_and_missing_files(tmp_path):
    empty = write_lines(tmp_path, ["", "   "], name="empty.jsonl")
    with pytest.raises(DatasetError, match=r"empty\.jsonl: the dataset is empty \(no rows\)"):
        load_dataset(empty)
    with pytest.raises(DatasetError, match=r"nope\.jsonl: file not found"):
        load_dataset(tmp_path / "nope.jsonl")
    with pytest.raises(DatasetError, match="the dataset is empty"):
        load_dataset([])


def test_invalid_utf8_is_named(tmp_path):
    path = tmp_path / "bin.jsonl"
    path.write_bytes(json.dumps(GOOD).encode() + b"\n\xff\xfe{}\n")
    with pytest.raises(DatasetError, match=r"bin\.jsonl:2: not valid UTF-8"):
        load_dataset(path)


def test_row_lists_are_validated_with_positions():
    with pytest.raises(DatasetError, match=r"<rows>\[1\]: missing required field 'messages'"):
        load_dataset([GOOD, {"prompt": "x"}])


def test_custom_env_from_jsonl_and_import_string(tmp_path):
    rows = [{"messages": [{"role": "user", "content": f"say w{i}"}], "ground_truth": f"w{i}"} for i in range(3)]
    path = write_lines(tmp_path, [json.dumps(r) for r in rows])
    env = gym.make("rft/Custom-v0", dataset=str(path), evaluator="core_evaluators:exact_word")
    obs, info = env.reset(seed=0, options={"index": 1})
    assert obs == rows[1]["messages"]
    assert env.step("w1")[1] == 1.0


def test_custom_env_bad_input_fails_at_make_time(tmp_path):
    path = write_lines(tmp_path, [json.dumps(GOOD), '{"messages": "oops"}'])
    with pytest.raises(DatasetError, match=r"rows\.jsonl:2: 'messages' must be a non-empty list"):
        gym.make("rft/Custom-v0", dataset=str(path), evaluator="core_evaluators:exact_word")
    with pytest.raises(TypeError, match="needs dataset=.* and evaluator="):
        gym.make("rft/Custom-v0")
    with pytest.raises(rftgym.EvaluatorError, match="not of the form"):
        gym.make("rft/Custom-v0", dataset=[GOOD], evaluator="nocolon")
