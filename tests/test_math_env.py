"""rft/Math-v0: the generated problems, the env contract and group scoring."""

from __future__ import annotations

import ast
import json
import random
import re
from fractions import Fraction

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import rftgym
from rftgym import DatasetError
from rftgym.datasets import validate_row
from rftgym.envs.math import generator as G
from rftgym.envs.math.env import DEFAULT_SYSTEM_PROMPT, MathEnv

# One problem per template, drawn with Random(f"hand-{template}"); every answer worked out by hand.
HAND_CHECKED = [
    ("add_digits", "Add 9 and 6.", "15"),
    ("subtract_digits", "Subtract 1 from 8.", "7"),
    ("gets_more", "Chen has 2 stickers. Chen gets 2 more. How many stickers does Chen have now?", "4"),
    ("gives_away", "Noah has 7 stickers and gives 3 of them to Sam. How many stickers does Noah have left?", "4"),
    ("together", "Yusuf has 8 blocks and Jonas has 9 blocks. How many blocks do they have together?", "17"),
    ("bus_riders", "There are 7 people on a bus. At the next stop, 5 more people get on. How many people are on the bus now?", "12"),
    ("add_two_digit", "Calculate 67 + 78.", "145"),
    ("subtract_two_digit", "What is 26 - 19?", "7"),
    ("multiply_digits", "What is 3 × 5?", "15"),
    ("divide_exactly", "Calculate 6 / 2.", "3"),
    ("buy_several", "Quinn buys 9 comic books that cost $5 each. How many dollars does Quinn spend?", "45"),
    ("share_equally", "Emma shares 60 cookies equally among 6 friends. How many cookies does each friend get?", "10"),
    ("convert_units", "How many months are in 2 years?", "24"),
    ("age_later", "Lena is 41 years old. How old will Lena be in 13 years?", "54"),
    ("drive_distance", "A truck travels at 75 kilometers per hour for 6 hours. How many kilometers does it travel?", "450"),
    ("square_perimeter", "A square garden has sides that are 17 centimeters long. What is its perimeter in centimeters?", "68"),
    ("rectangle_area", "A rectangle is 5 meters long and 2 meters wide. What is its area in square meters?", "10"),
    ("change_from_bill", "Ben buys 5 puzzles for $3 each and pays with a $100 bill. How much change does Ben get, in dollars?", "85"),
    ("sale_price", "A bike costs $100. It is on sale for 75% off. What is the sale price in dollars?", "25"),
    ("fraction_left", "Leo has 10 blocks and gives away 1/2 of them. How many blocks does Leo have left?", "5"),
    ("rectangle_perimeter", "A rectangular garden is 9 meters long and 2 meters wide. What is its perimeter in meters?", "22"),
    ("older_later", "Ximena is 17 years old. Bruno is 23 years older than Ximena. How old will Bruno be in 6 years?", "46"),
    ("same_speed", "A train travels 375 kilometers in 5 hours. At the same speed, how many kilometers does it travel in 3 hours?", "225"),
    ("two_purchases", "Maya buys 4 puzzles at $4 each and 4 picture frames at $11 each. How many dollars does Maya spend in total?", "60"),
    ("pages_in_weeks", "Ava reads 3 pages every day. How many pages does Ava read in 4 weeks?", "84"),
    ("mixed_operations", "What is 14 + 5 × 7?", "49"),
    ("discount_then_tax", "A telescope costs $200. The store takes 50% off, and then a sales tax of 8% is added to the reduced price. How much does Dara pay for the telescope, in dollars?", "108"),
    ("average_score", "Wen scored 71, 64, 61 and 84 on four tests. What is Wen's average score?", "70"),
    ("work_together", "Wen paints 5 fence boards per hour and Eli paints 4 fence boards per hour. Working together, how many hours will it take them to paint 54 fence boards?", "6"),
    ("spend_in_parts", "Grace has $20. Grace spends 1/2 of the money on a model kit and then 1/2 of what is left on lunch. How many dollars does Grace have left?", "5"),
    ("fence_with_gate", "A rectangular yard is 6 meters long and 5 meters wide. Rosa puts a fence around it, leaving a 3-meter gap for a gate. The fence costs $6 per meter. How much does the fence cost, in dollars?", "114"),
    ("ages_from_sum", "Fatima is five times as old as Ximena. In 2 years, the sum of their ages will be 64. How old is Ximena now?", "10"),
    ("speed_from_minutes", "A cyclist rides 27 kilometers in 90 minutes. What is the cyclist's average speed in kilometers per hour?", "18"),
    ("rope_change", "Rope costs $3 per meter. Sam buys 700 centimeters of rope and pays with a $100 bill. How much change does Sam get, in dollars?", "79"),
    ("bracket_expression", "What is (18 + 18) × 9 - 26?", "298"),
    ("split_bill", "2 friends order 2 pizzas at $10 each and 2 drinks at $3 each. They add a 20% tip to the total and split the bill equally. How many dollars does each friend pay?", "15.6"),
    ("grow_then_fall", "A town has 12000 people. Its population grows by 25% in one year and then falls by 20% the next year. How many people live in the town after the two years?", "12000"),
    ("interest_then_withdraw", "Mateo puts $400 in a savings account that pays 7% simple interest per year. After 4 years, Mateo takes out $250. How many dollars are left in the account?", "262"),
    ("trains_meet", "Two trains are 120 kilometers apart and travel toward each other, one at 120 kilometers per hour and the other at 40 kilometers per hour. How many minutes pass before they meet?", "45"),
    ("sugar_fractions", "A cookie recipe needs 1/4 cup of sugar for one batch, and the icing needs 2/3 cup of sugar for one batch. Noah makes 5 batches of cookies and 1 batch of icing. How many cups of sugar does Noah use in total? Give the answer as a fraction in lowest terms.", "23/12"),
    ("tiled_floor", "A rectangular room is 4 meters by 4 meters. A square rug with sides of 2 meters covers part of the floor. The rest of the floor is covered with tiles that cost $36 per square meter, and fitting the tiles costs $180 in total. What is the total cost, in dollars?", "612"),
    ("club_ratio", "In a club, the ratio of boys to girls is 1:4. There are 45 members. Then 2 more girls join the club. What fraction of the members are girls now? Give the answer as a fraction in lowest terms.", "38/47"),
    ("fraction_expression", "Compute (5/6 + 2/3) × 5 - 1/5. Give the answer as a fraction in lowest terms.", "73/10"),
    ("earnings_left", "Grace earns $17 per hour and works 7 hours a day for 10 days. Grace spends 3/10 of the earnings on rent and $445 on food. How many dollars are left?", "388"),
]


def test_every_template_is_hand_checked():
    names = {t.__name__ for level in G.TEMPLATES.values() for t in level}
    assert names == {name for name, _, _ in HAND_CHECKED}


@pytest.mark.parametrize("name,question,answer", HAND_CHECKED, ids=[c[0] for c in HAND_CHECKED])
def test_template_matches_hand_worked_answer(name, question, answer):
    problem = getattr(G, name)(G.Draw(random.Random(f"hand-{name}")))
    assert (problem.question, problem.answer_text) == (question, answer)


def _independent_value(expression: str) -> Fraction:
    """Evaluate a solution step with Python's own evaluator on Fractions (not the generator's)."""
    tree = ast.parse(expression, mode="eval")
    assert all(isinstance(node, (ast.Expression, ast.BinOp, ast.Constant, ast.Add, ast.Sub, ast.Mult,
                                 ast.Div, ast.UnaryOp, ast.USub)) for node in ast.walk(tree))
    source = re.sub(r"(\d+(?:\.\d+)?)", r"Fraction('\1')", expression)
    return eval(source, {"Fraction": Fraction})  # arithmetic only, checked above


def test_worked_solutions_recompute_to_the_ground_truth():
    for level in G.LEVELS:
        for problem in G.generate_problems("test", level, 200):
            steps = problem.solution.splitlines()
            assert steps[-1] == f"#### {problem.answer_text}"
            value = None
            for step in steps[:-1]:
                _, _, rest = step.partition(": ")
                expression, _, shown = rest.rpartition(" = ")
                value = _independent_value(expression)
                assert value == Fraction(shown), step
            assert value == Fraction(problem.answer_text) == problem.answer, problem.solution


def test_levels_grow_in_steps_and_level_one_has_two_one_digit_numbers():
    steps = {lv: [p.solution.count("\n") for p in G.generate_problems("train", lv, 500)] for lv in G.LEVELS}
    assert [min(steps[lv]) for lv in G.LEVELS] == [1, 1, 2, 2, 3]
    means = [np.mean(steps[lv]) for lv in G.LEVELS]
    assert means[2] < means[3] < means[4]
    env = MathEnv(difficulty=1)
    assert len(env.dataset) == 5000
    for row in env.dataset:
        numbers = re.findall(r"\d+", row["messages"][-1]["content"])
        assert len(numbers) == 2 and all(len(n) == 1 for n in numbers), row
        assert 0 <= int(row["ground_truth"]) <= 18


def test_default_sizes_dedup_and_disjoint_splits():
    for level in G.LEVELS:
        train = G.generate_problems("train", level, 5000)
        test = G.generate_problems("test", level, 500)
        assert len({p.question for p in train}) == 5000 and len({p.question for p in test}) == 500
        assert not {p.question for p in train} & {p.question for p in test}
        assert not {p.signature for p in train} & {p.signature for p in test}
        assert all(G.split_of(p.signature) == "test" for p in test)
    rows = G.build_dataset("test", (1, 2, 3, 4, 5))
    assert len(rows) == 2500 and [r["level"] for r in rows[::500]] == [1, 2, 3, 4, 5]


def test_generation_is_deterministic_prefix_stable_and_seeded(monkeypatch):
    fresh = G.generate_problems.__wrapped__
    assert fresh("train", 3, 300, 0) == G.generate_problems("train", 3, 300, 0)
    assert G.generate_problems("train", 3, 100, 0) == G.generate_problems("train", 3, 300, 0)[:100]
    other = G.generate_problems("train", 3, 100, 1)
    assert [p.question for p in other] != [p.question for p in G.generate_problems("train", 3, 100, 0)]
    monkeypatch.setitem(G.TEMPLATES, 1, (G.add_digits,))  # 81 sums x 4 wordings, 1 in 8 for test
    with pytest.raises(ValueError, match=r"level 1 has fewer than 1000 distinct test problems \(found \d+\)"):
        fresh("test", 1, 1000)


def test_rows_are_valid_and_cached():
    env_a = MathEnv(difficulty=2, size=50)
    env_b = MathEnv(difficulty=2, size=50)
    assert env_a.dataset is env_b.dataset  # many copies share one generated dataset
    row = env_a.dataset[0]
    assert validate_row(row, "row") == row
    assert set(row) == {"messages", "ground_truth", "task_id", "level", "topic", "solution"}
    assert row["task_id"] == "math-train-L2-00000"


def test_make_with_defaults_and_check_env():
    env = gym.make("rft/Math-v0")
    check_env(env.unwrapped)
    messages, info = env.reset(seed=0)
    assert messages[0] == {"role": "system", "content": DEFAULT_SYSTEM_PROMPT}
    assert messages[1]["role"] == "user" and len(messages) == 2
    assert info["level"] == 1 and info["task_id"].startswith("math-train-L1-")
    row = env.unwrapped.dataset[info["index"]]
    text = json.dumps([messages, info])
    assert "ground_truth" not in text and "####" not in text
    _, reward, terminated, truncated, info = env.step(f"Sure. <answer>{row['ground_truth']}</answer>")
    assert (reward, terminated, truncated) == (1.0, True, False)
    assert info["evaluation"]["metrics"] == {"correct": 1.0, "formatted": 1.0}


def test_options_prompt_and_format_weight():
    env = gym.make("rft/Math-v0", split="test", difficulty=[5, 3], size=20, system_prompt=None,
                   format_weight=0.1)
    messages, info = env.reset(options={"task_id": "math-test-L5-00003"})
    assert len(messages) == 1 and info["level"] == 5
    _, reward, *_ = env.step("<answer>-1</answer>")
    assert reward == pytest.approx(0.1)
    assert len(env.unwrapped.dataset) == 40


@pytest.mark.parametrize("kwargs,message", [
    ({"difficulty": 0}, r"difficulty must be a level in \(1, 2, 3, 4, 5\)"),
    ({"difficulty": "hard"}, "difficulty must be a level"),
    ({"difficulty": []}, "difficulty must be a level"),
    ({"split": "validation"}, r"split must be one of \('train', 'test'\)"),
    ({"size": 0}, "size must be a positive int"),
    ({"answer_formats": ["latex"]}, "unknown answer format"),
    ({"format_weight": -0.5}, "format_weight must be in"),
    ({"dataset": [{"messages": [{"role": "user", "content": "1+1?"}], "ground_truth": "2"}], "difficulty": 2},
     "cannot be combined with dataset"),
])
def test_bad_arguments_are_named(kwargs, message):
    with pytest.raises(ValueError, match=message):
        MathEnv(**kwargs)


def test_user_data_with_gsm8k_solutions(tmp_path):
    path = tmp_path / "gsm8k.jsonl"
    rows = [
        {"messages": [{"role": "user", "content": "Natalia sold 48 clips in April and half as many in May. How many in total?"}],
         "ground_truth": "In May she sold 48/2 = 24 clips.\nIn total 48+24 = 72 clips.\n#### 72"},
        {"messages": [{"role": "system", "content": "Reply in \\boxed{}."}, {"role": "user", "content": "Half of 1?"}],
         "ground_truth": "$\\frac{1}{2}$"},
        {"messages": [{"role": "user", "content": "3 + 4?"}], "ground_truth": 7},
    ]
    path.write_text("\n".join(json.dumps(r) for r in rows))
    env = gym.make("rft/Math-v0", dataset=str(path))
    check_env(env.unwrapped)
    messages, _ = env.reset(options={"index": 0})
    assert messages[0]["content"] == DEFAULT_SYSTEM_PROMPT
    assert env.step("She sold 72. <answer>72</answer>")[1] == 1.0
    messages, _ = env.reset(options={"index": 1})
    assert messages[0]["content"] == "Reply in \\boxed{}."  # the row's own system prompt is kept
    assert env.step("\\boxed{0.5}")[1] == 1.0
    assert len(MathEnv(dataset=str(path), size=2).dataset) == 2

    path.write_text(json.dumps({"messages": [{"role": "user", "content": "?"}]}) + "\n"
                    + json.dumps({"messages": [{"role": "user", "content": "?"}], "ground_truth": None}))
    with pytest.raises(DatasetError, match="row 0 has no 'ground_truth'"):
        MathEnv(dataset=str(path))
    with pytest.raises(DatasetError, match=r"row 0: ground_truth must be a number or a string, got None"):
        MathEnv(dataset=[{"messages": [{"role": "user", "content": "?"}], "ground_truth": None}])


@pytest.mark.parametrize("executor", ["thread", "process"])
def test_group_env_scores_replies(executor):
    envs = rftgym.make_group_env("rft/Math-v0", num_prompts=2, group_size=3, executor=executor,
                                 max_workers=2, difficulty=1, size=30)
    try:
        _, infos = envs.reset(seed=1)
        truths = [envs.envs[i].dataset[infos[i]["index"]]["ground_truth"] for i in range(6)]
        # the last reply needs math-verify, in a worker process started from the scoring worker
        replies = [f"<answer>{truths[0]}</answer>", "<answer>1e9</answer>", "no idea",
                   f"\\boxed{{{truths[3]}}}", f"The answer is {truths[4]}.",
                   f"<answer>\\sqrt{{{int(truths[5]) ** 2}}}</answer>"]
        _, rewards, terminated, _, infos = envs.step(replies)
        np.testing.assert_array_equal(rewards, [1, 0, 0, 1, 1, 1])
        assert terminated.all()
        assert [info["evaluation"]["metrics"]["formatted"] for info in infos] == [1, 1, 0, 1, 1, 1]
    finally:
        envs.close()
