"""The router's own stop sequences: which are sent, and a stream's matcher (held text, per
choice, released as it goes, the cut)."""

from __future__ import annotations

import random

from clients.switchboard.v1 import chat_pb2
from router_service.engine._stops import StreamStops, beyond_cap, cut_completion

Chunk = chat_pb2.ChatCompletionChunk


def delta(index: int, text: str, finish: str = "") -> Chunk:
    choice = chat_pb2.ChunkChoice(index=index, delta=chat_pb2.ChatMessage(text=text))
    if finish:
        choice.finish_reason = chat_pb2.FINISH_REASON_STOP
        choice.finish_reason_raw = finish
    return Chunk(id="c", model="m", choices=[choice])


def texts(chunks: list[Chunk]) -> list[tuple[int, str]]:
    return [(c.index, c.delta.text) for chunk in chunks for c in chunk.choices]


def test_only_stops_past_the_cap_are_left_to_the_router_and_the_params_keep_theirs() -> None:
    params = chat_pb2.ChatParams(
        model="m", stop_list=chat_pb2.StopSequences(values=["a", "b", "c", "", "d"])
    )
    sent, left = beyond_cap(params, 2)
    assert list(sent.stop_list.values) == ["a", "b"] and left == ("c", "d")
    assert list(params.stop_list.values) == ["a", "b", "c", "", "d"]  # the caller's untouched
    assert beyond_cap(params, 5) == (params, ())
    assert beyond_cap(params, None) == (params, ())
    one = chat_pb2.ChatParams(model="m", stop_text="x")
    assert beyond_cap(one, 1) == (one, ())


def test_blank_stops_an_upstream_refuses_are_left_to_the_router_with_those_past_its_cap() -> None:
    """Anthropic refuses a stop of whitespace alone: it is not sent, nor counted in the cap."""
    values = ["\n", "a", " \t", "b", "", "c"]
    params = chat_pb2.ChatParams(model="m", stop_list=chat_pb2.StopSequences(values=values))
    sent, left = beyond_cap(params, None, blank_refused=True)
    assert list(sent.stop_list.values) == ["a", "b", "c"] and left == ("\n", " \t")
    sent, left = beyond_cap(params, 2, blank_refused=True)
    assert list(sent.stop_list.values) == ["a", "b"] and left == ("\n", " \t", "c")
    lone = chat_pb2.ChatParams(model="m", stop_text="\n")
    sent, left = beyond_cap(lone, None, blank_refused=True)
    assert sent.WhichOneof("stop") is None and left == ("\n",)
    assert beyond_cap(lone, None) == (lone, ())  # an upstream that takes it gets it
    plain = chat_pb2.ChatParams(model="m", stop_list=chat_pb2.StopSequences(values=["a"]))
    assert beyond_cap(plain, None, blank_refused=True) == (plain, ())


def test_a_completion_is_cut_at_the_earliest_stop_and_its_tool_calls_go_with_the_rest() -> None:
    said = chat_pb2.ChatMessage(text="abc END def STOP")
    called = chat_pb2.ChatMessage(
        text="x STOP y", tool_calls=[chat_pb2.ToolCall(id="t", type="function")]
    )
    completion = chat_pb2.ChatCompletion(
        choices=[
            chat_pb2.Choice(index=0, message=said, finish_reason=chat_pb2.FINISH_REASON_LENGTH),
            chat_pb2.Choice(
                index=1, message=called, finish_reason=chat_pb2.FINISH_REASON_TOOL_CALLS
            ),
        ]
    )
    cut_completion(completion, ["STOP", "END"])
    first, second = completion.choices
    assert first.message.text == "abc " and first.finish_reason == chat_pb2.FINISH_REASON_STOP
    assert first.matched_stop == "END" and first.finish_reason_raw == "stop"
    assert second.message.text == "x " and not second.message.tool_calls
    assert second.finish_reason == chat_pb2.FINISH_REASON_STOP and second.matched_stop == "STOP"


def test_text_with_a_stop_and_a_tool_call_in_one_chunk_ends_as_the_call_does() -> None:
    """The text comes before the tool call in one chunk as in one message: the stop ends the
    choice there, the call dropped (with the rest of its arguments), finish `stop`; a tool call
    of an earlier chunk came before the stop and stays."""
    call = chat_pb2.ToolCall(id="t", type="function", index=0)
    call.function.name = "lookup"
    completion = chat_pb2.ChatCompletion(
        choices=[chat_pb2.Choice(message=chat_pb2.ChatMessage(text="x STOP y", tool_calls=[call]))]
    )
    cut_completion(completion, ["STOP"])
    stops = StreamStops(["STOP"], choices=1, prompt_tokens=1)
    both = delta(0, "x STOP y")
    both.choices[0].delta.tool_calls.append(call)
    rest = Chunk(id="c", model="m", choices=[chat_pb2.ChunkChoice(index=0)])
    rest.choices[0].delta.tool_calls.append(chat_pb2.ToolCall(index=0))
    [out, _usage] = stops.chunks([both, rest, delta(0, "", finish="tool_calls")])
    [called] = completion.choices
    for choice, said in ((called, called.message), (out.choices[0], out.choices[0].delta)):
        assert said.text == "x " and not said.tool_calls
        assert choice.finish_reason == chat_pb2.FINISH_REASON_STOP and choice.matched_stop == "STOP"


def test_a_stream_holds_back_only_what_could_begin_a_stop_and_cuts_across_deltas() -> None:
    stops = StreamStops(["<END>"], choices=1, prompt_tokens=7)
    assert texts(stops.chunks([delta(0, "hello wor")])) == [(0, "hello")]  # " wor" held
    assert texts(stops.chunks([delta(0, "ld <E")])) == [(0, " worl")]  # "d <E" held
    assert not stops.cut
    out = stops.chunks([delta(0, "ND> after"), delta(0, " more")])
    assert texts(out) == [(0, "d ")]  # " more" not read: cut
    assert out[0].choices[0].matched_stop == "<END>"
    assert out[0].choices[0].finish_reason == chat_pb2.FINISH_REASON_STOP
    assert stops.cut
    usage = out[-1].usage  # the estimate, the upstream's own never coming
    assert not out[-1].choices and usage.prompt_tokens == 7 and usage.completion_tokens > 0


def test_each_choice_is_matched_apart_and_a_natural_last_finish_does_not_cut() -> None:
    stops = StreamStops(["##"], choices=2, prompt_tokens=1)
    out = stops.chunks([delta(0, "a #"), delta(1, "b #")])
    assert texts(out) == [(0, "a "), (1, "b ")]
    out = stops.chunks([delta(0, "# zzz"), delta(1, "c")])
    assert texts(out) == [(0, ""), (1, "#")]
    assert not stops.cut  # choice 1 still runs
    assert stops.chunks([delta(0, "dropped")]) == []  # what an ended choice says after
    out = stops.chunks([delta(1, " end", finish="stop")])
    assert texts(out) == [(1, "c end")]  # flushed whole at its finish
    assert not stops.cut  # the upstream ended the last: its own usage chunk follows
    usage = Chunk(id="c", usage=chat_pb2.Usage(total_tokens=9))
    assert stops.chunks([usage]) == [usage]


def streamed(stops: list[str], pieces: list[str]) -> tuple[str, str]:
    """The text a stream of `pieces` shows, and the stop that ended it."""
    matcher = StreamStops(stops, choices=1, prompt_tokens=1)
    out = [
        c for piece in pieces for chunk in matcher.chunks([delta(0, piece)]) for c in chunk.choices
    ]
    out += [c for chunk in matcher.chunks([delta(0, "", finish="stop")]) for c in chunk.choices]
    return "".join(c.delta.text for c in out), next(
        (c.matched_stop for c in out if c.matched_stop), ""
    )


def test_a_stop_inside_a_longer_one_cuts_a_stream_as_it_cuts_the_call_whatever_the_pieces() -> None:
    """ "###" completes before "\\n### " does, though the longer one begins first: the stream
    waits to see which it is, as the call (the whole text at once) would cut it."""
    stops = ["\n### ", "###"]
    completion = chat_pb2.ChatCompletion(
        choices=[chat_pb2.Choice(message=chat_pb2.ChatMessage(text="hello\n### Instruction"))]
    )
    cut_completion(completion, stops)
    assert completion.choices[0].message.text == "hello"
    assert streamed(stops, ["hello\n### Instruction"]) == ("hello", "\n### ")
    assert streamed(stops, ["hello\n###", " Instruction"]) == ("hello", "\n### ")
    assert streamed(stops, ["hel", "lo\n#", "##", " Inst"]) == ("hello", "\n### ")
    # Not the longer one after all: the shorter one cuts, in either shape.
    assert streamed(stops, ["hello\n###", "x"]) == ("hello\n", "###")
    assert streamed(stops, ["hello\n###"]) == ("hello\n", "###")  # the finish settles it


def test_a_cut_streams_usage_estimate_counts_the_reasoning_and_calls_the_upstream_generated() -> (
    None
):
    """A reasoning model's thinking is billed as completion tokens: the estimate of a stream cut
    before the upstream's usage came counts it, not the answer's few characters alone."""
    stops = StreamStops(["<END>"], choices=1, prompt_tokens=3)
    thinking = Chunk(id="c", model="m", choices=[chat_pb2.ChunkChoice(index=0)])
    thinking.choices[0].delta.extra_json = '{"reasoning_content":"' + "t" * 400 + '"}'
    call = chat_pb2.ToolCall(id="t", type="function", index=0)
    call.function.arguments = "a" * 40
    calling = Chunk(id="c", model="m", choices=[chat_pb2.ChunkChoice(index=0)])
    calling.choices[0].delta.tool_calls.append(call)
    out = stops.chunks([thinking, calling, delta(0, "ok<END> more")])
    assert stops.cut
    assert out[-1].usage.completion_tokens == (400 + 40 + len("ok<END> more")) // 4


def test_the_held_text_goes_out_before_a_tool_call_not_after_it() -> None:
    """An answer that says something, then calls a tool: the text held back goes with the call's
    first delta (before it), not at the finish after the call (where the Anthropic entrance
    would make it a text block of its own after the tool_use)."""
    stops = StreamStops(["<END>"], choices=1, prompt_tokens=1)
    assert texts(stops.chunks([delta(0, "Let me check.")])) == [(0, "Let me ch")]
    calling = Chunk(id="c", model="m", choices=[chat_pb2.ChunkChoice(index=0)])
    calling.choices[0].delta.tool_calls.append(chat_pb2.ToolCall(id="t", type="function"))
    [out] = stops.chunks([calling])
    assert out.choices[0].delta.text == "eck." and len(out.choices[0].delta.tool_calls) == 1
    [end] = stops.chunks([delta(0, "", finish="tool_calls")])
    assert end.choices[0].delta.text == ""


def test_a_stream_cuts_where_the_call_does_however_its_text_is_split() -> None:
    """Random stops (prefixes of one another, overlapping, inside one another) and texts of a
    small alphabet, split at random: the stream shows what the call does, naming the same stop."""
    rng = random.Random(7)
    for _ in range(3000):
        stops = [
            "".join(rng.choices("ab#\n", k=rng.randint(1, 4))) for _ in range(rng.randint(1, 4))
        ]
        text = "".join(rng.choices("ab#\nxy", k=rng.randint(0, 14)))
        call = chat_pb2.ChatCompletion(
            choices=[chat_pb2.Choice(message=chat_pb2.ChatMessage(text=text))]
        )
        cut_completion(call, stops)
        cuts = sorted(rng.sample(range(len(text) + 1), rng.randint(0, min(len(text) + 1, 5))))
        pieces = [text[a:b] for a, b in zip([0, *cuts], [*cuts, len(text)], strict=True)]
        expected = (call.choices[0].message.text, call.choices[0].matched_stop)
        assert streamed(stops, pieces) == expected, (stops, pieces)
