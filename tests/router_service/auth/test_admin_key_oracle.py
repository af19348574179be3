"""No oracle of the admin key, on a real router over a real loopback channel: a key whose scopes
hold `admin` but not the called method's is answered exactly as a key the router does not know
(code, message, details, trailing metadata) and counted as one, against `auth.key_throttle`
only (as an unknown key is: no side effect on `auth.admin_throttle` tells it apart), so a guesser
on RouterService learns nothing and must try each candidate on AdminService; the true reason is
in the audit log only (by fingerprint). A key
without `admin` that lacks a scope is still told so (PERMISSION_DENIED: a misconfigured app)."""

from __future__ import annotations

import logging

import grpc
import pytest

from clients import details_from_rpc_error
from clients.switchboard.v1 import admin_service_pb2 as admin_pb
from clients.switchboard.v1 import router_service_pb2 as pb
from router_service.clock import ManualClock
from router_service.fake_upstream import FakeUpstream
from router_service.keys import fingerprint
from tests.conftest import RouterHandle, StartRouter
from tests.router_service.auth.helpers import chat, client, guarded_config

pytestmark = pytest.mark.timeout(60)

OPS, APP, MIXED = "sk-ops-admin-key-1", "sk-app-models-key-1", "sk-ops-embed-key-1"
WRONG = "sk-guess-Zz9-wrong"
ATTACKER, OTHER = "203.0.113.7", "198.51.100.20"
UNKNOWN, THROTTLED = grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.RESOURCE_EXHAUSTED


async def guarded(
    fake: FakeUpstream, start_router: StartRouter, clock: ManualClock, **auth: object
) -> RouterHandle:
    clients = (
        client("ops", OPS, scopes=["admin"]),
        client("app", APP, scopes=["models"]),
        client("mixed", MIXED, scopes=["admin", "embed"]),
    )
    config = guarded_config(fake.base_url, *clients)
    config["auth"].update(auth)
    return await start_router(config, clock=clock)


def metadata(key: str, forwarded_for: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {key}"), ("x-forwarded-for", forwarded_for))


async def chat_refused(router: RouterHandle, key: str, forwarded_for: str) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await router.stub.Chat(chat(), metadata=metadata(key, forwarded_for), timeout=10)
    return caught.value


async def server_info(router: RouterHandle, key: str, forwarded_for: str) -> grpc.StatusCode:
    try:
        await router.admin.GetServerInfo(
            admin_pb.GetServerInfoRequest(), metadata=metadata(key, forwarded_for), timeout=10
        )
    except grpc.aio.AioRpcError as exc:
        return exc.code()
    return grpc.StatusCode.OK


def answer(error: grpc.aio.AioRpcError) -> tuple[object, ...]:
    """All a caller sees of a refusal."""
    return (
        error.code(),
        error.details(),
        details_from_rpc_error(error),
        tuple(error.trailing_metadata() or ()),
    )


async def test_an_admin_key_on_chat_is_answered_as_an_unknown_key(
    fake: FakeUpstream,
    start_router: StartRouter,
    clock: ManualClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    router = await guarded(fake, start_router, clock)

    with caplog.at_level(logging.INFO, logger="switchboard.audit"):
        unknown = answer(await chat_refused(router, WRONG, ATTACKER))
        admin_only = answer(await chat_refused(router, OPS, OTHER))
        mixed = answer(await chat_refused(router, MIXED, OTHER))

    assert unknown[0] == UNKNOWN
    assert admin_only == unknown and mixed == unknown
    denied = [r for r in caplog.records if getattr(r, "outcome", None) == "denied"]
    assert [(r.client, r.reason) for r in denied] == [  # type: ignore[attr-defined]
        ("ops", "scope:chat:answered_as_unknown_key"),
        ("mixed", "scope:chat:answered_as_unknown_key"),
    ]
    assert denied[0].key_fingerprint == fingerprint(OPS)  # type: ignore[attr-defined]
    assert OPS not in caplog.text and MIXED not in caplog.text
    assert await server_info(router, OPS, OTHER) == grpc.StatusCode.OK


async def test_a_key_without_admin_is_still_told_it_lacks_the_scope(
    fake: FakeUpstream, start_router: StartRouter, clock: ManualClock
) -> None:
    """A misconfigured app must hear what is wrong; and it is no guess: never locked out."""
    router = await guarded(fake, start_router, clock, key_throttle={"per_address": 1})

    refusals = [details_from_rpc_error(await chat_refused(router, APP, OTHER)) for _ in range(3)]

    assert [(d.code, d.openai_code) for d in refusals] == [
        (grpc.StatusCode.PERMISSION_DENIED, "missing_scope")
    ] * 3


async def test_an_admin_key_out_of_scope_counts_against_the_key_throttle(
    fake: FakeUpstream, start_router: StartRouter, clock: ManualClock
) -> None:
    router = await guarded(
        fake,
        start_router,
        clock,
        key_throttle={"per_address": 2, "window_s": 60},
        admin_throttle={"per_address": 100, "overall": 1000, "window_s": 60},
    )

    guesses = [(await chat_refused(router, OPS, ATTACKER)).code() for _ in range(2)]
    landed = (await chat_refused(router, OPS, ATTACKER)).code()

    assert guesses == [UNKNOWN] * 2 and landed == THROTTLED
    assert await server_info(router, OPS, ATTACKER) == THROTTLED  # the key throttle's too
    assert await server_info(router, OPS, OTHER) == grpc.StatusCode.OK


async def test_a_guesser_behind_the_admin_limit_learns_nothing_on_chat(
    fake: FakeUpstream, start_router: StartRouter, clock: ManualClock
) -> None:
    """Once its address is past the admin limit, the admin key on RouterService still answers
    as an unknown key does (no 429 that only a real key would get)."""
    router = await guarded(
        fake,
        start_router,
        clock,
        key_throttle={"per_address": 100, "window_s": 60},
        admin_throttle={"per_address": 2, "overall": 100, "window_s": 60},
    )
    for _ in range(2):
        assert await server_info(router, WRONG, ATTACKER) == UNKNOWN

    assert answer(await chat_refused(router, OPS, ATTACKER)) == answer(
        await chat_refused(router, WRONG, ATTACKER)
    )
    assert await server_info(router, OPS, ATTACKER) == THROTTLED


async def test_open_mode_has_no_admin_key_to_hide(
    fake: FakeUpstream, start_router: StartRouter, clock: ManualClock
) -> None:
    """In open mode any caller is admitted with every scope, admin too: an admin-only key out
    of its scope is told so."""
    router = await guarded(fake, start_router, clock, open=True)

    refused = await chat_refused(router, OPS, OTHER)
    listed = await router.stub.ListModels(pb.ListModelsRequest(), timeout=10)

    assert refused.code() == grpc.StatusCode.PERMISSION_DENIED
    assert listed.models


async def test_the_admin_throttle_tells_no_admin_key_found_on_chat(
    fake: FakeUpstream, start_router: StartRouter, clock: ManualClock
) -> None:
    """A guesser brings the admin throttle one short of its limit, guesses on Chat, then asks
    AdminService with no key (no guess, but refused first past a limit): were the admin key
    counted there and an unknown one not, that answer would tell which guess landed, and guesses
    on Chat from many addresses would escape the admin overall limit."""
    router = await guarded(
        fake,
        start_router,
        clock,
        key_throttle={"per_address": 100, "window_s": 60},
        admin_throttle={"per_address": 2, "overall": 100, "window_s": 60},
    )
    assert await server_info(router, WRONG, ATTACKER) == UNKNOWN  # one short of its limit
    assert await server_info(router, WRONG, OTHER) == UNKNOWN

    await chat_refused(router, WRONG, ATTACKER)
    await chat_refused(router, OPS, OTHER)

    probes = []
    for address in (ATTACKER, OTHER):
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            request = admin_pb.GetServerInfoRequest()
            await router.admin.GetServerInfo(request, metadata=(("x-forwarded-for", address),))
        probes.append(details_from_rpc_error(caught.value))
    assert [(d.code, d.openai_code) for d in probes] == [(UNKNOWN, "missing_api_key")] * 2
