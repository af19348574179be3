"""One deployment is one object however many groups name it: its own settings (what it is, not
how a group routes to it) have one value. A second group giving another is refused with its
place, instead of the first group's silently winning; a group that leaves one unset takes the
value another group gave."""

from __future__ import annotations

import pytest

from router_service.config import parse_config
from router_service.errors import ConfigError

CONFIG = """
providers:
  azure: {{kind: azure, base_url: https://contoso.openai.azure.com, keys: [k]}}
models:
  first:
    deployments:
      - {{provider: azure, model: prod-reasoner, {first}}}
  second:
    deployments:
      - {{provider: azure, model: prod-reasoner, {second}}}
auth: {{open: true}}
"""


@pytest.mark.parametrize(
    ("field", "first", "second"),
    [
        ("base_model", "base_model: o3-mini", "base_model: gpt-4o"),
        ("reasoning", "reasoning: true", "reasoning: false"),
        ("realtime", "realtime: false", "realtime: true"),
        ("context_window", "context_window: 128000", "context_window: 200000"),
    ],
)
def test_a_deployments_own_setting_is_given_once(field: str, first: str, second: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(CONFIG.format(first=first, second=second), source="c.yaml")

    assert f"models.second.deployments[0].{field}: " in str(caught.value)
    assert f"azure/prod-reasoner has another {field} in models.first" in str(caught.value)


def test_the_same_settings_in_two_groups_and_a_weight_of_each_are_taken() -> None:
    same = "base_model: o3-mini, reasoning: true, context_window: 128000"
    config = parse_config(CONFIG.format(first=f"{same}, weight: 1", second=f"{same}, weight: 3"))

    assert [g.deployments[0].base_model for g in config.models.values()] == ["o3-mini"] * 2


def test_a_setting_given_by_one_group_holds_for_the_deployment_in_every_group() -> None:
    config = parse_config(CONFIG.format(first="weight: 1", second="context_window: 128000"))

    own = config.own_settings()["azure/prod-reasoner"]
    assert own.context_window == 128000 and own.base_model is None
