"""OpenAI's hosted tools in the fake Responses API: with `Scenario.tool_call`, a request whose
first tool is `web_search` (`web_search_preview`, dated ones too), `local_shell` or `mcp` is
answered as OpenAI answers it (the openai SDK's `Response` output item and stream event types):

- web search: a `web_search_call` item (`action: {type: search, query}`: the last user text),
  then the message, its text cited whole by one `url_citation` (CITED_URL); streamed, the call's
  `response.web_search_call.in_progress` / `.searching` / `.completed` events, and
  `response.output_text.annotation.added` after the text's deltas (amid them with
  `Scenario.cite_after_deltas`);
- local shell: a `local_shell_call` item (`action: {type: exec, command: SHELL_COMMAND}`), call
  id TOOL_CALL_ID, unless the input ends with a `local_shell_call_output` (then text);
- file search: a `file_search_call` item (`queries`: the last user text), its `results` (one,
  its `text` FOUND_PREFIX and that query) only when `include` asks `file_search_call.results`;
  the answer's text cites the file (a `file_citation`, `index` its text's end);
  streamed, `response.file_search_call.in_progress` / `.searching` / `.completed`;
- code interpreter: a `code_interpreter_call` item (`code` and its logs), in the container the
  tool names (`container: "cntr_…"`), else a new one (`cntr_<response>`);
- image generation: an `image_generation_call` item (`result` IMAGE_B64, `revised_prompt`
  REVISED_PREFIX and the last user text); streamed, `.in_progress` / `.generating` /
  `.completed` of `response.image_generation_call`;
- MCP: an `mcp_call` item (server label as declared, tool MCP_TOOL, arguments `{}` or the
  scenario's `tool_arguments`, output
  MCP_OUTPUT); streamed, `response.mcp_call.in_progress`, `response.mcp_call_arguments.delta`
  (four characters each) /
  `.done` and `response.mcp_call.completed`.
"""

from __future__ import annotations

from typing import Any

from . import _responses as R

JsonObject = dict[str, Any]

CITED_URL = "https://example.com/fake-source"
SHELL_COMMAND = ["ls", "-la"]
MCP_TOOL = "roll"
MCP_OUTPUT = "4"
FOUND_PREFIX = "Found in notes.txt: "
REVISED_PREFIX = "A picture of "
IMAGE_B64 = "iVBORw0KGgo="
_STEPS = {
    "web_search_call": ("in_progress", "searching", "completed"),
    "file_search_call": ("in_progress", "searching", "completed"),
    "image_generation_call": ("in_progress", "generating", "completed"),
    "code_interpreter_call": ("in_progress", "interpreting", "completed"),
}
CITING = ("web_search", "file_search")  # the hosted tools whose answer cites what they found
_ITEMS = ("local_shell", "mcp", "file_search", "image_generation", "code_interpreter")
_ANSWERED = ("local_shell_call_output", "function_call_output", "custom_tool_call_output")


def hosted_tool(body: JsonObject) -> str | None:
    """`web_search`, `local_shell` or `mcp` when the request's first tool is that hosted tool
    and the last input item is no call's output (then the model answers in text)."""
    tools, items = body.get("tools"), body.get("input")
    if not isinstance(tools, list) or not tools or not isinstance(tools[0], dict):
        return None
    if isinstance(items, list) and items and items[-1].get("type") in _ANSWERED:
        return None
    kind = str(tools[0].get("type"))
    if kind.startswith("web_search"):
        return "web_search"
    return kind if kind in _ITEMS else None


def hosted_items(
    tool: str, body: JsonObject, hex_id: str, query: str, arguments: str = "{}"
) -> list[JsonObject]:
    """The hosted call item that comes before the answer (and, for a local shell, is it)."""
    tools, done = body["tools"], {"status": "completed"}
    if tool == "web_search":
        action = {"type": "search", "query": query}
        return [{"id": f"ws_{hex_id}", "type": "web_search_call", **done, "action": action}]
    if tool == "file_search":
        include = body.get("include")
        asked = isinstance(include, list) and "file_search_call.results" in include
        found = {"file_id": "file-fake", "filename": "notes.txt", "score": 0.9,
                 "text": FOUND_PREFIX + query, "attributes": {}}  # fmt: skip
        call = {"id": f"fs_{hex_id}", "type": "file_search_call", **done, "queries": [query]}
        return [{**call, "results": [found] if asked else None}]
    if tool == "image_generation":
        image = {"result": IMAGE_B64, "revised_prompt": REVISED_PREFIX + query}
        return [{"id": f"ig_{hex_id}", "type": "image_generation_call", **done, **image}]
    if tool == "code_interpreter":  # in the container the tool names, else a new one
        container = tools[0].get("container")
        ran: JsonObject = {"code": "print(2 + 2)", "outputs": [{"type": "logs", "logs": "4"}]}
        call = {"id": f"ci_{hex_id}", "type": "code_interpreter_call", **done, **ran}
        named = container if isinstance(container, str) else f"cntr_{hex_id}"
        return [{**call, "container_id": named}]
    if tool == "local_shell":
        run = {"type": "exec", "command": SHELL_COMMAND, "env": {}}
        call = {"id": f"lsh_{hex_id}", "type": "local_shell_call", "call_id": R.TOOL_CALL_ID}
        return [{**call, "status": "completed", "action": run}]
    label = str(tools[0].get("server_label", "server"))
    call = {"id": f"mcp_{hex_id}", "type": "mcp_call", "server_label": label, "name": MCP_TOOL}
    return [{**call, "arguments": arguments, "output": MCP_OUTPUT, "status": "completed"}]


def citation(text: str, tool: str = "web_search") -> JsonObject:
    """The `url_citation` of a web search's answer (its whole text); a file search's
    `file_citation` at its text's end (`index`: a position in the text, as OpenAI's)."""
    if tool == "file_search":
        return {"type": "file_citation", "file_id": "file-fake", "filename": "notes.txt",
                "index": len(text)}  # fmt: skip
    return {"type": "url_citation", "start_index": 0, "end_index": len(text),
            "url": CITED_URL, "title": "Fake source"}  # fmt: skip


def item_events(item: JsonObject, at: JsonObject) -> tuple[JsonObject, list[JsonObject]]:
    """A hosted item's opening (as `output_item.added` shows it) and its own events."""
    kind = item["type"]
    if kind in _STEPS:
        events = [{"type": f"response.{kind}.{step}", **at} for step in _STEPS[kind]]
        opened = {**item, "status": "in_progress"}
        return opened | ({"result": None} if "result" in item else {}), events
    if kind == "mcp_call":
        arguments = item["arguments"]
        # A few characters a delta, as OpenAI streams them (a find in them is split).
        pieces = [arguments[i : i + 4] for i in range(0, len(arguments), 4)] or [""]
        deltas = [{"type": "response.mcp_call_arguments.delta", **at, "delta": p} for p in pieces]
        events = [
            {"type": "response.mcp_call.in_progress", **at},
            *deltas,
            {"type": "response.mcp_call_arguments.done", **at, "arguments": arguments},
            {"type": "response.mcp_call.completed", **at},
        ]
        opened = {**item, "status": "in_progress", "arguments": "", "output": None}
        return opened, events
    return {**item, "status": "in_progress"}, []
