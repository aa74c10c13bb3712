"""Tools as Python functions with JSON-Schema parameters, and their safe execution.

A ``Tool`` is a name, a description, a JSON Schema for its arguments and a Python function.
``Toolset.execute(world, call)`` validates a parsed call against the schema (``jsonschema``) and
runs it. It never raises: unknown tools, invalid arguments, precondition failures (``ToolError``)
and even bugs in a tool come back as a ``CallRecord`` whose ``error`` the model can read and
recover from.

``function_tool(fn)`` builds a tool from a plain Python function, deriving the schema from its
type hints and its docstring's ``Args:`` section. A first parameter named ``world`` receives the
episode's world and is not part of the schema.
"""

from __future__ import annotations

import difflib
import enum
import inspect
import json
import re
import types
import typing
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Mapping

import jsonschema


class ToolError(Exception):
    """Raised by a tool when a call cannot be carried out (unknown id, failed precondition...).

    The message is shown to the model, so it should say what is wrong and how to fix it.
    """


@dataclass(frozen=True)
class Tool:
    """A callable tool with an OpenAI function-calling spec.

    Args:
        name: the function name the model calls.
        description: what the tool does, for the model.
        parameters: a JSON Schema (``"type": "object"``) for the arguments.
        fn: ``fn(world, **arguments)`` if ``takes_world`` else ``fn(**arguments)``; ``None`` for a
            tool without an implementation (its result then comes from the row, see ``ToolEnv``).
        takes_world: whether ``fn`` receives the episode's world as its first argument.
        writes: whether the tool changes the world (documentation and grading aid).
    """

    name: str
    description: str
    parameters: dict
    fn: Callable[..., Any] | None = None
    takes_world: bool = True
    writes: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.-]{0,63}", self.name):
            raise ValueError(f"tool name {self.name!r} must be 1-64 letters, digits, '_', '.' or '-'")
        if not isinstance(self.parameters, dict) or self.parameters.get("type") != "object":
            raise ValueError(f"tool {self.name!r}: parameters must be a JSON Schema with \"type\": \"object\"")
        try:
            jsonschema.Draft202012Validator.check_schema(self.parameters)
        except jsonschema.SchemaError as exc:
            raise ValueError(f"tool {self.name!r}: invalid parameters schema: {exc.message}") from None

    @property
    def spec(self) -> dict:
        """The OpenAI function-calling spec: ``{"type": "function", "function": {...}}``."""
        return {"type": "function",
                "function": {"name": self.name, "description": self.description, "parameters": self.parameters}}

    @classmethod
    def from_spec(cls, spec: Mapping[str, Any], fn: Callable[..., Any] | None = None,
                  takes_world: bool = True) -> "Tool":
        """A tool from an OpenAI spec (``{"type": "function", "function": {...}}`` or the inner dict)."""
        if not isinstance(spec, Mapping):
            raise ValueError(f"a tool spec must be an object, got {type(spec).__name__}")
        inner = spec.get("function", spec)
        if not isinstance(inner, Mapping) or "name" not in inner:
            raise ValueError(f"tool spec {json.dumps(spec)[:120]} has no function name")
        parameters = inner.get("parameters") or {"type": "object", "properties": {}}
        return cls(inner["name"], str(inner.get("description", "")), dict(parameters), fn, takes_world)


@dataclass
class CallRecord:
    """One attempted tool call and what came of it."""

    id: str
    name: str | None
    arguments: Any
    valid: bool = False       # parsed, a known tool, arguments match the schema
    ok: bool = False          # ran and returned a result
    result: Any = None
    error: str | None = None

    def message(self) -> dict[str, str]:
        """The ``tool`` message for the model: JSON text of the result or ``{"error": ...}``."""
        if self.ok:
            payload = self.result if isinstance(self.result, dict) else {"result": self.result}
        else:
            payload = {"error": self.error}
        message = {"role": "tool", "content": json.dumps(payload, ensure_ascii=False), "tool_call_id": self.id}
        if self.name is not None:
            message["name"] = self.name
        return message


def _describe_error(error: jsonschema.ValidationError) -> str:
    where = "".join(f"[{p!r}]" if isinstance(p, int) else f".{p}" for p in error.absolute_path).lstrip(".")
    subject = f"argument '{where}'" if where else "the arguments"
    if error.validator == "required":
        missing = [name for name in error.validator_value if name not in (error.instance or {})]
        return f"missing required argument(s) {', '.join(repr(m) for m in missing)}" + (
            f" in '{where}'" if where else "")
    if error.validator == "additionalProperties":
        allowed = sorted((error.schema.get("properties") or {}).keys())
        extra = sorted(set(error.instance) - set(allowed)) if isinstance(error.instance, dict) else []
        return (f"unexpected argument(s) {', '.join(repr(e) for e in extra)}" + (f" in '{where}'" if where else "")
                + f"; allowed: {', '.join(allowed) or 'none'}")
    if error.validator == "type":
        return (f"{subject} must be of type {error.validator_value}, got "
                f"{type(error.instance).__name__} {json.dumps(error.instance)[:60]}")
    if error.validator == "enum":
        return f"{subject} must be one of {json.dumps(error.validator_value)}, got {json.dumps(error.instance)[:60]}"
    return f"{subject}: {error.message[:200]}"


def _to_python_ints(arguments: dict, schema: dict) -> dict:
    """JSON Schema accepts 3.0 as an integer; tools get a Python int."""
    properties = schema.get("properties") or {}
    return {key: int(value) if (properties.get(key, {}).get("type") == "integer" and isinstance(value, float))
            else value for key, value in arguments.items()}


class Toolset:
    """Named tools with their compiled validators; ``execute`` runs one parsed call."""

    def __init__(self, tools: Iterable[Tool | Callable[..., Any]]):
        self.tools: dict[str, Tool] = {}
        for item in tools:
            tool = item if isinstance(item, Tool) else function_tool(item)
            if tool.name in self.tools:
                raise ValueError(f"two tools are named {tool.name!r}")
            self.tools[tool.name] = tool
        self._validators = {name: jsonschema.Draft202012Validator(tool.parameters) for name, tool in self.tools.items()}

    def __getstate__(self) -> dict:  # compiled validators do not pickle; rebuild them
        return {"tools": self.tools}

    def __setstate__(self, state: dict) -> None:
        self.__init__(state["tools"].values())

    def __contains__(self, name: object) -> bool:
        return name in self.tools

    def __getitem__(self, name: str) -> Tool:
        return self.tools[name]

    def __len__(self) -> int:
        return len(self.tools)

    @property
    def specs(self) -> list[dict]:
        """All tools in OpenAI function-calling format."""
        return [tool.spec for tool in self.tools.values()]

    def validate(self, name: str, arguments: Any) -> list[str]:
        """Problems with ``arguments`` for tool ``name`` (empty when they are valid)."""
        errors = sorted(self._validators[name].iter_errors(arguments), key=lambda e: list(e.absolute_path))
        return [_describe_error(e) for e in errors[:5]]

    def execute(self, world: Any, call: Any, responses: Mapping[str, Any] | None = None) -> CallRecord:
        """Run a parsed call (``parsing.ParsedCall``) on ``world``; never raises.

        ``responses`` gives fixed results for tools that have no implementation.
        """
        record = CallRecord(call.id, call.name, call.arguments)
        if call.error is not None:
            record.error = call.error
            return record
        if call.name not in self.tools:
            close = difflib.get_close_matches(str(call.name), list(self.tools), n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            record.error = f"unknown tool {call.name!r}.{hint} Available tools: {', '.join(self.tools)}"
            return record
        problems = self.validate(call.name, call.arguments)
        if problems:
            record.error = f"invalid arguments for {call.name}: " + "; ".join(problems)
            return record
        record.valid = True
        tool = self.tools[call.name]
        arguments = _to_python_ints(call.arguments, tool.parameters)
        try:
            if tool.fn is None:
                if responses is None or tool.name not in responses:
                    raise ToolError(f"tool {tool.name!r} is not available in this environment")
                result = responses[tool.name]
            else:
                result = tool.fn(world, **arguments) if tool.takes_world else tool.fn(**arguments)
            json.dumps(result, allow_nan=False)
        except ToolError as exc:
            record.error = f"{tool.name} failed: {exc}"
            return record
        except (TypeError, ValueError) as exc:
            record.error = f"{tool.name} failed: {type(exc).__name__}: {str(exc)[:200]}"
            return record
        except Exception as exc:  # noqa: BLE001 - a tool bug must not crash the episode
            record.error = f"{tool.name} failed with an internal error ({type(exc).__name__}: {str(exc)[:200]})"
            return record
        record.ok, record.result = True, result
        return record


# --- tools from plain Python functions ----------------------------------------------------------
_SIMPLE_TYPES = {str: "string", int: "integer", float: "number", bool: "boolean", dict: "object", list: "array"}


def _schema_for(annotation: Any, where: str) -> dict:
    if annotation in _SIMPLE_TYPES:
        return {"type": _SIMPLE_TYPES[annotation]}
    if annotation is Any:
        return {}
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is typing.Literal:
        return {"enum": list(args)}
    if origin in (typing.Union, types.UnionType):
        options = [a for a in args if a is not type(None)]
        nullable = len(options) < len(args)
        schema = _schema_for(options[0], where) if len(options) == 1 else {
            "anyOf": [_schema_for(a, where) for a in options]}
        if nullable and isinstance(schema.get("type"), str):
            schema["type"] = [schema["type"], "null"]
        elif nullable:
            schema = {"anyOf": [schema, {"type": "null"}]}
        return schema
    if origin in (list, tuple, set, frozenset, typing.Sequence) or annotation in (tuple, set):
        schema: dict = {"type": "array"}
        if args and args[0] is not Ellipsis:
            schema["items"] = _schema_for(args[0], where)
        return schema
    if origin in (dict, typing.Mapping):
        return {"type": "object"}
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        return {"enum": [member.value for member in annotation]}
    raise TypeError(f"cannot derive a JSON Schema for {where} of type {annotation!r}; "
                    "pass parameters=... to function_tool")


def _docstring_parts(doc: str) -> tuple[str, dict[str, str]]:
    """The first paragraph and the ``Args:`` descriptions of a Google-style docstring."""
    lines = inspect.cleandoc(doc).splitlines()
    summary: list[str] = []
    for line in lines:
        if not line.strip() or re.fullmatch(r"[A-Z][A-Za-z ]*:", line.strip()):
            break
        summary.append(line.strip())
    params: dict[str, str] = {}
    section, indent, current = None, None, None
    for line in lines:
        stripped = line.strip()
        if not line.startswith(" ") and re.fullmatch(r"[A-Z][A-Za-z ]*:", stripped):
            section, indent, current = stripped[:-1], None, None
            continue
        if section not in ("Args", "Arguments", "Parameters") or not stripped:
            continue
        depth = len(line) - len(line.lstrip())
        if indent is None:
            indent = depth
        match = re.match(r"(\w+)\s*(?:\([^)]*\))?\s*:\s*(.*)", stripped)
        if depth == indent and match:
            current = match.group(1)
            params[current] = match.group(2)
        elif current is not None and depth > indent:
            params[current] = (params[current] + " " + stripped).strip()
    return " ".join(summary), params


def function_tool(fn: Callable[..., Any], *, name: str | None = None, description: str | None = None,
                  parameters: dict | None = None, writes: bool = False) -> Tool:
    """Make a ``Tool`` from a Python function.

    The schema comes from the type hints (``str``, ``int``, ``float``, ``bool``, ``list[...]``,
    ``dict``, ``Literal[...]``, ``Enum``, ``X | None``); parameters without a default are
    required. The description is the docstring's summary and the ``Args:`` lines describe the
    parameters. A first parameter named ``world`` gets the episode's world.

    Example::

        def get_weather(world, city: str, unit: Literal["C", "F"] = "C") -> dict:
            '''Current weather in a city.

            Args:
                city: the city name, e.g. "Paris".
                unit: temperature unit.
            '''
            return {"city": city, "temperature": world["weather"][city]}

        tool = function_tool(get_weather)
    """
    signature = inspect.signature(fn)
    params = list(signature.parameters.values())
    takes_world = bool(params) and params[0].name == "world"
    if takes_world:
        params = params[1:]
    summary, arg_docs = _docstring_parts(fn.__doc__ or "")
    if parameters is None:
        try:
            hints = typing.get_type_hints(fn)
        except Exception:  # noqa: BLE001 - unresolvable annotations fall back to raw ones
            hints = {p.name: p.annotation for p in params}
        properties, required = {}, []
        for param in params:
            if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD, param.POSITIONAL_ONLY):
                raise TypeError(f"tool function {fn.__name__!r}: parameter {param.name!r} must be a "
                                "regular keyword parameter")
            annotation = hints.get(param.name, Any)
            if annotation is inspect.Parameter.empty:
                annotation = Any
            schema = _schema_for(annotation, f"parameter {param.name!r} of {fn.__name__!r}")
            if param.name in arg_docs:
                schema["description"] = arg_docs[param.name]
            if param.default is inspect.Parameter.empty:
                required.append(param.name)
            elif param.default is not None:
                try:
                    json.dumps(param.default)
                    schema["default"] = param.default
                except TypeError:
                    pass
            properties[param.name] = schema
        parameters = {"type": "object", "properties": properties, "required": required,
                      "additionalProperties": False}
    return Tool(name or fn.__name__, description if description is not None else summary, parameters, fn,
                takes_world, writes)
