"""`switchboard.key.in_flight` after a reload removed a key (rotated out, leaked): the calls
begun before it still hold the key, and the gauge says so under its fingerprint until they
end, so an operator sees when the old key stops being used; then its series goes."""

from __future__ import annotations

import copy
from typing import Any

from clients.switchboard.v1 import router_service_pb2 as pb
from router_service.config import SwitchboardConfig
from router_service.fake_upstream import FakeUpstream, Scenario
from router_service.keys import fingerprint
from router_service.telemetry.testing import TelemetryCapture
from tests.conftest import RouterHandle, StartRouter, base_config
from tests.helpers import eventually
from tests.router_service.telemetry.test_metrics import ask, samples, value

IN_FLIGHT = "switchboard_key_in_flight"
REMOVED = ["sk-alpha-1", "sk-alpha-2"]


def held(captured: TelemetryCapture, keys: list[str]) -> float:
    found = samples(captured.prometheus_text())
    return sum(
        value(found, IN_FLIGHT, switchboard_key_fingerprint=fingerprint(key)) for key in keys
    )


async def reload_without_alphas_keys(router: RouterHandle, config: dict[str, Any]) -> None:
    new = copy.deepcopy(config)
    new["providers"]["alpha"]["keys"] = ["sk-alpha-3"]
    await router.server.reload(SwitchboardConfig.model_validate(new))


async def test_a_removed_key_a_call_still_holds_stays_in_flight_until_it_ends(
    fake: FakeUpstream, start_router: StartRouter, captured: TelemetryCapture
) -> None:
    config = base_config(fake.base_url)
    router = await start_router(config)
    fake.state.set_scenario(Scenario(held_after_chunks=2), model="model-a")  # open until cancelled
    call = router.stub.ChatStream(pb.ChatStreamRequest(params=ask()))
    async for event in call:
        if event.WhichOneof("event") == "chunk":
            break
    await router.runtime.gauges.poll()
    assert held(captured, REMOVED) == 1

    await reload_without_alphas_keys(router, config)
    await router.runtime.gauges.poll()
    assert held(captured, REMOVED) == 1  # the stream on the old config holds it still
    assert held(captured, ["sk-alpha-3"]) == 0

    call.cancel()

    async def released() -> bool:  # the old pool's lease: the runtime's pools are the new ones
        await router.runtime.gauges.poll()
        return held(captured, REMOVED) == 0

    await eventually(released, what="the removed key released")
    found = samples(captured.prometheus_text())
    assert not any(  # its series gone: nothing holds it, no reload brings it back
        name == IN_FLIGHT and (("switchboard_key_fingerprint", fingerprint(key)) in labels)
        for name, labels in found
        for key in REMOVED
    )


async def test_a_removed_key_added_back_over_many_reloads_counts_its_call_once(
    fake: FakeUpstream, start_router: StartRouter, captured: TelemetryCapture
) -> None:
    """The call's lease is the old pool's; the key back under its name is a new pool's, with none
    of its own: the series says 1, not one per reload, then 0 (the key served again)."""
    config = base_config(fake.base_url)
    router = await start_router(config)
    fake.state.set_scenario(Scenario(held_after_chunks=2), model="model-a")
    call = router.stub.ChatStream(pb.ChatStreamRequest(params=ask()))
    async for event in call:
        if event.WhichOneof("event") == "chunk":
            break
    for _ in range(3):
        await reload_without_alphas_keys(router, config)
        await router.server.reload(SwitchboardConfig.model_validate(config))  # they are back
        await router.runtime.gauges.poll()
        assert held(captured, REMOVED) == 1

    call.cancel()

    async def released() -> bool:
        await router.runtime.gauges.poll()
        return held(captured, REMOVED) == 0

    await eventually(released, what="the removed key released")
    found = samples(captured.prometheus_text())
    for key in REMOVED:  # in the pool again: their series stay, at 0
        assert value(found, IN_FLIGHT, switchboard_key_fingerprint=fingerprint(key)) == 0
