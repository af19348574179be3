"""Anthropic's server tools (web search, web fetch) as a routing need: a chat declaring one can
only be answered by a deployment whose upstream runs it (Claude on Anthropic's API; web search
on Vertex AI), so the planner leaves the others out of its plan, saying why, and a group with
none refuses the request (INVALID_ARGUMENT, naming the tool and the group) rather than send it
where the tool would be dropped or refused.

OpenAI's hosted tools (web search, MCP, local shell…: clients/codec/_responses_hosted.py) are
such a need too, of their own family (HOSTED): a chat declaring one is answered only by a
deployment called on OpenAI's Responses API or an OpenAI-compatible server that runs that tool on
its chat API (`providers.<name>.hosted_tools`: Groq's code_interpreter); one handing back their
items (HOSTED_ITEM), only by the Responses API. A chat deployment at OpenAI itself (api.openai.com,
Azure), which serves every chat model on the Responses API too, is called there for such a
request (`fitted`: its `hosted_twin`), not left out."""

from __future__ import annotations

from dataclasses import dataclass

import orjson

from clients.codec._responses_custom import HOSTED_ITEMS
from clients.codec._responses_hosted import is_hosted_tool
from clients.codec.anthropic import server_tool_family
from clients.switchboard.v1 import chat_pb2
from router_service.engine._model import HOSTED, HOSTED_ITEM, Deployment
from router_service.errors import InvalidRequestError

__all__ = [
    "EXCLUDED",
    "HOSTED",
    "ServerTool",
    "fitted",
    "refused",
    "server_tools_of",
    "unable",
]

# The plan's exclusion reason for a deployment that runs none of them (`Plan.excluded`).
EXCLUDED = "server_tools"


@dataclass(frozen=True, slots=True)
class ServerTool:
    index: int  # its position in the request's tools
    type: str  # as declared: web_search_20250305
    family: str  # web_search, web_fetch; HOSTED, HOSTED_ITEM
    item: bool = False  # a hosted item a message hands back (`index`: the message's)


def server_tools_of(params: chat_pb2.ChatParams) -> tuple[ServerTool, ...]:
    """The server tools a chat declares (most declare none: one pass over its tools)."""
    found = []
    for index, tool in enumerate(params.tools):
        if tool.type == "function":
            continue
        family = HOSTED if is_hosted_tool(tool.type) else server_tool_family(tool.type)
        if family is not None:
            found.append(ServerTool(index, tool.type, family))
    for index, message in enumerate(params.messages):
        if message.extra_json and HOSTED_ITEMS in message.extra_json:
            items = orjson.loads(message.extra_json).get(HOSTED_ITEMS)
            if isinstance(items, list) and items and isinstance(items[0], dict):
                kind = str(items[0].get("type"))
                found.append(ServerTool(index, kind, HOSTED_ITEM, item=True))
    return tuple(found)


def unable(deployment: Deployment, tools: tuple[ServerTool, ...]) -> ServerTool | None:
    """The first of `tools` the deployment's upstream does not run; None when it runs them all."""
    runs = deployment.server_tools
    return next((tool for tool in tools if not _runs(runs, tool)), None)


def fitted(deployment: Deployment, tools: tuple[ServerTool, ...]) -> Deployment:
    """The deployment as it is called for a request declaring `tools`: its Responses API twin
    when the deployment does not run them on its chat API but that twin does."""
    twin = deployment.hosted_twin
    if twin is None or not tools or unable(deployment, tools) is None:
        return deployment
    return twin if unable(twin, tools) is None else deployment


def _runs(runs: frozenset[str], tool: ServerTool) -> bool:
    # A compatible server's hosted tools are named one by one (`openai_hosted:code_interpreter`).
    return tool.family in runs or (tool.family == HOSTED and f"{HOSTED}:{tool.type}" in runs)


def refused(model: str, tool: ServerTool) -> InvalidRequestError:
    if tool.family in (HOSTED, HOSTED_ITEM):
        return _hosted_refused(model, tool)
    return InvalidRequestError(
        f"tools[{tool.index}]: `{tool.type}` is a server tool that runs at Anthropic, and no "
        f"deployment of `{model}` runs it (Claude on Anthropic's API runs web search and web "
        "fetch; Claude on Vertex AI, web search).",
        param=f"tools[{tool.index}].type",
    )


def _hosted_refused(model: str, tool: ServerTool) -> InvalidRequestError:
    carried = (
        "only a deployment called on OpenAI's Responses API carries them (a Responses-only "
        "model, or `api: responses` at kinds openai and azure)"
    )
    if tool.item:
        return InvalidRequestError(
            f"messages[{tool.index}]: an item of type `{tool.type}` is one of OpenAI's hosted "
            f"tools' items: {carried}, and no deployment of `{model}` is one.",
            param=f"messages[{tool.index}]",
        )
    carried += " or an OpenAI-compatible server whose `hosted_tools` names it"
    return InvalidRequestError(
        f"tools[{tool.index}]: `{tool.type}` is one of OpenAI's hosted tools: {carried}, and no "
        f"deployment of `{model}` is one.",
        param=f"tools[{tool.index}].type",
    )
