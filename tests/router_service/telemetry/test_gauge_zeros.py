"""The state gauges give every series they have from the first poll, at 0 while nothing is in
that state, as `switchboard.keys` does each state: a panel or an alert on the keys disabled
(`switchboard.cooldowns.active`, scope `key`) reads 0, not "no data", and the series does not
vanish when the provider's last disabled key is enabled again."""

from __future__ import annotations

from clients.switchboard.v1 import admin_service_pb2 as admin_pb
from router_service.fake_upstream import FakeUpstream
from router_service.keys import fingerprint
from router_service.telemetry.testing import TelemetryCapture
from tests.conftest import RouterHandle, StartRouter, base_config
from tests.router_service.telemetry.test_metrics import samples

ACTIVE = "switchboard_cooldowns_active"


def disabled_keys(captured: TelemetryCapture) -> dict[str, float]:
    """The `key` scope's series, by provider: present ones only."""
    return {
        dict(labels)["switchboard_provider"]: found
        for (name, labels), found in samples(captured.prometheus_text()).items()
        if name == ACTIVE and ("switchboard_cooldown_scope", "key") in labels
    }


async def set_enabled(router: RouterHandle, enabled: bool) -> None:
    request = admin_pb.SetKeyEnabledRequest(
        provider="alpha", fingerprint=fingerprint("sk-alpha-1"), enabled=enabled
    )
    await router.admin.SetKeyEnabled(request)
    await router.runtime.gauges.poll()


async def test_the_keys_disabled_are_a_series_at_zero_before_and_after_one_is(
    fake: FakeUpstream, start_router: StartRouter, captured: TelemetryCapture
) -> None:
    router = await start_router(base_config(fake.base_url))
    await router.runtime.gauges.poll()
    assert disabled_keys(captured) == {"alpha": 0, "beta": 0}

    await set_enabled(router, False)
    assert disabled_keys(captured) == {"alpha": 1, "beta": 0}

    await set_enabled(router, True)
    assert disabled_keys(captured) == {"alpha": 0, "beta": 0}
