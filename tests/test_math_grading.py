"""Math grading: answer extraction, equivalence and rewards, on hand-checked cases."""

from __future__ import annotations

import pickle
import threading
import time

import pytest

from rftgym import EvaluateResult, evaluate_safely
from rftgym.envs.math.equivalence import answer_from_ground_truth, answers_equivalent, normalize
from rftgym.envs.math.evaluator import MathEvaluator, math_evaluator
from rftgym.envs.math.extraction import extract_answer
from rftgym.envs.math.symbolic import get_verifier


def chat(reply):
    return [{"role": "user", "content": "What is 6 * 7?"}, {"role": "assistant", "content": reply}]


# --- extraction: (reply, expected text, expected format) ----------------------------------------
EXTRACTION_CASES = [
    ("<answer>42</answer>", "42", "answer_tag"),
    ("Let me think.\n<answer> 7 </answer>", "7", "answer_tag"),
    ("<answer>3</answer> wait, no: <answer>4</answer>", "4", "answer_tag"),
    ("<ANSWER>5</Answer>", "5", "answer_tag"),
    ("so $\\boxed{\\frac{1}{2}}$", "\\frac{1}{2}", "boxed"),
    ("the set is \\boxed{\\{1, 2\\}}.", "\\{1, 2\\}", "boxed"),
    ("first \\boxed{2}, then \\boxed{3}", "3", "boxed"),
    ("\\boxed{\\boxed{8}}", "\\boxed{8}", "boxed"),
    ("hence \\boxed 5", "5", "boxed"),
    ("[RESULT] 12 [/RESULT]", "12", "result_tag"),
    ("48 / 2 = 24\n#### 1,234\n", "1,234", "hashes"),
    ("So the answer is 3.5.", "3.5", "answer_is"),
    ("Final answer: $12", "$12", "answer_is"),
    ("The answer is 5 apples. Then we stop.", "5 apples", "answer_is"),
    ("<answer></answer> The answer is 4", "4", "answer_is"),  # an empty tag does not count
    ("<answer>1</answer> and \\boxed{2}", "1", "answer_tag"),  # default order: tags first
]


@pytest.mark.parametrize("reply,text,fmt", EXTRACTION_CASES)
def test_extraction(reply, text, fmt):
    found = extract_answer(reply)
    assert found is not None and (found.text, found.format) == (text, fmt)
    assert found.formatted


def test_extraction_order_and_last_number_fallback():
    found = extract_answer("<answer>1</answer> and \\boxed{2}", formats=("boxed", "answer_tag"))
    assert (found.text, found.format) == ("2", "boxed")
    assert extract_answer("I count 12, then 17 in total") is None
    found = extract_answer("I count 12, then 17 in total", allow_last_number=True)
    assert (found.text, found.format, found.formatted) == ("17", "last_number", False)
    assert extract_answer("<answer>5", allow_last_number=False) is None  # unclosed tag
    assert extract_answer("no digits at all", allow_last_number=True) is None
    with pytest.raises(ValueError, match=r"unknown answer format\(s\) \['latex'\]"):
        extract_answer("x", formats=("latex",))
    with pytest.raises(ValueError, match=r"choose from \['answer_tag', 'boxed', 'result_tag', 'hashes', 'answer_is'\]"):
        MathEvaluator(answer_formats=("latex",))


# --- equivalence: (expected, answer, equal) ------------------------------------------------------
EQUIVALENCE_CASES = [
    ("1234", "1,234", True),
    ("1234", "1\\,234", True),
    ("1234", "1{,}234", True),
    ("1000000", "1 000 000", True),
    ("12.5", "$12.50", True),
    ("12", "12 dollars", True),
    ("12", "\\$12.00", True),
    ("3.5", "3.5 km/h", True),
    ("36", "36 \\text{ cm}^2", True),
    ("90", "90^\\circ", True),
    ("25", "25%", True),
    ("0.25", "25\\%", True),
    ("25", "0.25", False),
    ("2500", "2.5e3", True),
    ("2500", "2.5 \\times 10^{3}", True),
    ("0.5", "1/2", True),
    ("0.5", "\\frac{1}{2}", True),
    ("1/2", "\\dfrac12", True),
    ("5/2", "2 1/2", True),
    ("5/2", "2\\frac{1}{2}", True),
    ("1/3", "0.33", True),
    ("1/3", "0.3", False),
    ("0.5", "0.51", False),
    ("42", "41", False),
    ("-3", "\u22123", True),
    ("5", "x = 5", True),
    ("7", "7x", False),
    ("7", "seven", False),
    ("5", "5 pi", False),
    ("7", "they have 7 books in total", True),
    ("1200", "It costs $1,200.", True),
    ("7", "not 7", False),
    ("7", "5 apples and 2 pears", False),
    ("1/23", "\\frac{12}{3}", False),
    ("100", "1e999999999", False),
    ("\\sqrt{2}", "2^{1/2}", True),
    ("\\{1,2\\}", "\\{2, 1\\}", True),
    ("(1,2)", "(2,1)", False),
    ("[0,1)", "[0, 1)", True),
    ("[0,1)", "(0,1]", False),
    ("x^2+2x+1", "(x+1)^2", True),
    ("\\frac{\\pi}{2}", "\\pi/2", True),
]


@pytest.mark.parametrize("expected,answer,equal", EQUIVALENCE_CASES)
def test_equivalence(expected, answer, equal):
    assert answers_equivalent(expected, answer).equal is equal


def test_plain_numbers_are_decided_in_process():
    for expected, answer in [("1234", "1,234"), ("0.5", "\\frac{1}{2}"), ("42", "41"), ("25", "25%")]:
        assert answers_equivalent(expected, answer, symbolic=False).method in ("number", "text")
    assert answers_equivalent("\\sqrt{2}", "2^{1/2}", symbolic=False).equal is False


def test_normalize_strips_wrappers():
    assert normalize("$\\boxed{\\text{12 apples}}$.") == "12 apples"
    assert normalize("\\left( 1, 2 \\right)") == "( 1, 2 )"


# --- ground truths ----------------------------------------------------------------------------
@pytest.mark.parametrize("ground_truth,text", [
    (42, "42"), (0.5, "0.5"), (2.50, "2.5"), ("  $\\frac{3}{4}$ ", "$\\frac{3}{4}$"),
    ("Natalia sold 48/2 = 24 clips in May.\nShe sold 48+24 = 72 clips.\n#### 72", "72"),
    ("so the result is \\boxed{\\frac{1}{3}}.", "\\frac{1}{3}"),
])
def test_ground_truth_forms(ground_truth, text):
    assert answer_from_ground_truth(ground_truth) == text


@pytest.mark.parametrize("bad,message", [
    (None, "must be a number or a string"), (True, "must be a number or a string"),
    ([1, 2], "got list"), (float("nan"), "must be finite"), ("#### ", "holds no answer"),
])
def test_bad_ground_truth_is_named(bad, message):
    with pytest.raises(ValueError, match=message):
        answer_from_ground_truth(bad)


# --- rewards ----------------------------------------------------------------------------------
def test_correct_answer_scores_one_with_metrics():
    result = math_evaluator(chat("6 * 7 = 42. <answer>42</answer>"), "42")
    assert isinstance(result, EvaluateResult)
    assert result.score == 1.0 and result.metrics == {"correct": 1.0, "formatted": 1.0}
    assert "correct" in result.reason


def test_wrong_answer_scores_zero_or_format_credit():
    assert math_evaluator(chat("<answer>41</answer>"), "42").score == 0.0
    partial = MathEvaluator(format_weight=0.2)(chat("<answer>41</answer>"), "42")
    assert partial.score == pytest.approx(0.2)
    assert partial.metrics == {"correct": 0.0, "formatted": 1.0}
    assert "expected '42'" in partial.reason
    # no format, no partial credit
    assert MathEvaluator(format_weight=0.2)(chat("it is 41"), "42").score == 0.0


def test_last_number_is_correct_but_not_formatted():
    lenient = MathEvaluator(allow_last_number=True, format_weight=0.3)
    right = lenient(chat("6 times 7 makes 42"), "42")
    assert right.score == 1.0 and right.metrics == {"correct": 1.0, "formatted": 0.0}
    wrong = lenient(chat("6 times 7 makes 43"), "42")
    assert wrong.score == 0.0 and wrong.metrics == {"correct": 0.0, "formatted": 0.0}
    strict = math_evaluator(chat("6 times 7 makes 42"), "42")
    assert strict.score == 0.0 and "no answer found" in strict.reason


def test_ground_truth_shapes_are_graded():
    gsm8k = "Natalia sold 48/2 = 24 clips in May.\nAltogether she sold 48+24 = 72 clips.\n#### 72"
    assert math_evaluator(chat("<answer>72</answer>"), gsm8k).score == 1.0
    assert math_evaluator(chat("\\boxed{0.75}"), "$\\frac{3}{4}$").score == 1.0
    assert math_evaluator(chat("<answer>1/2</answer>"), 0.5).score == 1.0
    assert math_evaluator(chat("<answer>1,000</answer>"), 1000).score == 1.0


def test_missing_or_odd_replies_score_zero():
    no_reply = math_evaluator([{"role": "user", "content": "6*7?"}], "42")
    assert no_reply.score == 0.0 and no_reply.reason == "no assistant reply to score"
    assert math_evaluator([{"role": "assistant", "content": None}], "42").score == 0.0
    parts = [{"role": "assistant", "content": [{"type": "text", "text": "<answer>42</answer>"}]}]
    assert math_evaluator(parts, "42").score == 1.0
    # a bad ground truth is reported, not crashed on, by the env's safe evaluation
    result = evaluate_safely(math_evaluator, chat("<answer>42</answer>"), None)
    assert result.score == 0.0 and "ground_truth must be a number or a string" in result.reason


def test_bad_settings_are_named():
    with pytest.raises(ValueError, match=r"format_weight must be in \[0, 1\), got 1.5"):
        MathEvaluator(format_weight=1.5)
    with pytest.raises(ValueError, match="symbolic_timeout must be a positive number"):
        MathEvaluator(symbolic_timeout=0)


def test_evaluator_pickles_with_its_settings():
    evaluator = pickle.loads(pickle.dumps(MathEvaluator(allow_last_number=True, format_weight=0.1)))
    assert evaluator.allow_last_number and evaluator.format_weight == 0.1
    assert evaluator(chat("so 42"), "42").score == 1.0


# --- hostile input ------------------------------------------------------------------------------
def test_garbage_reply_of_100kb_scores_zero_quickly():
    garbage = ("\\boxed{{{ <answer> [RESULT] 9^9^9 #### " * 3000)[:100_000]
    start = time.perf_counter()
    result = MathEvaluator(allow_last_number=True)(chat(garbage), "42")
    assert result.score == 0.0
    assert time.perf_counter() - start < 1.0
    huge_number = MathEvaluator()(chat("<answer>" + "9" * 100_000 + "</answer>"), "42")
    assert huge_number.score == 0.0 and "characters (limit 500)" in huge_number.reason


def test_hanging_math_verify_is_killed_and_the_next_check_works():
    evaluator = MathEvaluator(symbolic_timeout=1.0)
    get_verifier()  # (the worker may need a moment to start; that is not counted below)
    answers_equivalent("\\sqrt{2}", "2^{1/2}")
    start = time.perf_counter()
    result = evaluator(chat("<answer>9^{9^{9^{9}}}</answer>"), "1")
    elapsed = time.perf_counter() - start
    assert result.score == 0.0 and "timed out after 1 s" in result.reason
    assert elapsed < 5.0
    # the killed worker is replaced: a fresh symbolic check still gives a verdict
    assert answers_equivalent("x^2 - 1", "(x-1)(x+1)").equal is True


def test_symbolic_checks_work_from_threads():
    # math-verify's own signal-based timeout fails off the main thread; the worker process does not
    results = []

    def check(i):
        results.append(answers_equivalent(f"\\frac{{{i}}}{{\\sqrt{{2}}}}", f"{i}\\sqrt{{2}}/2").equal)

    threads = [threading.Thread(target=check, args=(i,)) for i in range(1, 7)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert results == [True] * 6
