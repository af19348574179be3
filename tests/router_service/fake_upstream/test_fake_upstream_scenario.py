"""Scenario (de)serialisation, presets, rule matching and answer splitting, without a server."""

from __future__ import annotations

from pathlib import Path

import pytest

from router_service.fake_upstream import Scenario
from router_service.fake_upstream._responses import split_pieces
from router_service.fake_upstream._scenario import ScenarioTable, load_rules_file


def test_to_dict_only_non_defaults_and_round_trips() -> None:
    scenario = Scenario(latency_ms=5, headers={"x": "y"}, stall_after_chunks=2, times=3)
    data = scenario.to_dict()
    assert data == {"latency_ms": 5, "headers": {"x": "y"}, "stall_after_chunks": 2, "times": 3}
    assert Scenario.from_dict(data) == scenario
    assert Scenario().to_dict() == {}


@pytest.mark.parametrize(
    "preset",
    [
        Scenario.rate_limited(retry_after="2", times=2),
        Scenario.server_error(503),
        Scenario.invalid_key(),
        Scenario.invalid_key(style="openai"),
        Scenario.quota_exhausted(),
        Scenario.stall(),
    ],
)
def test_presets_round_trip(preset: Scenario) -> None:
    assert preset.kind is not None
    assert Scenario.from_dict(preset.to_dict()) == preset


def test_kind_in_dict_expands_preset_with_overrides() -> None:
    scenario = Scenario.from_dict({"kind": "rate_limited", "retry_after": "9", "times": 1})
    assert (scenario.effective_status, scenario.retry_after, scenario.times) == (429, "9", 1)
    openai_style = Scenario.from_dict({"kind": "invalid_key_openai"})
    assert openai_style.status == 401


@pytest.mark.parametrize(
    "data",
    [{"bogus": 1}, {"latency_ms": -1}, {"times": 0}, {"status": 42}, {"chunks": -2}],
)
def test_invalid_scenarios_are_rejected(data: dict[str, object]) -> None:
    with pytest.raises(ValueError, match="Scenario"):
        Scenario.from_dict(data)


def test_default_error_bodies_and_wrapped_error_shape() -> None:
    assert Scenario(status=401).error_response_body()["error"]["code"] == "invalid_api_key"
    assert Scenario(status=529).error_response_body()["error"]["type"] == "server_error"
    assert Scenario(error_body={"e": 1}).effective_status == 400
    assert Scenario(status=200).is_error is False
    inner = {"message": "m"}
    assert Scenario(wrapped_error=inner).wrapped_error_body() == {"error": inner}
    assert Scenario(wrapped_error={"error": inner}).wrapped_error_body() == {"error": inner}


def test_table_precedence_and_times() -> None:
    table = ScenarioTable()
    general, by_key = Scenario(status=500), Scenario(status=429, times=2)
    table.set(general)
    table.set(by_key, key="k")
    assert table.peek("k", "m") is by_key
    assert [table.take("k", "m") for _ in range(3)] == [by_key, by_key, general]
    assert [r.key for r in table.rules()] == ["*"]
    assert table.take("other", "m") is general  # unlimited rules are never used up
    table.clear()
    assert table.take("k", "m") is None


def test_load_rules_is_all_or_nothing(tmp_path: Path) -> None:
    table = ScenarioTable()
    with pytest.raises(ValueError, match="unknown Scenario field"):
        table.load([{"scenario": {"status": 500}}, {"scenario": {"nope": 1}}])
    assert table.rules() == []

    path = tmp_path / "rules.yaml"
    path.write_text("scenarios:\n  - {key: a, scenario: {kind: quota_exhausted}}\n", "utf-8")
    table.load(load_rules_file(path))
    (rule,) = table.rules()
    assert (rule.key, rule.model, rule.scenario.kind) == ("a", "*", "quota_exhausted")


def test_split_pieces() -> None:
    assert split_pieces("Echo: a b", None) == ("Echo: a b", ["Echo: ", "a ", "b"])
    text, pieces = split_pieces("Echo: a b c d e", 2)
    assert pieces == ["Echo: a b ", "c d e"]
    text, pieces = split_pieces("Echo: hi", 5)
    assert len(pieces) == 5 and "".join(pieces) == text and text.startswith("Echo: hi ")
    assert split_pieces("", None) == ("", [""])


def test_a_rule_naming_a_text_picks_the_requests_that_say_it_before_any_other() -> None:
    table = ScenarioTable()
    table.set(Scenario(status=500), model="m")
    table.load([{"text": "two", "scenario": {"status": 400, "times": 1}}])
    assert table.take("k", "m", "two") == Scenario(status=400, times=1)
    assert table.take("k", "m", "two") == Scenario(status=500)  # used up: the next rule
    assert table.take("k", "m", "one") == Scenario(status=500)
    assert table.take("k", "other", "one") is None
    assert [rule.to_dict()["text"] for rule in table.rules()] == ["*"]
