"""Multi-turn tool use: ``rft/ToolAgent-v0`` (a shop and calendar world) and ``ToolEnv`` for your own tools."""

from rftgym.envs.tool_agent.env import ToolAgentEnv
from rftgym.envs.tool_agent.grader import CallsAndAnswerChecker, RewardConfig, ShopGrader, ToolEpisode
from rftgym.envs.tool_agent.parsing import ParsedCall, format_tool_calls, parse_tool_calls
from rftgym.envs.tool_agent.tasks import Task, generate_tasks
from rftgym.envs.tool_agent.tool_env import ToolEnv
from rftgym.envs.tool_agent.toolkit import CallRecord, Tool, ToolError, Toolset, function_tool
from rftgym.envs.tool_agent.tools import SHOP_TOOLS
from rftgym.envs.tool_agent.world import World, build_world, world_changes

__all__ = [
    "CallRecord", "CallsAndAnswerChecker", "ParsedCall", "RewardConfig", "SHOP_TOOLS", "ShopGrader", "Task", "Tool",
    "ToolAgentEnv", "ToolEnv", "ToolEpisode", "ToolError", "Toolset", "World", "build_world", "format_tool_calls",
    "function_tool", "generate_tasks", "parse_tool_calls", "world_changes",
]
