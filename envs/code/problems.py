"""The train split: function-writing problems generated from parametrized families.

Each family is one kind of task (strings, lists, dicts, math, parsing, small algorithms) with a
docstring template, a reference solution and a trivially wrong solution; each parameter setting
is a separate problem. Test inputs come from a seeded generator; expected outputs are computed
here by the reference solution (our own trusted code) and stored as Python-literal sources.
Docstring examples use inputs that are not among the tests.

:func:`validate_problems` runs every reference (must score 1.0) and every wrong solution (must
score below 1.0) through the real sandbox; the test suite calls it, building problems does not.
"""

from __future__ import annotations

import ast
import copy
import functools
import random
import string
import textwrap
import zlib
from dataclasses import dataclass
from string import Template
from typing import Callable, Sequence

N_TESTS = 8
N_EXAMPLES = 2


@dataclass(frozen=True)
class Family:
    name: str  # also the function name
    params: str  # the parameter list, e.g. "s: str, k: int"
    returns: str
    doc: str  # $-template over the variant's parameters
    reference: str  # body source, $-template
    wrong: str  # body source of a trivially wrong solution
    inputs: Callable[[random.Random, dict], list[tuple]]
    variants: tuple[dict, ...] = ({},)
    topic: str = ""


@dataclass(frozen=True)
class Problem:
    task_id: str
    entry_point: str
    prompt: str  # signature and docstring, HumanEval style
    reference: str  # full source of the reference solution
    wrong: str  # full source of a wrong solution
    tests: tuple[dict, ...]  # {"input": "<args source>", "output": "<expected source>"}
    topic: str


FAMILIES: list[Family] = []


def family(name, params, returns, doc, reference, wrong, variants=({},), topic=""):
    """Register a family; the decorated function generates test inputs from (rng, params)."""
    def register(gen):
        FAMILIES.append(Family(name, params, returns, textwrap.dedent(doc).strip(),
                               textwrap.dedent(reference).strip(), textwrap.dedent(wrong).strip(),
                               gen, tuple(variants), topic))
        return gen
    return register


# ---------------------------------------------------------------------------------------------
# random input helpers
# ---------------------------------------------------------------------------------------------

_WORDS = ("apple banana cherry delta echo fox grape hotel india juliet kilo lemon mango nectar "
          "olive pear quartz river stone tiger umbra violet walnut xenon yellow zebra sun moon star "
          "sky sea cat dog bird fish tree leaf rock sand wind rain snow ice fire gold iron a an to is of it go").split()


def word(rng):
    return rng.choice(_WORDS)


def text(rng, lo=0, hi=7, caps=0.2, punct=0.15):
    out = []
    for _ in range(rng.randint(lo, hi)):
        w = word(rng)
        if rng.random() < caps:
            w = w.capitalize()
        if rng.random() < punct:
            w += rng.choice(".,!?")
        out.append(w)
    return " ".join(out)


def chars(rng, alphabet, lo=0, hi=12):
    return "".join(rng.choice(alphabet) for _ in range(rng.randint(lo, hi)))


def ints(rng, lo=-20, hi=20, nlo=0, nhi=10):
    return [rng.randint(lo, hi) for _ in range(rng.randint(nlo, nhi))]


def n_cases(rng, make, fixed=()):
    """Fixed edge cases first (they become tests), then random ones; N_TESTS + N_EXAMPLES in all,
    the last N_EXAMPLES of which become the docstring examples."""
    cases = [tuple(c) for c in fixed]
    while len(cases) < N_EXAMPLES + N_TESTS:
        cases.append(make())
    return cases[: N_EXAMPLES + N_TESTS]


# ---------------------------------------------------------------------------------------------
# strings
# ---------------------------------------------------------------------------------------------

@family("shift_letters", "s: str", "str",
        """Shift every lowercase letter of s forward $k step(s) in the alphabet (so 'a' becomes
        '$a_to'), wrapping around from 'z' to 'a'. All other characters stay as they are.""",
        "return ''.join(chr((ord(c) - 97 + $k) % 26 + 97) if 'a' <= c <= 'z' else c for c in s)",
        "return s", [{"k": k, "a_to": chr(97 + k)} for k in range(1, 26) if k != 21], "string")
def _(rng, p):
    return n_cases(rng, lambda: (text(rng, 1, 5),), [("",), ("xyz abc",)])


@family("repeat_chars", "s: str", "str",
        "Return s with every character repeated $n times in a row.",
        "return ''.join(c * $n for c in s)", "return s * $n",
        [{"n": n} for n in range(2, 7)], "string")
def _(rng, p):
    return n_cases(rng, lambda: (chars(rng, "abc xyz!", 1, 8),), [("",)])


@family("upper_every_kth", "s: str", "str",
        """Return s with the characters at positions $k, 2*$k, 3*$k, ... (counting the first
        character as position 1) converted to upper case; the rest unchanged.""",
        "return ''.join(c.upper() if (i + 1) % $k == 0 else c for i, c in enumerate(s))",
        "return s.upper()", [{"k": k} for k in range(2, 8)], "string")
def _(rng, p):
    return n_cases(rng, lambda: (chars(rng, string.ascii_lowercase + " ", 3, 15),), [("",)])


@family("remove_chars", "s: str", "str",
        "Return s with every occurrence of any of the characters in $shown removed.",
        "return ''.join(c for c in s if c not in $chars)", "return s",
        [{"chars": repr(c), "shown": repr(c)} for c in ("aeiou", "xyz", " ", "0123456789", ".,!?", "abc", "AEIOU", "st")],
        "string")
def _(rng, p):
    alphabet = "abcdefstuxyzAEIO .,!?0129"
    return n_cases(rng, lambda: (chars(rng, alphabet, 4, 16),), [("",)])


@family("count_char", "s: str", "int",
        "Count how many times the letter '$c' occurs in s, ignoring case.",
        "return s.lower().count('$c')", "return s.count('$c') + 1",
        [{"c": c} for c in "aeiorstnlmxzbcdfg"], "string")
def _(rng, p):
    return n_cases(rng, lambda: (text(rng, 1, 6, caps=0.5),), [("",)])


_WORD_OPS = {
    "reverse the order of the words": "return ' '.join(s.split()[::-1])",
    "reverse the letters of each word, keeping the word order": "return ' '.join(w[::-1] for w in s.split())",
    "capitalize each word (first letter upper case, the rest lower case)": "return ' '.join(w.capitalize() for w in s.split())",
    "sort the words alphabetically (by plain string comparison)": "return ' '.join(sorted(s.split()))",
    "sort the words by length, keeping the original order among words of equal length": "return ' '.join(sorted(s.split(), key=len))",
    "drop every word that already appeared earlier in s": (
        "seen, out = set(), []\nfor w in s.split():\n    if w not in seen:\n        seen.add(w)\n        out.append(w)\nreturn ' '.join(out)"),
    "keep only the words with an even number of characters": "return ' '.join(w for w in s.split() if len(w) % 2 == 0)",
    "swap the first and the last word (a single word or no words: unchanged)": (
        "w = s.split()\nif len(w) > 1:\n    w[0], w[-1] = w[-1], w[0]\nreturn ' '.join(w)"),
}


@family("transform_words", "s: str", "str",
        """Split s into words on whitespace, $op, and return the words joined by single spaces.""",
        "$body", "return s", [{"op": op, "body": body} for op, body in _WORD_OPS.items()], "string")
def _(rng, p):
    return n_cases(rng, lambda: (text(rng, 2, 7, caps=0.3, punct=0.0).replace(" ", rng.choice([" ", "  "])),),
                   [("",), ("one",), ("sun moon sun",)])


@family("long_words", "s: str", "list",
        "Return the list of words of s (split on whitespace) that have more than $n characters, in order.",
        "return [w for w in s.split() if len(w) > $n]", "return s.split()",
        [{"n": n} for n in range(2, 8)], "string")
def _(rng, p):
    return n_cases(rng, lambda: (text(rng, 2, 8, punct=0.0),), [("",)])


@family("center_text", "s: str", "str",
        """Return s centered in a field of width $w, padded with '$fill' exactly the way Python's
        str.center does it; s is returned unchanged when it is longer than $w.""",
        "return s.center($w, '$fill')", "return s",
        [{"w": w, "fill": f} for w in range(5, 13) for f in "*-."], "string")
def _(rng, p):
    return n_cases(rng, lambda: (chars(rng, "abcde", 0, 14),), [("",), ("ab",)])


@family("run_length_encode", "s: str", "str",
        """Run-length encode s: each maximal run of the same character becomes the run length
        followed by the character, e.g. 'aaab' -> '3a1b'.""",
        """
        out, i = [], 0
        while i < len(s):
            j = i
            while j < len(s) and s[j] == s[i]:
                j += 1
            out.append(f"{j - i}{s[i]}")
            i = j
        return ''.join(out)
        """, "return s", topic="string")
def _(rng, p):
    return n_cases(rng, lambda: ("".join(rng.choice("abc") * rng.randint(1, 4) for _ in range(rng.randint(1, 6))),), [("",)])


@family("run_length_decode", "s: str", "str",
        """Decode a run-length encoding such as '3a12b1c': each count (one or more digits) is
        followed by the character to repeat, so '3a12b1c' -> 'aaa' + 'b' * 12 + 'c'.""",
        """
        out, num = [], ''
        for c in s:
            if c.isdigit():
                num += c
            else:
                out.append(c * int(num))
                num = ''
        return ''.join(out)
        """, "return s", topic="string")
def _(rng, p):
    return n_cases(rng, lambda: ("".join(f"{rng.randint(1, 12)}{rng.choice('xyz')}" for _ in range(rng.randint(1, 5))),), [("",)])


@family("palindrome_text", "s: str", "bool",
        "Return True if s reads the same backwards$how, else False.",
        "$body", "return True",
        [{"how": " when only letters and digits are kept and case is ignored",
          "body": "t = [c.lower() for c in s if c.isalnum()]\nreturn t == t[::-1]"}], "string")
def _(rng, p):
    def make():
        half = chars(rng, "abAB1 ,", 1, 5)
        return (half + rng.choice(["", "x", "Z"]) + half[::-1],) if rng.random() < 0.5 else (chars(rng, "abAB1 ,", 2, 8),)
    return n_cases(rng, make, [("",), ("abca",), ("A man, a plan, a canal: Panama",)])


@family("replace_all", "s: str", "str",
        "Return s with every (non-overlapping, left to right) occurrence of '$old' replaced by '$new'.",
        "return s.replace('$old', '$new')", "return s",
        [{"old": o, "new": n} for o, n in (("a", "4"), ("e", "3"), ("cat", "dog"), ("  ", " "), ("ab", "ba"), ("o", "0"), ("is", "IS"))],
        "string")
def _(rng, p):
    return n_cases(rng, lambda: (chars(rng, ["a", "e", "cat", " ", "ab", "o", "is", "x"], 2, 9),), [("",), (p["old"] * 2 + "x",)])


@family("rotate_left", "s: str", "str",
        "Rotate s left by $k characters (the first $k characters move to the end); for strings shorter than $k, rotate by $k modulo the length. The empty string stays empty.",
        "if not s:\n    return s\nk = $k % len(s)\nreturn s[k:] + s[:k]", "return s[::-1]",
        [{"k": k} for k in range(1, 13)], "string")
def _(rng, p):
    return n_cases(rng, lambda: (chars(rng, "abcdefg", 1, 12),), [("",), ("ab",)])


@family("alternate_case", "s: str", "str",
        """Return s with its letters alternating between $first case and the other case, starting with
        $first case for the first letter; non-letters are kept and do not count.""",
        "out, up = [], $up\nfor c in s:\n    if c.isalpha():\n        out.append(c.upper() if up else c.lower())\n        up = not up\n    else:\n        out.append(c)\nreturn ''.join(out)",
        "return s.swapcase()", [{"first": "upper", "up": True}, {"first": "lower", "up": False}], "string")
def _(rng, p):
    return n_cases(rng, lambda: (text(rng, 1, 4, caps=0.5),), [("",)])


@family("first_words", "s: str", "str",
        "Return the first $n words of s (split on whitespace) joined by single spaces, or all of them if there are fewer.",
        "return ' '.join(s.split()[:$n])", "return s", [{"n": n} for n in range(1, 9)], "string")
def _(rng, p):
    return n_cases(rng, lambda: (text(rng, 0, 12),), [("",), (" ".join(_WORDS[:10]),)])


@family("case_convert", "s: str", "str", "$doc", "$body", "return s",
        [{"doc": "Convert a snake_case identifier to camelCase, e.g. 'max_value_x' -> 'maxValueX'.",
          "body": "parts = s.split('_')\nreturn parts[0] + ''.join(p.capitalize() for p in parts[1:])"},
         {"doc": "Convert a camelCase identifier to snake_case, e.g. 'maxValueX' -> 'max_value_x'.",
          "body": "return ''.join('_' + c.lower() if c.isupper() else c for c in s)"},
         {"doc": "Return the acronym of s: the upper-cased first letters of its words, e.g. 'portable network graphics' -> 'PNG'.",
          "body": "return ''.join(w[0].upper() for w in s.split())"}], "string")
def _(rng, p):
    if "snake_case identifier to" in p["doc"]:
        return n_cases(rng, lambda: ("_".join(word(rng) for _ in range(rng.randint(1, 4))),), [("x",)])
    if "camelCase identifier" in p["doc"]:
        return n_cases(rng, lambda: (word(rng) + "".join(word(rng).capitalize() for _ in range(rng.randint(0, 3))),), [("x",)])
    return n_cases(rng, lambda: (text(rng, 1, 5, caps=0.0, punct=0.0),), [("",)])


@family("count_substring", "s: str", "int",
        "Count the occurrences of '$sub' in s, $how.",
        "$body", "return 0",
        [{"sub": sub, "how": how, "body": body} for sub in ("ab", "aa", "aba", "xyx")
         for how, body in (("counting overlapping occurrences",
                            f"return sum(1 for i in range(len(s)) if s.startswith('{sub}', i))"),
                           ("not counting overlapping occurrences (scan left to right)", f"return s.count('{sub}')"))],
        "string")
def _(rng, p):
    return n_cases(rng, lambda: (chars(rng, "abxy", 3, 14),), [(p["sub"] * 3,)])


@family("mask_all_but_last", "s: str", "str",
        "Replace every character of s except the last $k with '#'.",
        "return '#' * max(0, len(s) - $k) + s[-$k:] if s else s", "return s",
        [{"k": k} for k in range(1, 9)], "string")
def _(rng, p):
    return n_cases(rng, lambda: (chars(rng, "0123456789", 0, 16),), [("",), ("12",)])


@family("keep_kind", "s: str", "str", "Return only the $kind of s, in order.",
        "return ''.join(c for c in s if c.$method())", "return s",
        [{"kind": "digits", "method": "isdigit"}, {"kind": "letters", "method": "isalpha"},
         {"kind": "upper-case letters", "method": "isupper"}, {"kind": "whitespace characters", "method": "isspace"}], "string")
def _(rng, p):
    return n_cases(rng, lambda: (chars(rng, "aB3 x9Z!\t", 2, 14),), [("",)])


@family("nth_word", "s: str", "str",
        "Return word number $n of s (words split on whitespace, the first word is number 1), or '' if s has fewer words.",
        "w = s.split()\nreturn w[$n - 1] if len(w) >= $n else ''", "return s.split()[-1] if s.split() else ''",
        [{"n": n} for n in range(1, 8)], "string")
def _(rng, p):
    return n_cases(rng, lambda: (text(rng, 0, 7),), [("",)])


@family("replace_every_kth", "s: str", "str",
        "Replace the characters at positions $k, 2*$k, ... (1-based) of s with '$c'.",
        "return ''.join('$c' if (i + 1) % $k == 0 else ch for i, ch in enumerate(s))", "return s",
        [{"k": k, "c": c} for k in range(2, 6) for c in "*_"], "string")
def _(rng, p):
    return n_cases(rng, lambda: (chars(rng, "abcdef", 1, 14),), [("",)])


# ---------------------------------------------------------------------------------------------
# lists
# ---------------------------------------------------------------------------------------------

@family("sum_divisible", "nums: list", "int",
        "Return the sum of the elements of nums that are divisible by $k (0 for none).",
        "return sum(x for x in nums if x % $k == 0)", "return sum(nums)",
        [{"k": k} for k in range(2, 13)], "list")
def _(rng, p):
    return n_cases(rng, lambda: (ints(rng, -30, 60, 1, 10),), [([],)])


@family("count_greater", "nums: list", "int",
        "Count the elements of nums that are strictly greater than $t.",
        "return sum(1 for x in nums if x > $t)", "return len(nums)",
        [{"t": t} for t in range(-6, 15, 2)] + [{"t": t} for t in (20, 25, 50, 100)], "list")
def _(rng, p):
    return n_cases(rng, lambda: (ints(rng, -20, 60, 1, 12),), [([],)])


@family("rotate_right", "items: list", "list",
        "Rotate items right by $k positions (the last $k elements move to the front, cyclically); an empty list stays empty.",
        "if not items:\n    return []\nk = $k % len(items)\nreturn items[-k:] + items[:-k] if k else list(items)",
        "return items[::-1]", [{"k": k} for k in range(1, 10)], "list")
def _(rng, p):
    return n_cases(rng, lambda: (ints(rng, 0, 9, 1, 11),), [([],), ([1, 2],)])


@family("chunks", "items: list", "list",
        "Split items into consecutive chunks of $k elements (the last chunk may be shorter) and return the list of chunks.",
        "return [items[i:i + $k] for i in range(0, len(items), $k)]", "return [items]",
        [{"k": k} for k in range(2, 11)], "list")
def _(rng, p):
    return n_cases(rng, lambda: (ints(rng, 0, 9, 1, 15),), [([],)])


@family("running", "nums: list", "list",
        "Return the running $what of nums: element i is the $what of nums[0..i].",
        "out, acc = [], None\nfor x in nums:\n    acc = x if acc is None else $op\n    out.append(acc)\nreturn out",
        "return list(nums)",
        [{"what": "sum", "op": "acc + x"}, {"what": "bitwise XOR", "op": "acc ^ x"},
         {"what": "minimum", "op": "min(acc, x)"}, {"what": "product", "op": "acc * x"}], "list")
def _(rng, p):
    return n_cases(rng, lambda: (ints(rng, -5, 9, 2, 8),), [([],)])


@family("nth_smallest_distinct", "nums: list", "object",
        "Return the ${nth}smallest distinct value in nums, or None if there are fewer than $n distinct values.",
        "d = sorted(set(nums))\nreturn d[$n - 1] if len(d) >= $n else None", "return max(nums) if nums else None",
        [{"n": n, "nth": ("", "second ", "third ", "fourth ", "fifth ")[n - 1]} for n in range(1, 6)], "list")
def _(rng, p):
    return n_cases(rng, lambda: (ints(rng, 0, 12, 1, 10),), [([],), ([3, 3, 3],)])


@family("list_op", "nums: list", "list", "$doc", "$body", "return list(nums)",
        [{"doc": "Remove repeated values from nums, keeping the first occurrence of each, in order.",
          "body": "seen, out = set(), []\nfor x in nums:\n    if x not in seen:\n        seen.add(x)\n        out.append(x)\nreturn out"},
         {"doc": "Return the differences between consecutive elements: [nums[1] - nums[0], nums[2] - nums[1], ...].",
          "body": "return [b - a for a, b in zip(nums, nums[1:])]"},
         {"doc": "Swap each pair of neighbours: elements 0 and 1, 2 and 3, ...; an odd last element stays in place.",
          "body": "out = list(nums)\nfor i in range(0, len(out) - 1, 2):\n    out[i], out[i + 1] = out[i + 1], out[i]\nreturn out"},
         {"doc": "Move every zero to the end of the list, keeping the order of the other elements.",
          "body": "return [x for x in nums if x != 0] + [x for x in nums if x == 0]"},
         {"doc": "Move every zero to the front of the list, keeping the order of the other elements.",
          "body": "return [x for x in nums if x == 0] + [x for x in nums if x != 0]"},
         {"doc": "Return [negatives, zeros, positives] as three lists, each keeping the original order.",
          "body": "return [[x for x in nums if x < 0], [x for x in nums if x == 0], [x for x in nums if x > 0]]"},
         {"doc": "Return the elements that appear more than once, each listed once, in order of first appearance.",
          "body": "out = []\nfor i, x in enumerate(nums):\n    if x in nums[i + 1:] and x not in out:\n        out.append(x)\nreturn out"}],
        "list")
def _(rng, p):
    return n_cases(rng, lambda: (ints(rng, -3, 5, 1, 10),), [([],), ([0, 0, 1],)])


@family("moving_sum", "nums: list", "list",
        "Return the sums of every window of $k consecutive elements of nums, left to right ([] if nums has fewer than $k elements).",
        "return [sum(nums[i:i + $k]) for i in range(len(nums) - $k + 1)]", "return [sum(nums)]",
        [{"k": k} for k in range(2, 8)], "list")
def _(rng, p):
    return n_cases(rng, lambda: (ints(rng, -9, 9, 0, 10),), [([],), ([1, 2, 3, 4, 5, 6],)])


@family("every_kth", "items: list", "list",
        "Return the elements at indices 0, $k, 2*$k, ... of items.",
        "return items[::$k]", "return items[::2] if $k != 2 else items[1::2]",
        [{"k": k} for k in range(2, 9)], "list")
def _(rng, p):
    return n_cases(rng, lambda: (ints(rng, 0, 50, 2, 14),), [([],)])


@family("keep_multiples", "nums: list", "list",
        "Return the elements of nums that are ${how}multiples of $k, in order.",
        "return [x for x in nums if (x % $k == 0) == $keep]", "return list(nums)",
        [{"k": k, "how": how, "keep": keep} for k in range(2, 8) for how, keep in (("", True), ("not ", False))], "list")
def _(rng, p):
    return n_cases(rng, lambda: (ints(rng, -20, 40, 2, 10),), [([],)])


@family("clamp_all", "nums: list", "list",
        "Clamp every element of nums into the range [$lo, $hi] (values below $lo become $lo, above $hi become $hi).",
        "return [min(max(x, $lo), $hi) for x in nums]", "return list(nums)",
        [{"lo": lo, "hi": hi} for lo, hi in ((0, 10), (-5, 5), (1, 3), (-10, 0), (2, 20), (0, 1))], "list")
def _(rng, p):
    return n_cases(rng, lambda: (ints(rng, -25, 25, 1, 10),), [([],)])


@family("affine", "nums: list", "list",
        "Return [$a * x + $b for each x in nums].",
        "return [$a * x + $b for x in nums]", "return [x + $b for x in nums]",
        [{"a": a, "b": b} for a in (2, 3, -1, 5, 10) for b in (0, 1, -4, 7)], "list")
def _(rng, p):
    return n_cases(rng, lambda: (ints(rng, -10, 10, 1, 8),), [([],)])


@family("list_stat", "nums: list", "object", "$doc", "$body", "return None",
        [{"doc": "Return the largest sum of a non-empty run of consecutive elements of nums (nums is non-empty).",
          "body": "best = cur = nums[0]\nfor x in nums[1:]:\n    cur = max(x, cur + x)\n    best = max(best, cur)\nreturn best"},
         {"doc": "Return the length of the longest run of strictly increasing consecutive elements (0 for an empty list).",
          "body": "best = cur = 0\nfor i, x in enumerate(nums):\n    cur = cur + 1 if i and x > nums[i - 1] else 1\n    best = max(best, cur)\nreturn best"},
         {"doc": "Count the pairs of indices i < j with nums[i] > nums[j].",
          "body": "return sum(1 for i in range(len(nums)) for j in range(i + 1, len(nums)) if nums[i] > nums[j])"},
         {"doc": "Return the index of the first occurrence of the largest element, or -1 for an empty list.",
          "body": "return nums.index(max(nums)) if nums else -1"},
         {"doc": "Return the index of the last occurrence of the smallest element, or -1 for an empty list.",
          "body": "return len(nums) - 1 - nums[::-1].index(min(nums)) if nums else -1"},
         {"doc": "Return the second largest distinct value, or None if there is none.",
          "body": "d = sorted(set(nums))\nreturn d[-2] if len(d) > 1 else None"},
         {"doc": "Return the most frequent value (the smallest one on a tie), or None for an empty list.",
          "body": "return min(set(nums), key=lambda v: (-nums.count(v), v)) if nums else None"},
         {"doc": "Return the alternating sum nums[0] - nums[1] + nums[2] - ...",
          "body": "return sum(x if i % 2 == 0 else -x for i, x in enumerate(nums))"},
         {"doc": "Return the product of the non-zero elements (1 if there are none).",
          "body": "out = 1\nfor x in nums:\n    if x:\n        out *= x\nreturn out"},
         {"doc": "Return the sum of the digits of all elements (use absolute values), e.g. [12, -3] -> 6.",
          "body": "return sum(int(d) for x in nums for d in str(abs(x)))"}], "list")
def _(rng, p):
    nonempty = "non-empty" in p["doc"]
    return n_cases(rng, lambda: (ints(rng, -9, 12, 1 if nonempty else 0, 9),), [([5],)] if nonempty else [([],), ([2, 2, 1, 1],)])


@family("sum_of_powers", "nums: list", "int",
        "Return the sum of x ** $p over the elements x of nums.",
        "return sum(x ** $p for x in nums)", "return sum(nums) ** $p",
        [{"p": p} for p in range(2, 8)], "list")
def _(rng, p):
    return n_cases(rng, lambda: (ints(rng, -6, 6, 1, 6),), [([],)])


@family("pair_lists", "a: list, b: list", "list", "$doc", "$body", "return a + b",
        [{"doc": "Interleave a and b (a[0], b[0], a[1], b[1], ...), appending what is left of the longer list.",
          "body": "out = []\nfor i in range(max(len(a), len(b))):\n    if i < len(a):\n        out.append(a[i])\n    if i < len(b):\n        out.append(b[i])\nreturn out"},
         {"doc": "Return the element-wise sums a[i] + b[i] for the indices both lists have.",
          "body": "return [x + y for x, y in zip(a, b)]"},
         {"doc": "Merge two sorted lists into one sorted list.",
          "body": "return sorted(a + b)"},
         {"doc": "Return the sorted multiset intersection of a and b: each value as many times as it occurs in both.",
          "body": "out = []\nrest = list(b)\nfor x in a:\n    if x in rest:\n        rest.remove(x)\n        out.append(x)\nreturn sorted(out)"},
         {"doc": "Return the sorted list of distinct values that occur in exactly one of a and b.",
          "body": "return sorted(set(a) ^ set(b))"},
         {"doc": "Return the elements of a that do not occur in b, in order (keeping repeats).",
          "body": "return [x for x in a if x not in b]"}], "list")
def _(rng, p):
    srt = "sorted lists" in p["doc"]
    def make():
        a, b = ints(rng, 0, 9, 0, 7), ints(rng, 0, 9, 0, 7)
        return (sorted(a), sorted(b)) if srt else (a, b)
    return n_cases(rng, make, [([], [])])


@family("flatten_once", "items: list", "list",
        "Flatten one level: items is a list of lists; return their elements concatenated in order.",
        "return [x for sub in items for x in sub]", "return items", topic="list")
def _(rng, p):
    return n_cases(rng, lambda: ([ints(rng, 0, 9, 0, 4) for _ in range(rng.randint(0, 5))],), [([],)])


# ---------------------------------------------------------------------------------------------
# dicts
# ---------------------------------------------------------------------------------------------

@family("dict_from_text", "s: str", "dict", "$doc", "$body", "return {}",
        [{"doc": "Return a dict mapping each lower-cased word of s (split on whitespace) to its number of occurrences.",
          "body": "out = {}\nfor w in s.lower().split():\n    out[w] = out.get(w, 0) + 1\nreturn out"},
         {"doc": "Group the words of s by length: return a dict mapping each length to the list of words of that length, in order.",
          "body": "out = {}\nfor w in s.split():\n    out.setdefault(len(w), []).append(w)\nreturn out"},
         {"doc": "Group the words of s by their first letter (lower-cased): a dict from letter to the list of words, in order.",
          "body": "out = {}\nfor w in s.split():\n    out.setdefault(w[0].lower(), []).append(w)\nreturn out"},
         {"doc": "Return a dict mapping each letter of s (lower-cased; other characters ignored) to its count.",
          "body": "out = {}\nfor c in s.lower():\n    if c.isalpha():\n        out[c] = out.get(c, 0) + 1\nreturn out"}], "dict")
def _(rng, p):
    return n_cases(rng, lambda: (text(rng, 1, 8, caps=0.3, punct=0.0),), [("",)])


@family("dict_op", "d: dict", "object", "$doc", "$body", "return d",
        [{"doc": "Invert the dict d (its values are distinct): return a dict mapping each value to its key.",
          "body": "return {v: k for k, v in d.items()}"},
         {"doc": "Return the list of keys of d sorted by their values, ascending (ties: by key).",
          "body": "return sorted(d, key=lambda k: (d[k], k))"},
         {"doc": "Return the list of keys of d sorted by their values, descending (ties: by key, ascending).",
          "body": "return sorted(d, key=lambda k: (-d[k], k))"},
         {"doc": "Return a dict mapping each value of d to how many keys have it.",
          "body": "out = {}\nfor v in d.values():\n    out[v] = out.get(v, 0) + 1\nreturn out"},
         {"doc": "Return the sum of the values of d whose keys have an even length.",
          "body": "return sum(v for k, v in d.items() if len(k) % 2 == 0)"}], "dict")
def _(rng, p):
    def make():
        keys = rng.sample(_WORDS, rng.randint(1, 6))
        vals = rng.sample(range(-5, 30), len(keys)) if "distinct" in p["doc"] else [rng.randint(0, 5) for _ in keys]
        return (dict(zip(keys, vals)),)
    return n_cases(rng, make, [({},)])


@family("keys_above", "d: dict", "list",
        "Return the sorted list of keys of d whose value is greater than $t.",
        "return sorted(k for k, v in d.items() if v > $t)", "return sorted(d)",
        [{"t": t} for t in range(0, 15)], "dict")
def _(rng, p):
    return n_cases(rng, lambda: ({w: rng.randint(-2, 12) for w in rng.sample(_WORDS, rng.randint(1, 7))},), [({},)])


@family("merge_counts", "a: dict, b: dict", "dict",
        "Merge two dicts of counts: the result has every key of a or b, with the values added ($missing).",
        "out = dict(a)\nfor k, v in b.items():\n    out[k] = out.get(k, 0) + v\nreturn $post", "return {**a, **b}",
        [{"missing": "a key missing from one dict counts as 0 there", "post": "out"},
         {"missing": "then drop the keys whose total is 0", "post": "{k: v for k, v in out.items() if v != 0}"}], "dict")
def _(rng, p):
    def make():
        return ({w: rng.randint(-3, 5) for w in rng.sample(_WORDS[:10], rng.randint(0, 5))},
                {w: rng.randint(-3, 5) for w in rng.sample(_WORDS[:10], rng.randint(0, 5))})
    return n_cases(rng, make, [({}, {}), ({"a": 1}, {"a": 2})])


@family("keys_with_prefix", "d: dict", "dict",
        "Return a new dict with only the items of d whose key starts with '$prefix'.",
        "return {k: v for k, v in d.items() if k.startswith('$prefix')}", "return dict(d)",
        [{"prefix": c} for c in "abcst"], "dict")
def _(rng, p):
    return n_cases(rng, lambda: ({w: rng.randint(0, 9) for w in rng.sample(_WORDS, rng.randint(1, 8))},), [({},)])


@family("top_words", "s: str", "list",
        """Return the $k most frequent lower-cased words of s (split on whitespace), most frequent
        first, ties broken alphabetically; fewer if s has fewer distinct words.""",
        "c = {}\nfor w in s.lower().split():\n    c[w] = c.get(w, 0) + 1\nreturn sorted(c, key=lambda w: (-c[w], w))[:$k]",
        "return s.lower().split()[:$k]", [{"k": k} for k in range(1, 6)], "dict")
def _(rng, p):
    return n_cases(rng, lambda: (" ".join(rng.choice(_WORDS[:8]) for _ in range(rng.randint(3, 14))),), [("",)])


# ---------------------------------------------------------------------------------------------
# math
# ---------------------------------------------------------------------------------------------

@family("digit_sum_base", "n: int", "int",
        "Return the sum of the digits of the non-negative integer n written in base $b.",
        "total = 0\nwhile n:\n    total += n % $b\n    n //= $b\nreturn total", "return sum(int(d) for d in str(n))",
        [{"b": b} for b in range(2, 17) if b != 10], "math")
def _(rng, p):
    return n_cases(rng, lambda: (rng.randint(0, 10 ** rng.randint(1, 6)),), [(0,), (p["b"] ** 3,)])


@family("to_base", "n: int", "str",
        "Return the non-negative integer n written in base $b as a string, using the digits 0-9 and then the lowercase letters a, b, c, ... for 10, 11, 12, ... (no prefix; '0' for zero).",
        "digits = '0123456789abcdefghijklmnopqrstuvwxyz'\nif n == 0:\n    return '0'\nd = ''\nwhile n:\n    d = digits[n % $b] + d\n    n //= $b\nreturn d", "return str(n)",
        [{"b": b} for b in range(11, 19)], "math")
def _(rng, p):
    return n_cases(rng, lambda: (rng.randint(0, 5000),), [(0,), (p["b"],)])


@family("recurrence", "n: int", "int",
        """The sequence a is defined by a(0) = $a0, a(1) = $a1 and a(n) = $p * a(n-1) + $q * a(n-2)
        for n >= 2. Return a(n) for n >= 0.""",
        "x, y = $a0, $a1\nfor _ in range(n):\n    x, y = y, $p * y + $q * x\nreturn x", "return $a0 * n + $a1",
        [{"p": pp, "q": q, "a0": a0, "a1": a1} for pp, q in ((1, 1), (2, 1), (1, 2), (3, -1), (2, -1), (1, -1))
         for a0, a1 in ((0, 1), (2, 1), (1, 3), (1, 1), (3, 2))
         if not (pp == q == 1 and a0 in (0, 1) and a1 == 1)], "math")  # no plain Fibonacci (HumanEval/55)
def _(rng, p):
    return n_cases(rng, lambda: (rng.randint(0, 30),), [(0,), (1,), (2,)])


@family("number_theory", "n: int", "object", "$doc", "$body", "return n",
        [{"doc": "Return the number of positive divisors of the positive integer n.",
          "body": "return sum(1 for d in range(1, n + 1) if n % d == 0)"},
         {"doc": "Return the sum of the proper divisors of n (positive divisors less than n), for n >= 1.",
          "body": "return sum(d for d in range(1, n) if n % d == 0)"},
         {"doc": "Return the sum of the prime factors of n >= 2, counted with multiplicity (12 = 2 * 2 * 3 gives 7).",
          "body": "total, f = 0, 2\nwhile n > 1:\n    while n % f == 0:\n        total, n = total + f, n // f\n    f += 1\nreturn total"},
         {"doc": "Return the n-th prime number for n >= 1 (the first prime is 2).",
          "body": "count, k = 0, 1\nwhile count < n:\n    k += 1\n    if all(k % d for d in range(2, int(k ** 0.5) + 1)):\n        count += 1\nreturn k"},
         {"doc": "Return the number of steps the Collatz process takes to reach 1 from n >= 1 (n -> n // 2 if even, 3 * n + 1 if odd).",
          "body": "steps = 0\nwhile n != 1:\n    n = n // 2 if n % 2 == 0 else 3 * n + 1\n    steps += 1\nreturn steps"},
         {"doc": "Return the number of 1 bits in the binary representation of the non-negative integer n.",
          "body": "return bin(n).count('1')"},
         {"doc": "Return the number of distinct prime factors of n >= 2.",
          "body": "count, f = 0, 2\nwhile n > 1:\n    if n % f == 0:\n        count += 1\n        while n % f == 0:\n            n //= f\n    f += 1\nreturn count"},
         {"doc": "Return n! (the factorial of n >= 0).",
          "body": "out = 1\nfor k in range(2, n + 1):\n    out *= k\nreturn out"},
         {"doc": "Return the number of trailing zeros of n! for n >= 0.",
          "body": "z, p = 0, 5\nwhile p <= n:\n    z += n // p\n    p *= 5\nreturn z"},
         {"doc": "Return True if n is a perfect square (n >= 0), else False.",
          "body": "r = int(n ** 0.5)\nwhile r * r > n:\n    r -= 1\nwhile (r + 1) * (r + 1) <= n:\n    r += 1\nreturn r * r == n"}], "math")
def _(rng, p):
    lo = 2 if "n >= 2" in p["doc"] else (0 if ("n >= 0" in p["doc"] or "non-negative" in p["doc"]) else 1)
    return n_cases(rng, lambda: (rng.randint(lo, 200),), [(lo,), (36,), (97,)])


@family("digital_root_base", "n: int", "int",
        "Repeatedly replace the non-negative integer n by the sum of its base-$b digits until it is a single base-$b digit; return that digit (as an int).",
        "while n >= $b:\n    s = 0\n    while n:\n        s += n % $b\n        n //= $b\n    n = s\nreturn n", "return n % 10",
        [{"b": b} for b in range(2, 11)], "math")
def _(rng, p):
    return n_cases(rng, lambda: (rng.randint(0, 10 ** 6),), [(0,), (p["b"] - 1,)])


@family("poly_eval", "x: int", "int",
        "Return the value of the polynomial $poly at x.",
        "return $expr", "return x",
        [{"poly": " + ".join(f"{c} * x**{i}" for i, c in enumerate(cs)),
          "expr": " + ".join(f"{c} * x ** {i}" for i, c in enumerate(cs))}
         for cs in ((1, 2), (0, 0, 1), (3, 0, -1), (1, 1, 1), (-2, 5), (0, 1, 0, 1), (7, -3, 2), (1, -1, 1, -1),
                    (4, 0, 0, 2), (0, 3, 3), (5,), (2, 2, 2, 2), (-1, 0, 4), (9, -9), (0, -2, 1), (6, 1, -1, 0, 1))],
        "math")
def _(rng, p):
    return n_cases(rng, lambda: (rng.randint(-12, 12),), [(0,), (1,)])


@family("count_multiples", "lo: int, hi: int", "int",
        "Return how many multiples of $k lie in the closed range [lo, hi] (0 if lo > hi).",
        "return sum(1 for x in range(lo, hi + 1) if x % $k == 0)", "return (hi - lo) // $k",
        [{"k": k} for k in range(2, 12)], "math")
def _(rng, p):
    def make():
        lo = rng.randint(-30, 60)
        return (lo, lo + rng.randint(-3, 70))
    return n_cases(rng, make, [(5, 4), (0, 0)])


@family("figurate", "n: int", "int",
        "Return the n-th $s-gonal number for n >= 1: the n-th term of 1, $s, ... given by ((($s - 2) * n * n) - ($s - 4) * n) // 2.",
        "return (($s - 2) * n * n - ($s - 4) * n) // 2", "return n * n",
        [{"s": s} for s in range(3, 11) if s != 4], "math")
def _(rng, p):
    return n_cases(rng, lambda: (rng.randint(1, 60),), [(1,), (2,)])


@family("mod_sequence", "n: int", "int", "Return $what modulo $m, for n >= 0.", "$body", "return n % $m",
        [{"what": w, "m": m, "body": b.replace("M", str(m))} for m in (7, 13, 1000, 1000000007)
         for w, b in (("n! (the factorial of n)", "out = 1\nfor k in range(2, n + 1):\n    out = out * k % M\nreturn out % M"),
                      ("the n-th Fibonacci number (F(0) = 0, F(1) = 1)", "a, b = 0, 1\nfor _ in range(n):\n    a, b = b, (a + b) % M\nreturn a % M"),
                      ("3 to the power n", "return pow(3, n, M)"))], "math")
def _(rng, p):
    return n_cases(rng, lambda: (rng.randint(0, 300),), [(0,), (1,)])


@family("round_to_multiple", "n: int", "int",
        "Round the integer n to the nearest multiple of $k; when n is exactly halfway between two multiples, round up (towards +infinity).",
        "return (n + $k // 2) // $k * $k", "return n // $k * $k",
        [{"k": k} for k in range(2, 11)], "math")
def _(rng, p):
    return n_cases(rng, lambda: (rng.randint(-100, 100),), [(0,), (p["k"] // 2,)])


@family("bits", "n: int", "object", "$doc", "$body", "return n",
        [{"doc": f"Reverse the lowest {w} bits of n (0 <= n < 2**{w}) and return the resulting integer.",
          "body": f"return int(format(n, '0{w}b')[::-1], 2)"} for w in (4, 8, 16)]
        + [{"doc": f"Return True if n equals {k}**e for some integer e >= 0, else False.",
            "body": f"if n < 1:\n    return False\nwhile n % {k} == 0:\n    n //= {k}\nreturn n == 1"} for k in range(2, 8)]
        + [{"doc": "Return 1 if n >= 0 has an odd number of 1 bits, else 0.", "body": "return bin(n).count('1') % 2"}],
        "math")
def _(rng, p):
    if "lowest" in p["doc"]:
        w = int(p["doc"].split("lowest ")[1].split()[0])
        return n_cases(rng, lambda: (rng.randint(0, 2 ** w - 1),), [(1,), (0,)])
    if "**e" in p["doc"]:
        k = int(p["doc"].split("equals ")[1].split("**")[0])
        return n_cases(rng, lambda: (k ** rng.randint(0, 6) if rng.random() < 0.5 else rng.randint(-5, 500),), [(1,), (0,), (k,)])
    return n_cases(rng, lambda: (rng.randint(0, 1000),), [(0,), (7,)])


# ---------------------------------------------------------------------------------------------
# parsing
# ---------------------------------------------------------------------------------------------

@family("parse_pairs", "s: str", "dict",
        "Parse s of the form 'key${kv}value${sep}key${kv}value...' into a dict of strings (later keys win; '' gives {}).",
        "out = {}\nfor part in s.split('$sep'):\n    if part:\n        k, _, v = part.partition('$kv')\n        out[k] = v\nreturn out",
        "return {}", [{"sep": s, "kv": k} for s in ";,&|" for k in "=:"], "parsing")
def _(rng, p):
    def make():
        return (p["sep"].join(f"{word(rng)}{p['kv']}{rng.randint(0, 99)}" for _ in range(rng.randint(1, 5))),)
    return n_cases(rng, make, [("",)])


@family("parse_numbers", "s: str", "object", "$doc", "$body", "return 0",
        [{"doc": "Return the sum of all integers written in s (maximal runs of digits, optionally preceded by '-').",
          "body": "import re\nreturn sum(int(x) for x in re.findall(r'-?\\d+', s))"},
         {"doc": "Return the list of all integers written in s (maximal runs of digits, optionally preceded by '-'), in order.",
          "body": "import re\nreturn [int(x) for x in re.findall(r'-?\\d+', s)]"},
         {"doc": "Return the largest integer written in s (maximal runs of digits, no signs), or None if there is none.",
          "body": "import re\nnums = [int(x) for x in re.findall(r'\\d+', s)]\nreturn max(nums) if nums else None"}],
        "parsing")
def _(rng, p):
    return n_cases(rng, lambda: (" ".join(rng.choice([word(rng), str(rng.randint(-50, 500)), f"x{rng.randint(0, 9)}y"]) for _ in range(rng.randint(1, 6))),), [("",)])


@family("parse_list", "s: str", "list",
        "Parse s, integers separated by '$sep' (possibly with spaces around them), into a list of ints; '' gives [].",
        "return [int(x) for x in s.split('$sep') if x.strip()]", "return []",
        [{"sep": s} for s in ",;|/"], "parsing")
def _(rng, p):
    return n_cases(rng, lambda: (p["sep"].join(rng.choice(["", " "]) + str(rng.randint(-99, 99)) for _ in range(rng.randint(1, 7))),), [("",)])


@family("clock", "s: str", "object", "$doc", "$body", "return s",
        [{"doc": "s is a time 'HH:MM' (24-hour clock); return the number of minutes since midnight.",
          "body": "h, m = s.split(':')\nreturn int(h) * 60 + int(m)"},
         {"doc": "s is a time 'HH:MM' (24-hour clock); return it in 12-hour form like '3:05 PM' ('12:00 AM' is midnight, '12:00 PM' noon).",
          "body": "h, m = map(int, s.split(':'))\nreturn f\"{(h % 12) or 12}:{m:02d} {'AM' if h < 12 else 'PM'}\""},
         {"doc": "s is a date 'YYYY-MM-DD' (Gregorian); return its day of the year (1 for January 1st).",
          "body": "import datetime\nreturn datetime.date.fromisoformat(s).timetuple().tm_yday"},
         {"doc": "s is a duration like '1h30m', '45m', '2h' or '3h05m'; return it in minutes.",
          "body": "import re\nh = re.search(r'(\\d+)h', s)\nm = re.search(r'(\\d+)m', s)\nreturn (int(h.group(1)) * 60 if h else 0) + (int(m.group(1)) if m else 0)"}],
        "parsing")
def _(rng, p):
    if "YYYY" in p["doc"]:
        return n_cases(rng, lambda: (f"{rng.randint(1990, 2030)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}",), [("2024-12-31",)])
    if "duration" in p["doc"]:
        return n_cases(rng, lambda: (rng.choice([f"{rng.randint(1, 9)}h", f"{rng.randint(1, 59)}m", f"{rng.randint(1, 9)}h{rng.randint(0, 59):02d}m"]),))
    return n_cases(rng, lambda: (f"{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}",), [("00:00",), ("12:00",)])


@family("eval_plus_minus", "s: str", "int",
        "Evaluate s, non-negative integers joined by '+' and '-' with no spaces and no parentheses, e.g. '12+3-4' -> 11.",
        "import re\nreturn sum(int(t) for t in re.findall(r'[+-]?\\d+', s))", "return 0", topic="parsing")
def _(rng, p):
    return n_cases(rng, lambda: (str(rng.randint(0, 99)) + "".join(rng.choice("+-") + str(rng.randint(0, 99)) for _ in range(rng.randint(0, 5))),), [("7",)])


@family("tagged_words", "s: str", "list",
        "Return the words of s (split on whitespace) that start with '$c', without the '$c', in order; skip a bare '$c'.",
        "return [w[1:] for w in s.split() if w.startswith('$c') and len(w) > 1]", "return s.split()",
        [{"c": c} for c in "#@$"], "parsing")
def _(rng, p):
    return n_cases(rng, lambda: (" ".join(rng.choice(["", p["c"]]) + word(rng) for _ in range(rng.randint(1, 7))),), [("",)])


@family("roman", "x: object", "object", "$doc", "$body", "return x",
        [{"doc": "Convert the Roman numeral x (a str, value 1..3999, subtractive notation) to an int.",
          "body": "v = {'I': 1, 'V': 5, 'X': 10, 'L': 50, 'C': 100, 'D': 500, 'M': 1000}\ntotal = 0\nfor a, b in zip(x, x[1:] + ' '):\n    total += -v[a] if b != ' ' and v[b] > v[a] else v[a]\nreturn total"},
         {"doc": "Return True if the str x is a Roman numeral in standard subtractive form for a value 1..3999 (e.g. 'XIV' but not 'IIII' or 'IC'), else False.",
          "body": "import re\nreturn bool(x) and re.fullmatch(r'M{0,3}(CM|CD|D?C{0,3})(XC|XL|L?X{0,3})(IX|IV|V?I{0,3})', x) is not None"}],
        "parsing")
def _(rng, p):
    def to_roman(n):
        out = ""
        for val, sym in ((1000, "M"), (900, "CM"), (500, "D"), (400, "CD"), (100, "C"), (90, "XC"), (50, "L"),
                         (40, "XL"), (10, "X"), (9, "IX"), (5, "V"), (4, "IV"), (1, "I")):
            while n >= val:
                out, n = out + sym, n - val
        return out
    if "to an int" in p["doc"]:
        return n_cases(rng, lambda: (to_roman(rng.randint(1, 3999)),), [("I",), ("MCMXCIV",)])
    return n_cases(rng, lambda: (to_roman(rng.randint(1, 3999)) if rng.random() < 0.5 else chars(rng, "IVXLCM", 1, 6),),
                   [("",), ("IIII",), ("IC",), ("XIV",)])


@family("balanced", "s: str", "bool",
        "Return True if the brackets $pairs in s are balanced and properly nested (other characters are ignored), else False.",
        "pairs = $table\nstack = []\nfor c in s:\n    if c in pairs.values():\n        stack.append(c)\n    elif c in pairs:\n        if not stack or stack.pop() != pairs[c]:\n            return False\nreturn not stack",
        "return s.count('$open0') == s.count('$close0')",
        [{"pairs": " ".join(p), "table": repr({b: a for a, b in p}), "open0": p[0][0], "close0": p[0][1]}
         for p in (("()", "[]"), ("()", "[]", "{}"), ("[]", "{}"), ("<>", "()"), ("{}", "<>"))], "parsing")  # single pairs: HumanEval/56, /61
def _(rng, p):
    brackets = "".join(p["pairs"].split())
    def make():
        if rng.random() < 0.5:
            return (chars(rng, brackets + "ab", 1, 12),)
        s = ""
        for _ in range(rng.randint(1, 4)):
            i = rng.randrange(0, len(brackets), 2)
            s = brackets[i] + s + brackets[i + 1] if rng.random() < 0.5 else s + brackets[i] + brackets[i + 1]
        return (s,)
    return n_cases(rng, make, [("",), (brackets[1] + brackets[0],)])


# ---------------------------------------------------------------------------------------------
# small algorithms
# ---------------------------------------------------------------------------------------------

@family("scan_numbers", "nums: list, target: int", "int", "$doc", "$body", "return -1",
        [{"doc": "nums is sorted ascending; return the index where target should be inserted to keep it sorted (before any equal elements).",
          "body": "lo, hi = 0, len(nums)\nwhile lo < hi:\n    mid = (lo + hi) // 2\n    if nums[mid] < target:\n        lo = mid + 1\n    else:\n        hi = mid\nreturn lo"},
         {"doc": "Return the index of the first occurrence of target in nums, or -1.",
          "body": "return nums.index(target) if target in nums else -1"},
         {"doc": "Return how many pairs of indices i < j have nums[i] + nums[j] == target.",
          "body": "return sum(1 for i in range(len(nums)) for j in range(i + 1, len(nums)) if nums[i] + nums[j] == target)"},
         {"doc": "Return the length of the shortest run of consecutive elements whose sum is at least target (elements are positive), or 0 if none.",
          "body": "best = 0\nfor i in range(len(nums)):\n    s = 0\n    for j in range(i, len(nums)):\n        s += nums[j]\n        if s >= target:\n            if not best or j - i + 1 < best:\n                best = j - i + 1\n            break\nreturn best"}],
        "algorithm")
def _(rng, p):
    positive = "positive" in p["doc"]
    srt = "sorted ascending" in p["doc"]
    def make():
        nums = ints(rng, 1 if positive else -5, 12, 0, 10)
        return (sorted(nums) if srt else nums, rng.randint(1 if positive else -5, 20))
    return n_cases(rng, make, [([], 3)])


@family("grid", "grid: list", "object", "$doc", "$body", "return grid",
        [{"doc": "Return the transpose of the rectangular matrix grid (a list of equal-length rows).",
          "body": "return [list(r) for r in zip(*grid)]"},
         {"doc": "Return the list of row sums of grid.", "body": "return [sum(r) for r in grid]"},
         {"doc": "Return the list of column sums of the rectangular matrix grid ([] for an empty grid).",
          "body": "return [sum(c) for c in zip(*grid)]"},
         {"doc": "grid holds 0s and 1s; return the number of islands: groups of 1s connected horizontally or vertically.",
          "body": "seen = set()\ncount = 0\nfor i in range(len(grid)):\n    for j in range(len(grid[i])):\n        if grid[i][j] == 1 and (i, j) not in seen:\n            count += 1\n            stack = [(i, j)]\n            seen.add((i, j))\n            while stack:\n                a, b = stack.pop()\n                for x, y in ((a + 1, b), (a - 1, b), (a, b + 1), (a, b - 1)):\n                    if 0 <= x < len(grid) and 0 <= y < len(grid[x]) and grid[x][y] == 1 and (x, y) not in seen:\n                        seen.add((x, y))\n                        stack.append((x, y))\nreturn count"},
         {"doc": "Return the elements of the rectangular matrix grid in clockwise spiral order starting at the top-left.",
          "body": "out = []\ng = [list(r) for r in grid]\nwhile g and g[0]:\n    out += g.pop(0)\n    g = [list(r) for r in zip(*g)][::-1]\nreturn out"},
         {"doc": "Return the sum of the main diagonal of the square matrix grid.",
          "body": "return sum(grid[i][i] for i in range(len(grid)))"}], "algorithm")
def _(rng, p):
    square = "square" in p["doc"]
    binary = "0s and 1s" in p["doc"]
    def make():
        r = rng.randint(1, 5)
        c = r if square else rng.randint(1, 5)
        return ([[rng.randint(0, 1) if binary else rng.randint(-5, 9) for _ in range(c)] for _ in range(r)],)
    return n_cases(rng, make, [([[1]],)])


@family("string_dp", "a: str, b: str", "int", "$doc", "$body", "return abs(len(a) - len(b))",
        [{"doc": "Return the length of the longest common subsequence of a and b.",
          "body": "dp = [[0] * (len(b) + 1) for _ in range(len(a) + 1)]\nfor i in range(len(a)):\n    for j in range(len(b)):\n        dp[i + 1][j + 1] = dp[i][j] + 1 if a[i] == b[j] else max(dp[i][j + 1], dp[i + 1][j])\nreturn dp[-1][-1]"},
         {"doc": "Return the edit (Levenshtein) distance between a and b: the fewest single-character insertions, deletions and substitutions turning a into b.",
          "body": "prev = list(range(len(b) + 1))\nfor i, ca in enumerate(a, 1):\n    cur = [i]\n    for j, cb in enumerate(b, 1):\n        cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))\n    prev = cur\nreturn prev[-1]"},
         {"doc": "Return the length of the longest common substring (contiguous) of a and b.",
          "body": "best = 0\nfor i in range(len(a)):\n    for j in range(len(b)):\n        k = 0\n        while i + k < len(a) and j + k < len(b) and a[i + k] == b[j + k]:\n            k += 1\n        best = max(best, k)\nreturn best"},
         {"doc": "Return the number of positions at which a and b differ, comparing up to the shorter length, plus the difference in lengths.",
          "body": "return sum(x != y for x, y in zip(a, b)) + abs(len(a) - len(b))"}], "algorithm")
def _(rng, p):
    return n_cases(rng, lambda: (chars(rng, "abcd", 0, 8), chars(rng, "abcd", 0, 8)), [("", "abc")])


@family("coins", "amount: int", "int", "$doc", "$body", "return amount",
        [{"doc": f"Return the number of ways to make amount from coins of values {cs} (unlimited supply; order does not matter).",
          "body": f"ways = [1] + [0] * amount\nfor c in {cs}:\n    for v in range(c, amount + 1):\n        ways[v] += ways[v - c]\nreturn ways[amount]"}
         for cs in ((1, 2, 5), (2, 3), (1, 5, 10, 25), (3, 7), (1, 4, 9))]
        + [{"doc": f"Return the fewest coins of values {cs} that sum to amount (unlimited supply), or -1 if impossible.",
            "body": f"best = [0] + [None] * amount\nfor v in range(1, amount + 1):\n    opts = [best[v - c] for c in {cs} if c <= v and best[v - c] is not None]\n    best[v] = min(opts) + 1 if opts else None\nreturn -1 if best[amount] is None else best[amount]"}
           for cs in ((1, 3, 4), (2, 5), (5, 7), (1, 6, 10), (3, 8))]
        + [{"doc": f"Return the number of ways to climb amount stairs taking steps of sizes {cs} (order matters).",
            "body": f"ways = [1] + [0] * amount\nfor v in range(1, amount + 1):\n    ways[v] = sum(ways[v - s] for s in {cs} if s <= v)\nreturn ways[amount]"}
           for cs in ((1, 2), (1, 3), (2, 3), (1, 2, 3), (1, 4))], "algorithm")
def _(rng, p):
    return n_cases(rng, lambda: (rng.randint(0, 40),), [(0,), (1,)])


@family("grid_paths", "rows: int, cols: int", "int",
        "Return the number of paths from the top-left to the bottom-right cell of a rows x cols grid (rows, cols >= 1) moving only $moves.",
        "$body", "return rows * cols",
        [{"moves": "right or down", "body": "import math\nreturn math.comb(rows + cols - 2, rows - 1)"},
         {"moves": "right, down, or diagonally down-right",
          "body": "dp = [[1] * cols for _ in range(rows)]\nfor i in range(1, rows):\n    for j in range(1, cols):\n        dp[i][j] = dp[i - 1][j] + dp[i][j - 1] + dp[i - 1][j - 1]\nreturn dp[-1][-1]"}],
        "algorithm")
def _(rng, p):
    return n_cases(rng, lambda: (rng.randint(1, 8), rng.randint(1, 8)), [(1, 1), (2, 2)])


# ---------------------------------------------------------------------------------------------
# building problems
# ---------------------------------------------------------------------------------------------

def _subst(template: str, params: dict) -> str:
    return Template(template).substitute({k: str(v) for k, v in params.items()})


def _function(fam: Family, body: str, doc: str | None = None) -> str:
    head = f"def {fam.name}({fam.params}) -> {fam.returns}:\n" if fam.returns != "object" else f"def {fam.name}({fam.params}):\n"
    out = head
    if doc is not None:
        out += textwrap.indent(f'"""{doc}\n"""', "    ") + "\n"
    return out + textwrap.indent(body, "    ") + "\n"


def _source(value) -> str:
    src = repr(value)
    if ast.literal_eval(src) != value:
        raise ValueError(f"test value {value!r} does not survive a literal round trip")
    return src


def _args_source(args: tuple) -> str:
    return ", ".join(_source(a) for a in args)


def _build(fam: Family, k: int, params: dict) -> Problem:
    rng = random.Random(zlib.crc32(f"{fam.name}/{k}".encode()))
    doc = textwrap.fill(_subst(fam.doc, params), 92, break_long_words=False)
    reference = _function(fam, _subst(fam.reference, params))
    wrong = _function(fam, _subst(fam.wrong, params))
    ns: dict = {}
    exec(compile(reference, f"<reference {fam.name}/{k}>", "exec"), ns)  # noqa: S102 - our own code
    fn = ns[fam.name]
    cases = fam.inputs(rng, params)
    outs = [fn(*[_copy(a) for a in args]) for args in cases]
    examples = "\n".join(f">>> {fam.name}({_args_source(a)})\n{_source(o)}"
                         for a, o in zip(cases[N_TESTS:], outs[N_TESTS:]))
    prompt = _function(fam, "", doc + "\n\n" + examples).rstrip() + "\n"
    tests = tuple({"input": _args_source(a), "output": _source(o)} for a, o in zip(cases[:N_TESTS], outs[:N_TESTS]))
    return Problem(f"code-train/{fam.name}/{k}", fam.name, prompt, reference, wrong, tests, fam.topic)


def _copy(value):
    return copy.deepcopy(value)


@functools.lru_cache(maxsize=1)
def train_problems() -> tuple[Problem, ...]:
    """All train problems, in a fixed order (deterministic; built once per process)."""
    return tuple(_build(fam, k, params) for fam in FAMILIES for k, params in enumerate(fam.variants))


def problem_row(problem: Problem, instruction: str | None = None) -> dict:
    from rftgym.envs.code.humaneval import INSTRUCTION

    return {
        "task_id": problem.task_id,
        "messages": [{"role": "user", "content": (instruction or INSTRUCTION).format(prompt=problem.prompt)}],
        "entry_point": problem.entry_point,
        "prompt": problem.prompt,
        "ground_truth": {"tests": [dict(t) for t in problem.tests]},
    }


def train_rows(instruction: str | None = None) -> list[dict]:
    return [problem_row(p, instruction) for p in train_problems()]


def validate_problems(problems: Sequence[Problem] | None = None, pool=None) -> list[str]:
    """Grade every reference (must score 1.0) and wrong solution (must score < 1.0) in the sandbox.

    Returns the list of failures (empty when every problem is valid)."""
    from rftgym.envs.code.grader import CodeTask, grade_program
    from rftgym.envs.code.pool import get_shared_pool
    import concurrent.futures

    problems = train_problems() if problems is None else problems
    pool = pool or get_shared_pool()

    def check(pr: Problem) -> list[str]:
        task = CodeTask.from_row({"tests": list(pr.tests)}, {"entry_point": pr.entry_point, "prompt": pr.prompt})
        out = []
        good = grade_program(pr.reference, task, pool)
        if good.score != 1.0:
            out.append(f"{pr.task_id}: reference scored {good.score} ({good.reason})")
        bad = grade_program(pr.wrong, task, pool)
        if bad.score >= 1.0:
            out.append(f"{pr.task_id}: the wrong solution scored {bad.score}")
        return out

    with concurrent.futures.ThreadPoolExecutor(max(2, pool.size)) as ex:
        return [msg for msgs in ex.map(check, problems) for msg in msgs]
