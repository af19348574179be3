"""The router's own stop sequences: which are sent, and a stream's matcher (held text, per
choice, released as it goes, the cut)."""

from __future__ import annotations

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


def test_a_completion_is_cut_at_the_earliest_stop_and_tool_calls_stay() -> None:
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
    assert second.message.text == "x " and len(second.message.tool_calls) == 1
    assert second.finish_reason == chat_pb2.FINISH_REASON_TOOL_CALLS


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
