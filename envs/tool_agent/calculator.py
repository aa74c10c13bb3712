"""A safe arithmetic evaluator for the ``calculator`` tool: parsed with ``ast``, never ``eval``.

Allowed: int and float literals, ``+ - * / // % **``, unary ``+ -``, parentheses and the
functions ``abs``, ``round``, ``min``, ``max``, ``sqrt``. Everything else (names, attributes,
strings, calls to anything else) is rejected with a message. Sizes are bounded so no input can
hang or exhaust memory: at most 200 characters, results up to 1e15 in magnitude, exponents up to
100.
"""

from __future__ import annotations

import ast
import math
import operator

MAX_EXPRESSION_LENGTH = 200
MAX_MAGNITUDE = 1e15
MAX_EXPONENT = 100


class CalculatorError(ValueError):
    """The expression is not allowed or cannot be evaluated; the message says why."""


_BINARY = {
    ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod, ast.Pow: operator.pow,
}
_UNARY = {ast.UAdd: operator.pos, ast.USub: operator.neg}
_FUNCTIONS = {"abs": abs, "round": round, "min": min, "max": max, "sqrt": math.sqrt}


def _check(value: int | float) -> int | float:
    if isinstance(value, complex) or not math.isfinite(value):
        raise CalculatorError("the result is not a finite real number")
    if abs(value) > MAX_MAGNITUDE:
        raise CalculatorError(f"the result exceeds {MAX_MAGNITUDE:g} in magnitude")
    return value


def _power(base: int | float, exponent: int | float) -> int | float:
    if abs(exponent) > MAX_EXPONENT:
        raise CalculatorError(f"exponents are limited to +-{MAX_EXPONENT}")
    if base not in (0, 1, -1) and exponent > 0 and exponent * math.log10(abs(base)) > math.log10(MAX_MAGNITUDE):
        raise CalculatorError(f"the result exceeds {MAX_MAGNITUDE:g} in magnitude")
    return base ** exponent


def _eval(node: ast.AST) -> int | float:
    if isinstance(node, ast.Constant):
        if isinstance(node.value, bool) or not isinstance(node.value, (int, float)):
            raise CalculatorError(f"only numbers are allowed, found {node.value!r}")
        return _check(node.value)
    if isinstance(node, ast.BinOp):
        op = type(node.op)
        if op is ast.BitXor:
            raise CalculatorError("'^' is not a power operator here; use '**'")
        if op not in _BINARY:
            raise CalculatorError(f"operator {type(node.op).__name__} is not allowed")
        left, right = _eval(node.left), _eval(node.right)
        try:
            return _check(_power(left, right) if op is ast.Pow else _BINARY[op](left, right))
        except ZeroDivisionError:
            raise CalculatorError("division by zero") from None
        except OverflowError:
            raise CalculatorError(f"the result exceeds {MAX_MAGNITUDE:g} in magnitude") from None
    if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
        return _check(_UNARY[type(node.op)](_eval(node.operand)))
    if isinstance(node, ast.Call):
        if not isinstance(node.func, ast.Name) or node.func.id not in _FUNCTIONS:
            raise CalculatorError(f"only the functions {', '.join(_FUNCTIONS)} are allowed")
        if node.keywords:
            raise CalculatorError("keyword arguments are not allowed")
        args = [_eval(arg) for arg in node.args]
        name = node.func.id
        if name == "round" and (len(args) not in (1, 2) or (len(args) == 2 and not (
                isinstance(args[1], int) and 0 <= args[1] <= 10))):
            raise CalculatorError("round takes a number and optionally 0-10 digits")
        if name in ("abs", "sqrt") and len(args) != 1:
            raise CalculatorError(f"{name} takes exactly one argument")
        if name in ("min", "max") and not args:
            raise CalculatorError(f"{name} needs at least one argument")
        if name == "sqrt" and args[0] < 0:
            raise CalculatorError("sqrt of a negative number")
        return _check(_FUNCTIONS[name](*args))
    raise CalculatorError(f"{type(node).__name__} is not allowed in an arithmetic expression")


def evaluate_expression(expression: str) -> int | float:
    """Evaluate an arithmetic expression; raises ``CalculatorError`` with the reason."""
    text = expression.strip().replace("×", "*").replace("÷", "/")
    if not text:
        raise CalculatorError("the expression is empty")
    if len(text) > MAX_EXPRESSION_LENGTH:
        raise CalculatorError(f"the expression is longer than {MAX_EXPRESSION_LENGTH} characters")
    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError as exc:
        raise CalculatorError(f"not a valid arithmetic expression ({exc.msg})") from None
    except (ValueError, RecursionError, MemoryError):
        raise CalculatorError("not a valid arithmetic expression") from None
    try:
        value = _eval(tree.body)
    except RecursionError:
        raise CalculatorError("the expression is nested too deeply") from None
    if isinstance(value, float):
        value = round(value, 10)
        if value.is_integer():
            value = int(value)
    return value
