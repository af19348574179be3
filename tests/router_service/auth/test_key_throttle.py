"""Wrong client keys on every router service are throttled per caller address
(`auth.key_throttle`), on a real router over a real loopback channel: past the limit an address
gets RESOURCE_EXHAUSTED with RetryInfo before any key is looked up (the right one too) until its
window ends on the router's clock; other addresses are not slowed. The caller's address is the
gRPC peer's, or, from a trusted proxy (`auth.trusted_proxies`, loopback by default: these tests'
channel), the right-most untrusted hop of its `x-forwarded-for`. A right key does not clear its
address (a caller holding a key could otherwise guess on between its own calls); a known key
without the method's scope is no guess (unless it holds `admin`: test_admin_key_oracle.py). No
key is in the error, the log or the metric."""

from __future__ import annotations

import logging

import grpc
import pytest

from clients import details_from_rpc_error
from clients.switchboard.v1 import admin_service_pb2 as admin_pb
from clients.switchboard.v1 import router_service_pb2 as pb
from router_service.clock import ManualClock
from router_service.config import SwitchboardConfig
from router_service.fake_upstream import FakeUpstream
from router_service.telemetry.testing import TelemetryCapture
from tests.conftest import RouterHandle, StartRouter
from tests.router_service.auth.helpers import chat, client, guarded_config

pytestmark = pytest.mark.timeout(60)

APP, OPS = "sk-app-models-key-1", "sk-ops-admin-key-1"
WRONG = "sk-guess-Zz9-wrong"
ATTACKER, OTHER = "203.0.113.7", "198.51.100.20"
OK, UNKNOWN = grpc.StatusCode.OK, grpc.StatusCode.UNAUTHENTICATED
THROTTLED = grpc.StatusCode.RESOURCE_EXHAUSTED


async def guarded(
    fake: FakeUpstream, start_router: StartRouter, clock: ManualClock, **auth: object
) -> RouterHandle:
    clients = (client("app", APP, scopes=["models"]), client("ops", OPS, scopes=["admin"]))
    config = guarded_config(fake.base_url, *clients)
    config["auth"].update(auth)
    return await start_router(config, clock=clock)


def metadata(key: str, forwarded_for: str | None) -> tuple[tuple[str, str], ...]:
    pairs = (("authorization", f"Bearer {key}"),)
    return pairs if forwarded_for is None else (*pairs, ("x-forwarded-for", forwarded_for))


async def models(router: RouterHandle, key: str, forwarded_for: str | None = None) -> object:
    """ListModels' status code."""
    try:
        await router.stub.ListModels(
            pb.ListModelsRequest(), metadata=metadata(key, forwarded_for), timeout=10
        )
    except grpc.aio.AioRpcError as exc:
        return exc.code()
    return OK


async def refused_for(router: RouterHandle, key: str, forwarded_for: str) -> tuple[float, str]:
    """A throttled call's RetryInfo and message, with its OpenAI code checked."""
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await router.stub.ListModels(
            pb.ListModelsRequest(), metadata=metadata(key, forwarded_for), timeout=10
        )
    assert caught.value.code() == THROTTLED
    details = details_from_rpc_error(caught.value)
    assert details.openai_code == "too_many_failed_authentications"
    assert details.reason == "KEY_THROTTLED"
    assert details.retry_after_s is not None
    return details.retry_after_s, details.message


async def test_one_address_past_its_limit_waits_out_its_window_and_no_other_does(
    fake: FakeUpstream, start_router: StartRouter, clock: ManualClock
) -> None:
    router = await guarded(
        fake, start_router, clock, key_throttle={"per_address": 3, "window_s": 60}
    )

    guesses = [await models(router, WRONG, ATTACKER) for _ in range(3)]
    clock.advance(20)
    retry_after_s, message = await refused_for(router, APP, ATTACKER)  # the right key too
    elsewhere = await models(router, APP, OTHER)
    clock.advance(40)
    after = await models(router, APP, ATTACKER)

    assert guesses == [UNKNOWN] * 3
    assert retry_after_s == pytest.approx(40) and "this address" in message
    assert APP not in message and WRONG not in message
    assert elsewhere == OK and after == OK


async def test_an_untrusted_peers_forwarded_for_is_ignored(
    fake: FakeUpstream, start_router: StartRouter, clock: ManualClock
) -> None:
    """This channel's peer (127.0.0.1) is no trusted proxy here: whatever address it names, its
    guesses are its own."""
    router = await guarded(
        fake,
        start_router,
        clock,
        key_throttle={"per_address": 3, "window_s": 60},
        trusted_proxies=["10.0.0.0/8"],
    )

    guesses = [await models(router, WRONG, f"192.0.2.{i}") for i in range(3)]

    assert guesses == [UNKNOWN] * 3
    assert await models(router, APP, OTHER) == THROTTLED
    assert await models(router, APP) == THROTTLED


async def test_the_right_most_untrusted_hop_is_the_caller(
    fake: FakeUpstream, start_router: StartRouter, clock: ManualClock
) -> None:
    """What the caller wrote itself (the left hops) cannot move it to a fresh address; trusted
    hops on the right (proxies of our own) are skipped."""
    router = await guarded(
        fake,
        start_router,
        clock,
        key_throttle={"per_address": 3, "window_s": 60},
        trusted_proxies=["127.0.0.0/8", "10.0.0.0/8"],
    )

    guesses = [await models(router, WRONG, f"192.0.2.{i}, {ATTACKER}, 10.1.2.3") for i in range(3)]

    assert guesses == [UNKNOWN] * 3
    assert await models(router, APP, ATTACKER) == THROTTLED
    assert await models(router, APP, f"{ATTACKER}, 10.9.9.9") == THROTTLED
    assert await models(router, APP, "192.0.2.0") == OK


async def test_a_port_beside_the_forwarded_address_is_no_fresh_address(
    fake: FakeUpstream, start_router: StartRouter, clock: ManualClock
) -> None:
    """Some proxies write the caller's port too (Azure Application Gateway: `ip:port`), which
    uvicorn, and so the edge, forwards as it is: a new connection per guess is the same caller."""
    router = await guarded(
        fake, start_router, clock, key_throttle={"per_address": 3, "window_s": 60}
    )

    guesses = [await models(router, WRONG, f"{ATTACKER}:4100{i}") for i in range(3)]
    guesses += [await models(router, WRONG, f"[2001:db8::7]:44{i}") for i in range(3)]

    assert guesses == [UNKNOWN] * 6
    assert await models(router, APP, ATTACKER) == THROTTLED
    assert await models(router, APP, f"{ATTACKER}:5000") == THROTTLED
    assert await models(router, APP, "2001:db8::8") == THROTTLED  # its /64
    assert await models(router, APP, OTHER) == OK


async def test_a_right_key_between_guesses_does_not_clear_the_address(
    fake: FakeUpstream, start_router: StartRouter, clock: ManualClock
) -> None:
    """A caller with a key of its own cannot guess on forever by using it between guesses."""
    router = await guarded(
        fake, start_router, clock, key_throttle={"per_address": 3, "window_s": 60}
    )

    answers = []
    for _ in range(3):
        answers.append(await models(router, WRONG, ATTACKER))
        answers.append(await models(router, APP, ATTACKER))

    assert answers == [UNKNOWN, OK, UNKNOWN, OK, UNKNOWN, THROTTLED]


async def test_a_known_key_without_the_scope_is_no_guess(
    fake: FakeUpstream, start_router: StartRouter, clock: ManualClock
) -> None:
    """A real client that lacks a scope is refused every time (PERMISSION_DENIED), and never
    locks its address out; wrong keys from another address are counted as ever. (An admin key
    out of its scope is another matter: test_admin_key_oracle.py.)"""
    router = await guarded(
        fake, start_router, clock, key_throttle={"per_address": 2, "window_s": 60}
    )

    scoped_out = []
    for _ in range(4):
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await router.stub.Chat(chat(), metadata=metadata(APP, OTHER), timeout=10)
        scoped_out.append(caught.value.code())
    guesses = [await models(router, WRONG, ATTACKER) for _ in range(2)]

    assert scoped_out == [grpc.StatusCode.PERMISSION_DENIED] * 4
    assert await models(router, APP, OTHER) == OK
    assert guesses == [UNKNOWN] * 2
    assert await models(router, APP, ATTACKER) == THROTTLED


async def test_a_missing_key_is_no_guess(
    fake: FakeUpstream, start_router: StartRouter, clock: ManualClock
) -> None:
    router = await guarded(
        fake, start_router, clock, key_throttle={"per_address": 1, "window_s": 60}
    )
    for _ in range(3):
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await router.stub.ListModels(pb.ListModelsRequest(), timeout=10)
        assert caught.value.code() == UNKNOWN

    assert await models(router, APP) == OK


async def test_a_reload_changes_the_limits_and_keeps_the_count(
    fake: FakeUpstream, start_router: StartRouter, clock: ManualClock
) -> None:
    router = await guarded(
        fake, start_router, clock, key_throttle={"per_address": 5, "window_s": 60}
    )
    for _ in range(2):
        assert await models(router, WRONG, ATTACKER) == UNKNOWN
    assert await models(router, APP, ATTACKER) == OK

    config = router.runtime.config.model_dump(round_trip=True)
    config["auth"]["key_throttle"]["per_address"] = 2
    await router.server.reload(SwitchboardConfig.model_validate(config))

    assert await models(router, APP, ATTACKER) == THROTTLED
    assert await models(router, APP, OTHER) == OK


async def test_rotating_addresses_cannot_grow_what_is_kept(
    fake: FakeUpstream, start_router: StartRouter, clock: ManualClock
) -> None:
    router = await guarded(
        fake,
        start_router,
        clock,
        key_throttle={"per_address": 1, "window_s": 60, "addresses": 4},
    )

    guesses = [await models(router, WRONG, f"2001:db8:{i:x}::1") for i in range(10)]

    assert guesses == [UNKNOWN] * 10  # each address's first: nothing refused overall
    assert len(router.server.throttles.keys) == 4
    assert await models(router, APP, "2001:db8:9::2") == THROTTLED  # the newest are kept
    clock.advance(60)
    assert await models(router, APP, OTHER) == OK
    assert len(router.server.throttles.keys) == 0


async def test_rotating_addresses_cannot_push_a_locked_out_one_out(
    fake: FakeUpstream, start_router: StartRouter, clock: ManualClock
) -> None:
    """Past `addresses`, the oldest windows not locked out go first: a locked-out address stays
    refused while its window lasts, however many fresh ones guess after it. Only when every
    kept one is locked out does the oldest go (still bounded)."""
    router = await guarded(
        fake,
        start_router,
        clock,
        key_throttle={"per_address": 2, "window_s": 60, "addresses": 4},
    )
    for _ in range(2):
        assert await models(router, WRONG, ATTACKER) == UNKNOWN
    clock.advance(10)

    rotated = [await models(router, WRONG, f"2001:db8:{i:x}::1") for i in range(10)]

    assert rotated == [UNKNOWN] * 10
    assert len(router.server.throttles.keys) == 4
    assert await models(router, APP, ATTACKER) == THROTTLED

    for i in range(4):  # every kept address locked out: the oldest (ATTACKER's) goes
        for _ in range(2):
            await models(router, WRONG, f"192.0.2.{i}")
    assert len(router.server.throttles.keys) == 4
    assert await models(router, APP, ATTACKER) == OK
    assert [await models(router, APP, f"192.0.2.{i}") for i in range(4)] == [THROTTLED] * 4


async def test_an_ended_lockout_makes_room_before_a_counting_window(
    fake: FakeUpstream, start_router: StartRouter, clock: ManualClock
) -> None:
    """An address locked out later than another, but whose window opened first, ends first:
    once ended it is dropped, not kept in place of a window still counting (whose guesser would
    then start afresh)."""
    router = await guarded(
        fake,
        start_router,
        clock,
        key_throttle={"per_address": 2, "window_s": 60, "addresses": 3},
    )
    await models(router, WRONG, "192.0.2.1")  # opens at 0, ends at 60
    clock.advance(10)
    for _ in range(2):  # opens and is locked out at 10, ends at 70
        await models(router, WRONG, "192.0.2.2")
    clock.advance(40)
    await models(router, WRONG, "192.0.2.1")  # locked out at 50, ends at 60
    clock.advance(12)
    assert await models(router, WRONG, ATTACKER) == UNKNOWN  # counting, at 62
    assert await models(router, WRONG, OTHER) == UNKNOWN  # a third address kept

    assert await models(router, WRONG, ATTACKER) == UNKNOWN  # its second: locked out
    assert await models(router, APP, ATTACKER) == THROTTLED


async def test_a_lockout_is_audited_once_and_refusals_counted_without_a_key(
    fake: FakeUpstream,
    start_router: StartRouter,
    clock: ManualClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    with TelemetryCapture() as captured, caplog.at_level(logging.INFO):
        router = await guarded(
            fake, start_router, clock, key_throttle={"per_address": 2, "window_s": 60}
        )
        for _ in range(2):
            await models(router, WRONG, ATTACKER)
        for key in (APP, WRONG, APP):
            assert await models(router, key, ATTACKER) == THROTTLED
        points = [
            (attributes, point.value)
            for attributes, point in captured.points("switchboard.auth.key.refusals")
        ]

    assert points == [({"scope": "address"}, 3)]
    throttled = [r for r in caplog.records if "key authentication throttled" in r.getMessage()]
    assert len(throttled) == 1 and ATTACKER in throttled[0].getMessage()
    assert throttled[0].name == "switchboard.audit"
    assert APP not in caplog.text and WRONG not in caplog.text


async def test_wrong_admin_keys_count_against_the_admin_limits_only(
    fake: FakeUpstream, start_router: StartRouter, clock: ManualClock
) -> None:
    """An admin page whose router key is wrong locks its operator out of AdminService, not
    that address's apps out of the other services."""
    router = await guarded(
        fake,
        start_router,
        clock,
        key_throttle={"per_address": 2, "window_s": 60},
        admin_throttle={"per_address": 2, "overall": 100, "window_s": 60},
    )

    for _ in range(2):
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await router.admin.GetServerInfo(
                admin_pb.GetServerInfoRequest(), metadata=metadata(WRONG, ATTACKER), timeout=10
            )
        assert caught.value.code() == UNKNOWN

    assert await models(router, APP, ATTACKER) == OK
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await router.admin.GetServerInfo(
            admin_pb.GetServerInfoRequest(), metadata=metadata(OPS, ATTACKER), timeout=10
        )
    assert caught.value.code() == THROTTLED
