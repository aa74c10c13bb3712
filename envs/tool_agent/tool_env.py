"""``ToolEnv``: a multi-turn environment where the model calls tools on a per-episode world.

Each turn the model's reply is parsed for tool calls (``parsing``); the env runs them on the
episode's world and appends one ``tool`` message per call (``content`` = JSON of the result or
``{"error": ...}``, plus ``name`` and ``tool_call_id``). A reply without tool calls is the final
answer and ends the episode, which is then graded by a goal checker. ``max_turns`` replies or
more than ``max_tool_calls`` calls truncate the episode (graded with no final answer).

Build your own tool env from Python functions, a world factory and a goal checker::

    def get_balance(world, account: str) -> dict:
        '''The balance of an account.

        Args:
            account: the account name.
        '''
        if account not in world["balances"]:
            raise ToolError(f"no account {account!r}")
        return {"account": account, "balance": world["balances"][account]}

    def check(episode: ToolEpisode) -> dict:
        right = str(episode.ground_truth) in (episode.answer or "")
        return {"score": float(right), "metrics": {"answer_correct": float(right)}}

    env = ToolEnv(rows, tools=[get_balance], world_factory=lambda row: {"balances": {"alice": 12}},
                  goal_checker=check)

or from JSONL rows that carry ``tools`` (OpenAI specs) and ``ground_truth`` with the expected
``calls`` and/or ``answer`` facts (graded by ``CallsAndAnswerChecker``); implementations come
from ``tools=`` by name, or fixed results from the row's ``tool_results`` (``{name: result}``),
and a row's ``world`` (any JSON) is the default world::

    {"messages": [{"role": "user", "content": "Weather in Paris?"}],
     "tools": [{"type": "function", "function": {"name": "get_weather", "parameters": {...}}}],
     "tool_results": {"get_weather": {"temp_c": 18}},
     "ground_truth": {"calls": [{"name": "get_weather", "arguments": {"city": "Paris"}}], "answer": [18]}}

    env = ToolEnv("rows.jsonl")
"""

from __future__ import annotations

import copy
import json
from typing import Any, Callable, Iterable

from rftgym.envs.tool_agent.answers import as_fact
from rftgym.envs.tool_agent.grader import CallsAndAnswerChecker, ToolEpisode
from rftgym.envs.tool_agent.parsing import parse_tool_calls
from rftgym.envs.tool_agent.toolkit import CallRecord, Tool, Toolset

from rftgym.core import MultiTurnTextEnv
from rftgym.datasets import Dataset, DatasetError, load_dataset
from rftgym.evaluators import EvaluateResult, evaluate_safely

TOOLS_PROMPT = """# Tools

You can call functions to handle the request. {header} inside <tools></tools>:
<tools>
{tools}
</tools>

To call a function, write a JSON object with its name and arguments inside <tool_call></tool_call> \
tags, for example:
<tool_call>
{{"name": "{example}", "arguments": {{...}}}}
</tool_call>
You may call several functions in one reply; the results come back in "tool" messages. When you are \
done, reply without any tool call: that reply is your final answer."""


TOOL_PROMPT_STYLES = ("json", "compact")


def _type_text(schema: dict) -> str:
    if "enum" in schema:
        return "|".join(json.dumps(v) for v in schema["enum"])
    kind = schema.get("type", "any")
    if kind == "array":
        return f"array of {_type_text(schema.get('items', {}))}"
    if kind == "object" and schema.get("properties"):
        return "{" + ", ".join(_param_text(name, sub, schema) for name, sub in schema["properties"].items()) + "}"
    text = "|".join(kind) if isinstance(kind, list) else str(kind)
    return f"{text} ({schema['description']})" if "pattern" in schema and "description" in schema else text


def _param_text(name: str, schema: dict, parent: dict) -> str:
    optional = "" if name in parent.get("required", ()) else "?"
    return f"{name}{optional}: {_type_text(schema)}"


def compact_signature(spec: dict) -> str:
    """One line per tool: ``name(arg: type, optional?: type) - description``."""
    function = spec["function"]
    parameters = function.get("parameters") or {}
    args = ", ".join(_param_text(n, s, parameters) for n, s in (parameters.get("properties") or {}).items())
    return f"{function['name']}({args}) - {function.get('description', '')}".rstrip(" -")


def tools_prompt(specs: list[dict], style: str = "json") -> str:
    """The system-prompt section listing ``specs`` and the ``<tool_call>`` format.

    ``style="json"`` lists the full OpenAI specs (Hermes / Qwen convention); ``"compact"`` one
    signature line per tool, about 40 % of the tokens.
    """
    if style not in TOOL_PROMPT_STYLES:
        raise ValueError(f"tool prompt style must be one of {TOOL_PROMPT_STYLES}, got {style!r}")
    if style == "json":
        lines = "\n".join(json.dumps(spec, ensure_ascii=False) for spec in specs)
    else:
        lines = "\n".join(compact_signature(spec) for spec in specs)
    example = specs[0]["function"]["name"] if specs else "function_name"
    header = ("Their signatures (JSON Schema, OpenAI format) are" if style == "json" else
              "Their signatures (a '?' marks an optional argument) are")
    return TOOLS_PROMPT.format(header=header, tools=lines, example=example)


def with_system_text(row: dict[str, Any], text: str) -> dict[str, Any]:
    """A copy of ``row`` whose system message ends with ``text`` (one is added if missing)."""
    messages = [dict(m) for m in row["messages"]]
    if messages[0]["role"] == "system":
        messages[0]["content"] = messages[0]["content"].rstrip() + "\n\n" + text
    else:
        messages.insert(0, {"role": "system", "content": text})
    return {**row, "messages": messages}


def row_world(row: dict[str, Any]) -> Any:
    """The default world factory: a fresh copy of the row's ``world`` field (``{}`` if absent)."""
    return copy.deepcopy(row.get("world", {}))


class _EpisodeEvaluator:
    """Adapts ``goal_checker(episode)`` to the evaluator call used by ``evaluate_safely``."""

    def __init__(self, checker: Callable[[ToolEpisode], Any], episode: ToolEpisode):
        self.checker, self.episode = checker, episode
        self.name = getattr(checker, "name", getattr(checker, "__name__", type(checker).__name__))

    def __call__(self, messages: list, ground_truth: Any = None, **row_fields: Any) -> Any:
        return self.checker(self.episode)


class ToolEnv(MultiTurnTextEnv):
    """A multi-turn tool-calling env over rows, tools, a world factory and a goal checker.

    Args:
        dataset: JSONL path, list of rows or ``Dataset``; rows may carry ``tools`` (OpenAI specs of
            the tools offered in that row), ``tool_results`` and ``world``.
        tools: ``Tool`` objects or Python functions (schemas derived by ``function_tool``), or a
            ``Toolset``; rows without ``tools`` offer all of them.
        world_factory: ``row -> world``, called at every reset (default: a copy of ``row["world"]``).
        goal_checker: ``ToolEpisode -> EvaluateResult | float | bool | dict`` (default
            ``CallsAndAnswerChecker``).
        max_turns: replies before the episode is truncated.
        max_tool_calls: tool calls per episode; a reply that goes over truncates the episode.
        tools_in_system_prompt: append the tool list and call format to the system message, for
            chat templates without tool support (``info["tools"]`` always has the specs).
        tool_prompt_style: ``"json"`` (full specs) or ``"compact"`` (one signature line per tool).
        system_prompt, evaluator_timeout, render_mode: as for ``TextEnv``.
    """

    def __init__(self, dataset: Any, tools: Toolset | Iterable[Tool | Callable[..., Any]] | None = None, *,
                 world_factory: Callable[[dict], Any] | None = None,
                 goal_checker: Callable[[ToolEpisode], Any] | None = None, max_turns: int = 10,
                 max_tool_calls: int = 16, tools_in_system_prompt: bool = True, tool_prompt_style: str = "json",
                 system_prompt: str | None = None, evaluator_timeout: float | None = None,
                 render_mode: str | None = None):
        if tool_prompt_style not in TOOL_PROMPT_STYLES:
            raise ValueError(f"tool_prompt_style must be one of {TOOL_PROMPT_STYLES}, got {tool_prompt_style!r}")
        if isinstance(max_tool_calls, bool) or not isinstance(max_tool_calls, int) or max_tool_calls < 1:
            raise ValueError(f"max_tool_calls must be an int >= 1, got {max_tool_calls!r}")
        self.toolset = tools if isinstance(tools, Toolset) else Toolset(tools or ())
        self.world_factory = world_factory or row_world
        self.goal_checker = goal_checker or CallsAndAnswerChecker()
        self.max_tool_calls = max_tool_calls
        self.tools_in_system_prompt = tools_in_system_prompt
        self._toolsets: dict[str, Toolset] = {}
        rows = load_dataset(dataset)
        for index in range(len(rows)):
            self._check_row(rows[index], index, rows.source, goal_checker is None)
        if tools_in_system_prompt:
            prepared = []
            for index in range(len(rows)):
                row = rows[index]
                if system_prompt and row["messages"][0]["role"] != "system":
                    row = with_system_text(row, system_prompt)
                prepared.append(with_system_text(row, tools_prompt(self.toolset_for(row).specs, tool_prompt_style)))
            rows = Dataset(prepared, source=rows.source)
        super().__init__(rows, None, max_turns=max_turns, system_prompt=system_prompt,
                         evaluator_timeout=evaluator_timeout, render_mode=render_mode)
        self.world: Any = None
        self.calls: list[CallRecord] = []
        self.answer: str | None = None
        self._tools = self.toolset

    # --- rows and their tools ------------------------------------------------------------------
    def _check_row(self, row: dict[str, Any], index: int, source: str, default_checker: bool) -> None:
        where = f"{source}[{index}]"
        try:
            toolset = self.toolset_for(row)
        except (ValueError, TypeError) as exc:
            raise DatasetError(f"{where}: bad 'tools': {exc}") from None
        if not len(toolset):
            raise DatasetError(f"{where}: no tools: pass tools=... or give the row a 'tools' list")
        if "tool_results" in row and not isinstance(row["tool_results"], dict):
            raise DatasetError(f"{where}: 'tool_results' must be an object mapping tool names to results")
        if default_checker:
            truth = row.get("ground_truth")
            if not isinstance(truth, dict) or not ({"calls", "answer"} & set(truth)):
                raise DatasetError(f"{where}: ground_truth must be an object with 'calls' (expected tool calls) "
                                   "and/or 'answer' (facts), or pass goal_checker=...")
            for call in truth.get("calls", []):
                if not isinstance(call, dict) or not isinstance(call.get("name"), str):
                    raise DatasetError(f"{where}: every expected call needs a 'name', got {call!r}")
            facts = truth.get("answer", [])
            try:
                for fact in facts if isinstance(facts, list) else [facts]:
                    as_fact(fact)
            except ValueError as exc:
                raise DatasetError(f"{where}: bad answer fact: {exc}") from None

    def toolset_for(self, row: dict[str, Any]) -> Toolset:
        """The tools offered in ``row``: its ``tools`` specs (implemented by name from ``tools=``)
        or, without them, every tool of the env."""
        specs = row.get("tools")
        if specs is None:
            return self.toolset
        if not isinstance(specs, list):
            raise ValueError("'tools' must be a list of OpenAI function specs")
        key = json.dumps(specs, sort_keys=True)
        if key not in self._toolsets:
            tools = []
            for spec in specs:
                tool = Tool.from_spec(spec)
                known = self.toolset.tools.get(tool.name)
                if known is not None:
                    tool = Tool(tool.name, tool.description, tool.parameters, known.fn, known.takes_world, known.writes)
                tools.append(tool)
            self._toolsets[key] = Toolset(tools)
        return self._toolsets[key]

    def row_info(self, row: dict[str, Any]) -> dict[str, Any]:
        return {"tools": copy.deepcopy(self.toolset_for(row).specs)}

    # --- the episode ---------------------------------------------------------------------------
    def begin_episode(self, row: dict[str, Any]) -> None:
        super().begin_episode(row)
        self._tools = self.toolset_for(row)
        self.world = self.world_factory(row)
        self.calls, self.answer = [], None

    def respond(self, reply: str) -> tuple[list[dict[str, Any]], bool, bool]:
        parsed = parse_tool_calls(reply)
        if parsed.is_final:
            self.answer = reply
            return [], True, False
        assert self._row is not None
        messages = []
        for position, call in enumerate(parsed.calls):
            if len(self.calls) >= self.max_tool_calls:
                left = len(parsed.calls) - position
                messages.append({"role": "tool", "content": json.dumps(
                    {"error": f"tool-call budget of {self.max_tool_calls} calls used up; {left} call(s) not run; "
                              "the episode ends"})})
                return messages, False, True
            call.id = call.id or f"call_{len(self.calls) + 1}"
            record = self._tools.execute(self.world, call, self._row.get("tool_results"))
            self.calls.append(record)
            messages.append(record.message())
        return messages, False, False

    def step(self, action: str):
        obs, reward, terminated, truncated, info = super().step(action)
        info["tool_calls"] = len(self.calls)
        return obs, reward, terminated, truncated, info

    def evaluate_episode(self, messages: list[dict[str, Any]]) -> EvaluateResult:
        assert self._row is not None
        episode = ToolEpisode(self._row, self.world, self.answer, list(self.calls), copy.deepcopy(messages),
                              truncated=self.answer is None)
        result = evaluate_safely(_EpisodeEvaluator(self.goal_checker, episode), messages, None, {},
                                 self.evaluator_timeout)
        metrics = {**result.metrics, "valid_call_rate": episode.valid_call_rate, "ok_call_rate": episode.ok_call_rate,
                   "num_calls": float(episode.num_calls), "truncated": float(episode.truncated)}
        return EvaluateResult(result.score, result.reason, metrics)
