"""Prices (USD per million tokens) on a deployment or a provider, and money budgets on clients:
validated on load, errors by place."""

from __future__ import annotations

import pytest

from router_service.config import PriceConfig, parse_config
from router_service.errors import ConfigError

PRICED = """
providers:
  openai:
    base_url: https://api.example.com/v1
    keys: [sk-a]
    price: {input_per_mtok: 1, output_per_mtok: 2}
models:
  gpt:
    deployments:
      - provider: openai
        model: gpt-4o-mini
        price: {input_per_mtok: 0.15, output_per_mtok: 0.60, cached_input_per_mtok: 0.075}
      - {provider: openai, model: gpt-4.1}
auth:
  clients: [{name: app, key: sk-app, usd_per_day: 5, usd_per_month: 100.5}]
"""


def test_a_deployment_takes_its_own_price_else_its_providers() -> None:
    config = parse_config(PRICED)
    mini, full = config.models["gpt"].deployments
    assert config.price_of(mini) == mini.price
    assert mini.price is not None and mini.price.cached_input_per_mtok == 0.075
    assert config.price_of(full) == config.providers["openai"].price
    assert config.auth.clients[0].usd_per_day == 5
    assert config.auth.clients[0].usd_per_month == 100.5
    plain = PRICED.replace("    price: {input_per_mtok: 1, output_per_mtok: 2}\n", "")
    assert parse_config(plain).price_of(parse_config(plain).models["gpt"].deployments[1]) is None


@pytest.mark.parametrize(
    ("field", "value", "why"),
    [
        ("input_per_mtok", "-1", "greater than or equal to 0"),
        ("input_per_mtok", ".nan", "finite number"),
        ("output_per_mtok", ".inf", "finite number"),
        ("cached_input_per_mtok", "-0.5", "greater than or equal to 0"),
        ("cached_input_per_mtok", ".inf", "finite number"),
        ("cache_write_per_mtok", "-1", "greater than or equal to 0"),
        ("cache_write_1h_per_mtok", ".inf", "finite number"),
    ],
)
def test_a_price_is_finite_and_not_negative(field: str, value: str, why: str) -> None:
    prices = {
        "input_per_mtok": "0.15",
        "output_per_mtok": "0.60",
        "cached_input_per_mtok": "0",
        "cache_write_per_mtok": "0",
        "cache_write_1h_per_mtok": "0",
    }
    line = ", ".join(f"{name}: {value if name == field else v}" for name, v in prices.items())
    text = PRICED.replace(
        "{input_per_mtok: 0.15, output_per_mtok: 0.60, cached_input_per_mtok: 0.075}", f"{{{line}}}"
    )
    with pytest.raises(ConfigError) as caught:
        parse_config(text, source="c.yaml")
    assert f"c.yaml:12: models.gpt.deployments[0].price.{field}: " in str(caught.value)
    assert why in str(caught.value)


def test_a_price_names_both_token_prices_and_nothing_else() -> None:
    with pytest.raises(ConfigError, match=r"providers\.openai\.price\.output_per_mtok: Field"):
        parse_config(PRICED.replace(", output_per_mtok: 2", ""))
    with pytest.raises(ConfigError, match=r"price\.input_per_mtoken: Extra inputs"):
        parse_config(PRICED.replace("price: {input_per_mtok: 1", "price: {input_per_mtoken: 1"))


def test_one_deployment_has_one_price() -> None:
    again = PRICED.replace(
        "auth:", "  again:\n    deployments: [{provider: openai, model: gpt-4o-mini}]\nauth:"
    )
    with pytest.raises(ConfigError) as caught:
        parse_config(again, source="c.yaml")
    message = str(caught.value)
    assert "models.again.deployments[0]" in message
    assert "openai/gpt-4o-mini has another price in models.gpt" in message


@pytest.mark.parametrize("value", ["0", "-3", ".inf", ".nan", "lots"])
def test_a_money_budget_is_a_positive_finite_amount(value: str) -> None:
    with pytest.raises(ConfigError, match=r"auth\.clients\[0\]\.usd_per_day"):
        parse_config(PRICED.replace("usd_per_day: 5", f"usd_per_day: {value}"))


def test_a_money_budget_needs_something_priced() -> None:
    lines = PRICED.splitlines(keepends=True)
    unpriced = "".join(line for line in lines if "price:" not in line)
    with pytest.raises(ConfigError) as caught:
        parse_config(unpriced)
    message = str(caught.value)
    for field in ("usd_per_day", "usd_per_month"):
        assert f"auth.clients[0].{field}: " in message
    assert "no deployment or provider has a price" in message
    # A token budget alone needs no price; one price anywhere is enough for money budgets.
    parse_config(unpriced.replace("usd_per_day: 5, usd_per_month: 100.5", "tokens_per_day: 9"))
    parse_config(PRICED.replace("    price: {input_per_mtok: 1, output_per_mtok: 2}\n", ""))


def test_cache_writes_cost_their_own_price_else_the_next_one_set() -> None:
    # A million input tokens: 0.5M read from the cache, 0.3M written to it (0.1M for an hour).
    counts = {"cached_tokens": 500_000, "cache_write_tokens": 300_000}
    counts["cache_write_1h_tokens"] = 100_000
    both = PriceConfig(
        input_per_mtok=3,
        output_per_mtok=15,
        cached_input_per_mtok=0.3,
        cache_write_per_mtok=3.75,
        cache_write_1h_per_mtok=6,
    )
    assert both.cost_usd(1_000_000, 0, **counts) == pytest.approx(0.6 + 0.15 + 0.75 + 0.6)
    five = both.model_copy(update={"cache_write_1h_per_mtok": None})  # the hour's: 5m price
    assert five.cost_usd(1_000_000, 0, **counts) == pytest.approx(0.6 + 0.15 + 1.125)
    old = PriceConfig(input_per_mtok=3, output_per_mtok=15)  # before cache writes: all input
    assert old.cost_usd(1_000_000, 1_000_000, **counts) == pytest.approx(3 + 15)


def test_cache_counts_are_cut_to_the_input_they_are_parts_of() -> None:
    price = PriceConfig(input_per_mtok=1, output_per_mtok=0, cache_write_1h_per_mtok=1000)
    # 10 input tokens: 8 read, so at most 2 written, and at most those 2 for an hour.
    spent = price.cost_usd(10, 0, 8, cache_write_tokens=5, cache_write_1h_tokens=9)
    assert spent == pytest.approx((8 * 1 + 2 * 1000) / 1e6)
