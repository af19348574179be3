"""Anthropic's server tools (web search, web fetch) as a routing need: a chat declaring one can
only be answered by a deployment whose upstream runs it (Claude on Anthropic's API; web search
on Vertex AI), so the planner leaves the others out of its plan, saying why, and a group with
none refuses the request (INVALID_ARGUMENT, naming the tool and the group) rather than send it
where the tool would be dropped or refused."""

from __future__ import annotations

from dataclasses import dataclass

from clients.codec.anthropic import server_tool_family
from clients.switchboard.v1 import chat_pb2
from router_service.engine._model import Deployment
from router_service.errors import InvalidRequestError

__all__ = ["EXCLUDED", "ServerTool", "refused", "server_tools_of", "unable"]

# The plan's exclusion reason for a deployment that runs none of them (`Plan.excluded`).
EXCLUDED = "server_tools"


@dataclass(frozen=True, slots=True)
class ServerTool:
    index: int  # its position in the request's tools
    type: str  # as declared: web_search_20250305
    family: str  # web_search, web_fetch


def server_tools_of(params: chat_pb2.ChatParams) -> tuple[ServerTool, ...]:
    """The server tools a chat declares (most declare none: one pass over its tools)."""
    found = []
    for index, tool in enumerate(params.tools):
        family = server_tool_family(tool.type) if tool.type != "function" else None
        if family is not None:
            found.append(ServerTool(index, tool.type, family))
    return tuple(found)


def unable(deployment: Deployment, tools: tuple[ServerTool, ...]) -> ServerTool | None:
    """The first of `tools` the deployment's upstream does not run; None when it runs them all."""
    runs = deployment.server_tools
    return next((tool for tool in tools if tool.family not in runs), None)


def refused(model: str, tool: ServerTool) -> InvalidRequestError:
    return InvalidRequestError(
        f"tools[{tool.index}]: `{tool.type}` is a server tool that runs at Anthropic, and no "
        f"deployment of `{model}` runs it (Claude on Anthropic's API runs web search and web "
        "fetch; Claude on Vertex AI, web search).",
        param=f"tools[{tool.index}].type",
    )
