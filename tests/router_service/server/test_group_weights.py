"""A deployment named by two `weighted` groups is one object (its keys, health and statistics are
shared), yet its share is what each group gives it: the second group's weights are not the
first's."""

from __future__ import annotations

from collections import Counter

from router_service.fake_upstream import FakeUpstream
from tests.conftest import StartRouter
from tests.router_service.server.test_routing import ask, two_providers

CALLS = 240


async def test_each_weighted_group_shares_its_deployments_by_its_own_weights(
    fake: FakeUpstream, start_router: StartRouter
) -> None:
    config = two_providers(fake.base_url)
    config["models"] = {
        name: {
            "strategy": "weighted",
            "deployments": [
                {"provider": "alpha", "model": "model-a", "weight": a},
                {"provider": "beta", "model": "model-b", "weight": b},
            ],
        }
        for name, a, b in (("mostly-a", 9, 1), ("mostly-b", 1, 9))
    }
    config["pools"] = {"both": {"groups": ["mostly-b", "mostly-a"], "strategy": "weighted"}}
    router = await start_router(config)

    async def shares(model: str) -> float:
        served: Counter[str] = Counter()
        for i in range(CALLS):  # each its own text and conversation: no cache, no stickiness
            answer = await router.stub.Chat(ask(model=model, session=f"{model}{i}", text=f"#{i}"))
            served[answer.route.deployment] += 1
        return served["alpha/model-a"] / CALLS

    # Expected 0.9, 0.1 and 0.1 (the pool takes each deployment's weight from its first group):
    # 0.5 is more than 13 standard deviations away from each at 240 calls.
    assert await shares("mostly-a") > 0.5
    assert await shares("mostly-b") < 0.5
    assert await shares("both") < 0.5
