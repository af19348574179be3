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
