"""rft/Code-v0: extraction, test specs, HumanEval (canonical solutions score 1.0), the train split,
user datasets and the environment itself."""

import concurrent.futures
import pickle

import pytest
from gymnasium.utils.env_checker import check_env

import rftgym
from rftgym.datasets import DatasetError
from rftgym.envs.code.env import CodeEnv
from rftgym.envs.code.grader import CodeEvaluator, CodeTask, assemble_program, extract_code, grade
from rftgym.envs.code.humaneval import load_problems
from rftgym.envs.code.pool import get_shared_pool
from rftgym.envs.code.problems import train_problems, validate_problems
from rftgym.envs.code.testspec import SpecError, convert_check, task_tests


@pytest.fixture(scope="module")
def pool():
    return get_shared_pool()


def fenced(code, lang="python"):
    return f"Here you go:\n```{lang}\n{code}```\nThis works because..."


# ---------------------------------------------------------------------------------------------
# extraction and assembly
# ---------------------------------------------------------------------------------------------

def test_extract_code_picks_the_block_defining_the_function():
    reply = "```python\nimport math\n```\ntext\n```python\ndef f(x):\n    return 1\n```\n```\ndef g():\n    pass\n```"
    assert extract_code(reply, "f") == "def f(x):\n    return 1"
    assert extract_code("```py\ndef f():\n    return 2\n", "f") == "def f():\n    return 2\n"  # unclosed fence
    assert extract_code("    return x + 1\n", "f") == "    return x + 1\n"  # raw completion
    two = "```python\ndef f():\n    return 1\n```\nBetter:\n```python\ndef f():\n    return 2\n```"
    assert extract_code(two, "f") == "def f():\n    return 2"


def test_assemble_program_joins_completions_and_full_functions():
    prompt = 'import math\n\ndef f(x):\n    """Doc."""\n'
    prog, err = assemble_program("    return math.floor(x)\n", prompt, "f")
    assert err == "" and prog == prompt + "    return math.floor(x)\n"
    prog, err = assemble_program("def f(x):\n    return math.ceil(x)\n", prompt, "f")
    assert err == "" and prog.startswith(prompt.rstrip()) and prog.endswith("return math.ceil(x)\n")
    assert assemble_program("", prompt, "f") == (None, "no code in the reply")
    prog, err = assemble_program("def f(x):\n    return (\n", prompt, "f")
    assert prog is None and err.startswith("SyntaxError")
    prog, err = assemble_program("Sure! Here it is:\ndef f(x):\n    return 3\n", None, "f")
    assert err == "" and prog == "def f(x):\n    return 3\n"


def test_syntax_errors_and_empty_replies_score_zero(pool):
    task = CodeTask.from_row({"tests": [{"input": "1", "output": "2"}]}, {"entry_point": "f"})
    res = grade(fenced("def f(x)\n    return x + 1\n"), task, pool)
    assert res.score == 0 and res.metrics["syntax_error"] == 1.0 and "SyntaxError" in res.reason
    res = grade("I don't know.", task, pool)
    assert res.score == 0 and res.metrics["syntax_error"] == 1.0
    res = grade("", task, pool)
    assert res.score == 0 and res.metrics["syntax_error"] == 0.0 and res.reason == "no code in the reply"


# ---------------------------------------------------------------------------------------------
# test specifications
# ---------------------------------------------------------------------------------------------

def test_pairs_in_both_forms_and_partial_credit(pool):
    gt = {"tests": [{"input": "[3, 1], 2", "output": "(1, 3)"},  # literal sources keep tuples
                    {"args": [[2, 2], 0], "expected": [2, 2]},  # JSON values
                    {"input": "[], 5", "output": "()"},
                    {"input": "[1.0], 0", "output": "[1.1]", "tolerance": 0.2}]}
    task = CodeTask.from_row(gt, {"entry_point": "srt"})
    good = "def srt(xs, k):\n    return tuple(sorted(xs)) if k else sorted(xs)\n"
    res = grade(fenced(good), task, pool)
    assert res.score == 1.0 and res.metrics == {"pass_all": 1.0, "passed": 4.0, "total": 4.0, "timeout": 0.0,
                                                "syntax_error": 0.0}
    wrong_type = "def srt(xs, k):\n    return sorted(xs)\n"  # a list is not the expected tuple
    res = grade(fenced(wrong_type), task, pool)
    assert res.metrics["passed"] == 2.0 and res.score == 0.5 and "srt([3, 1], 2): wrong value" in res.reason


@pytest.mark.parametrize("gt, message", [
    ({"tests": [{"input": "1", "output": "foo bar"}]}, r"tests\[0\].output is not a Python literal"),
    ({"tests": [{"in": "1"}]}, r"tests\[0\] needs 'input' and 'output'"),
    ({"tests": []}, "needs at least one test"),
    ({"tests": [{"args": 1, "expected": 2}]}, r"tests\[0\].args must be a list"),
    ({"check": "def nope(c):\n    pass\n"}, "must define exactly one function check"),
    ({"tests": [{"input": "1", "output": "1"}], "extra": 1}, r"unknown ground-truth key\(s\) \['extra'\]"),
    ("tests", "must be an object"),
])
def test_malformed_tests_are_named(gt, message):
    with pytest.raises(SpecError, match=message):
        task_tests(gt, "f")


def test_humaneval_checks_split_into_cases_or_run_whole():
    problems = {p["task_id"]: p for p in load_problems()}
    p0 = problems["HumanEval/0"]
    tests = convert_check(p0["test"], p0["prompt"], p0["entry_point"])
    assert len(tests.cases) == 7 and tests.check is None
    assert tests.cases[0].args == ([1.0, 2.0, 3.9, 4.0, 5.0, 2.2], 0.3)
    assert tests.cases[0].passes(True) and not tests.cases[0].passes(False)
    p2 = problems["HumanEval/2"]  # abs(candidate(x) - y) < 1e-6
    case = [c for c in convert_check(p2["test"], p2["prompt"], p2["entry_point"]).cases
            if c.predicate.source.startswith("abs(")][0]
    assert case.args == (1.33,) and case.passes(0.33 + 1e-9) and not case.passes(0.34)
    whole = [t for t, p in problems.items() if convert_check(p["test"], p["prompt"], p["entry_point"]).check]
    assert whole == ["HumanEval/32", "HumanEval/33", "HumanEval/38", "HumanEval/44", "HumanEval/50", "HumanEval/53"]


def test_a_user_check_function_runs_in_the_parent(pool):
    check = "def check(candidate):\n    for i in range(5):\n        assert candidate(i) == i * i\n"
    task = CodeTask.from_row({"check": check}, {"entry_point": "sq"})
    assert task.tests.check is not None and task.tests.total == 1
    assert grade(fenced("def sq(x):\n    return x * x\n"), task, pool).score == 1.0
    res = grade(fenced("def sq(x):\n    return x * x if x < 3 else 0\n"), task, pool)
    assert res.score == 0 and "assertion" in res.reason


# ---------------------------------------------------------------------------------------------
# HumanEval
# ---------------------------------------------------------------------------------------------

def _grade_all(pool, body_of):
    env_rows = [(p, CodeTask.from_row({"check": p["test"]}, p)) for p in load_problems()]
    with concurrent.futures.ThreadPoolExecutor(4) as ex:
        return list(ex.map(lambda pt: grade(body_of(pt[0]), pt[1], pool), env_rows))


def test_canonical_humaneval_solutions_all_score_one(pool):
    results = _grade_all(pool, lambda p: fenced(p["prompt"] + p["canonical_solution"]))
    assert len(results) == 164
    failed = [(p["task_id"], r.reason) for p, r in zip(load_problems(), results) if r.score != 1.0]
    assert failed == []
    # the raw HumanEval completion form (the body only, no fence) scores the same
    results = _grade_all(pool, lambda p: p["canonical_solution"])
    assert all(r.score == 1.0 for r in results)


def test_empty_and_wrong_bodies_score_zero(pool):
    assert all(r.score == 0 for r in _grade_all(pool, lambda p: ""))
    assert all(r.score == 0 for r in _grade_all(pool, lambda p: "    raise NotImplementedError\n"))
    # a stub returning None can match a few asserts that expect None or a falsy value
    # (partial credit), but never passes a whole problem
    results = _grade_all(pool, lambda p: "    return None\n")
    assert all(r.metrics["pass_all"] == 0 for r in results)


# ---------------------------------------------------------------------------------------------
# the train split
# ---------------------------------------------------------------------------------------------

def test_train_split_size_uniqueness_and_disjointness():
    problems = train_problems()
    assert len(problems) >= 500
    assert len({p.task_id for p in problems}) == len(problems)
    assert len({p.prompt for p in problems}) == len(problems)
    assert {p.topic for p in problems} == {"string", "list", "dict", "math", "parsing", "algorithm"}
    humaneval_names = {p["entry_point"] for p in load_problems()}
    assert not humaneval_names & {p.entry_point for p in problems}
    assert all(len(p.tests) == 8 and ">>> " in p.prompt for p in problems)


def test_every_train_problem_validates_in_the_sandbox(pool):
    """Build-time validation: each reference scores 1.0 and each trivial wrong solution does not."""
    assert validate_problems(pool=pool) == []


_HAND_CHECKED = [  # (task_id, args, expected) worked out by hand from the docstrings
    ("code-train/shift_letters/2", ("xyz abc!",), "abc def!"),
    ("code-train/run_length_encode/0", ("aaabcc",), "3a1b2c"),
    ("code-train/run_length_decode/0", ("2x3y1z",), "xxyyyz"),
    ("code-train/roman/0", ("MCMXCIV",), 1994),
    ("code-train/roman/1", ("IIII",), False),
    ("code-train/roman/1", ("XIV",), True),
    ("code-train/balanced/1", ("([)]",), False),
    ("code-train/balanced/1", ("{a[b](c)}",), True),
    ("code-train/coins/0", (5,), 4),
    ("code-train/string_dp/1", ("kitten", "sitting"), 3),
    ("code-train/recurrence/0", (10,), 123),  # Lucas numbers
    ("code-train/to_base/5", (255,), "ff"),
    ("code-train/number_theory/2", (12,), 7),
    ("code-train/number_theory/3", (5,), 11),
    ("code-train/digit_sum_base/0", (7,), 3),
    ("code-train/count_substring/2", ("aaaa",), 3),
    ("code-train/count_substring/3", ("aaaa",), 2),
    ("code-train/top_words/1", ("b a b c a d",), ["a", "b"]),
    ("code-train/clock/1", ("00:05",), "12:05 AM"),
    ("code-train/clock/1", ("13:30",), "1:30 PM"),
    ("code-train/round_to_multiple/2", (6,), 8),
    ("code-train/round_to_multiple/2", (-2,), 0),
    ("code-train/figurate/1", (3,), 12),
    ("code-train/grid/3", ([[1, 1, 0], [0, 0, 1], [1, 0, 1]],), 3),
    ("code-train/parse_pairs/0", ("a=1;b=2;a=3",), {"a": "3", "b": "2"}),
    ("code-train/upper_every_kth/1", ("abcdefg",), "abCdeFg"),
]


def test_train_references_match_hand_checked_answers(pool):
    by_id = {p.task_id: p for p in train_problems()}
    for task_id, args, expected in _HAND_CHECKED:
        problem = by_id[task_id]
        task = CodeTask.from_row({"tests": [{"args": list(args), "expected": expected}]},
                                 {"entry_point": problem.entry_point})
        assert grade(fenced(problem.reference), task, pool).score == 1.0, (task_id, args)


# ---------------------------------------------------------------------------------------------
# the environment
# ---------------------------------------------------------------------------------------------

def test_env_passes_the_gymnasium_checker_and_hides_the_tests():
    env = CodeEnv("test")
    check_env(env.unwrapped, skip_render_check=True)
    obs, info = env.reset(options={"task_id": "HumanEval/0"})
    assert info["entry_point"] == "has_close_elements" and "ground_truth" not in info
    assert "check(candidate)" not in str(obs) and "assert" not in str(obs)
    problem = load_problems()[0]
    _, reward, terminated, truncated, info = env.step(fenced(problem["prompt"] + problem["canonical_solution"]))
    assert reward == 1.0 and terminated and not truncated
    assert info["evaluation"]["metrics"]["total"] == 7.0


def test_env_splits_and_registry():
    train = CodeEnv()
    assert train.split == "train" and len(train.dataset) == len(train_problems())
    obs, info = train.reset(seed=3)
    assert obs[-1]["role"] == "user" and f"def {info['entry_point']}(" in obs[-1]["content"]
    assert len(CodeEnv("test").dataset) == 164
    with pytest.raises(ValueError, match="split must be one of"):
        CodeEnv("validation")
    env = rftgym.make_group_env("rft/Code-v0", num_prompts=1, group_size=1, split="test")
    assert env.dataset_size == 164
    env.close()


def test_user_rows_and_clear_errors_for_bad_rows(tmp_path):
    rows = [{"messages": [{"role": "user", "content": "Write add(a, b)."}], "entry_point": "add",
             "ground_truth": {"tests": [{"input": "1, 2", "output": "3"}, {"args": [0, 0], "expected": 0}],
                              "check": "def check(candidate):\n    assert candidate(2, 2) == 4\n"}}]
    env = CodeEnv(dataset=rows)
    env.reset()
    _, reward, *_ , info = env.step(fenced("def add(a, b):\n    return a + b\n"))
    assert reward == 1.0 and info["evaluation"]["metrics"]["total"] == 3.0
    env.reset()
    assert env.step(fenced("def add(a, b):\n    return a - b\n"))[1] == pytest.approx(1 / 3)
    bad = [dict(rows[0], task_id="t1"), dict(rows[0], task_id="t2", ground_truth={"tests": [{"input": "1,"}]})]
    with pytest.raises(DatasetError, match=r"row 1 \(task_id 't2'\): tests\[0\] needs 'input' and 'output'"):
        CodeEnv(dataset=bad)
    with pytest.raises(DatasetError, match="needs 'entry_point'"):
        CodeEnv(dataset=[{k: v for k, v in rows[0].items() if k != "entry_point"}])


def test_evaluator_is_picklable_and_group_scoring_is_concurrent():
    evaluator = CodeEvaluator({"timeout": 3.0})
    clone = pickle.loads(pickle.dumps(evaluator))
    assert clone.sandbox == evaluator.sandbox and clone.job_timeout is None
    problems = {p["task_id"]: p for p in load_problems()}
    env = rftgym.make_group_env(lambda: CodeEnv("test"), num_prompts=3, group_size=4)
    obs, infos = env.reset(seed=0)
    replies = []
    for i, info in enumerate(infos):
        p = problems[info["task_id"]]
        body = p["canonical_solution"] if i % 2 == 0 else "    return None\n"
        replies.append(fenced(p["prompt"] + body))
    _, rewards, terminated, _, infos = env.step(replies)
    assert list(rewards[0::2]) == [1.0] * 6 and all(r < 1.0 for r in rewards[1::2]) and terminated.all()
    env.close()
