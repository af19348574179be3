"""Key pools end to end (issue #3): bad keys are left at once, limited keys rest for exactly as long
as asked, one model's failures do not poison a key for another, limits hold under load."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any

import grpc
import pytest

from clients import details_from_rpc_error
from clients.switchboard.v1 import admin_service_pb2 as admin_pb
from clients.switchboard.v1 import chat_pb2
from clients.switchboard.v1 import router_service_pb2 as pb
from router_service.clock import ManualClock
from router_service.fake_upstream import FakeUpstream, Scenario
from tests.conftest import StartRouter


def one_provider(fake_url: str, keys: Sequence[object], **provider: object) -> dict[str, object]:
    return {
        "providers": {"alpha": {"base_url": fake_url, "keys": keys, **provider}},
        "models": {
            "a": {"deployments": [{"provider": "alpha", "model": "model-a"}]},
            "b": {"deployments": [{"provider": "alpha", "model": "model-b"}]},
        },
        "server": {"port": 0},
    }


def ask(model: str = "a") -> pb.ChatRequest:
    return pb.ChatRequest(
        params=chat_pb2.ChatParams(
            model=model, messages=[chat_pb2.ChatMessage(role=chat_pb2.ROLE_USER, text="hi")]
        )
    )


async def test_invalid_key_once_and_limited_key_rests_for_retry_after(
    fake: FakeUpstream, start_router: StartRouter
) -> None:
    clock = ManualClock()
    router = await start_router(
        one_provider(fake.base_url, ["k-bad", "k-limited", "k-good"]), clock=clock
    )
    fake.state.set_scenario(Scenario.invalid_key(), key="k-bad")
    fake.state.set_scenario(Scenario.rate_limited(retry_after="2", times=1), key="k-limited")

    for _ in range(100):
        response = await router.stub.Chat(ask())
        assert response.completion.choices[0].message.text == "Echo: hi"

    assert fake.state.count(key="k-bad") == 1
    assert fake.state.count(key="k-limited") == 1  # never again before its Retry-After
    assert fake.state.count(key="k-good") == 100

    clock.advance(2.0)
    for _ in range(4):
        await router.stub.Chat(ask())
    assert fake.state.count(key="k-limited") >= 2  # back in rotation after it
    assert fake.state.count(key="k-bad") == 1


async def test_key_failing_for_one_model_still_serves_another(
    fake: FakeUpstream, start_router: StartRouter
) -> None:
    router = await start_router(one_provider(fake.base_url, ["k1"]))
    fake.state.set_scenario(Scenario.rate_limited(retry_after="60"), key="k1", model="model-a")

    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await router.stub.Chat(ask("a"))
    assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert details_from_rpc_error(caught.value).retry_after_s == pytest.approx(60.0)

    response = await router.stub.Chat(ask("b"))
    assert response.completion.choices[0].message.text == "Echo: hi"
    assert fake.state.count(key="k1", model="model-b") == 1


async def test_max_in_flight_holds_under_concurrency(
    fake: FakeUpstream, start_router: StartRouter
) -> None:
    router = await start_router(
        one_provider(fake.base_url, [{"key": "k1", "max_in_flight": 2}], queue_timeout_s=30)
    )
    fake.state.set_scenario(Scenario(latency_ms=10))

    responses = await asyncio.gather(*(router.stub.Chat(ask()) for _ in range(50)))

    assert len(responses) == 50
    records = fake.state.calls(key="k1")
    events = sorted(
        [(r.started_at, 1) for r in records] + [(r.ended_at or 0.0, -1) for r in records]
    )
    running = peak = 0
    for _, delta in events:
        running += delta
        peak = max(peak, running)
    assert peak <= 2
    assert await router.leases_held() == 0


async def test_every_key_at_its_limit_waits_then_429s_with_a_hint(
    fake: FakeUpstream, start_router: StartRouter
) -> None:
    router = await start_router(
        one_provider(fake.base_url, [{"key": "k1", "rpm": 1}], queue_timeout_s=0.05)
    )
    await router.stub.Chat(ask())

    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await router.stub.Chat(ask())

    details = details_from_rpc_error(caught.value)
    assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert details.reason == "NO_CAPACITY"
    assert (
        details.retry_after_s is not None and 0 < details.retry_after_s <= 120
    )  # two windows at most
    assert fake.state.count() == 1  # a key at its limit is skipped, not tried


async def test_admin_lists_and_toggles_keys_by_fingerprint(
    fake: FakeUpstream, start_router: StartRouter
) -> None:
    router = await start_router(one_provider(fake.base_url, ["sk-secret-1", "sk-secret-2"]))
    fake.state.set_scenario(Scenario.invalid_key(), key="sk-secret-1")
    await router.stub.Chat(ask())

    listed = await router.admin.ListKeys(admin_pb.ListKeysRequest())
    states = {k.fingerprint: k for k in listed.keys}
    assert "sk-secret" not in str(listed)
    bad = next(k for k in listed.keys if k.last_outcome == "AUTH_INVALID")
    assert bad.state == admin_pb.KEY_STATE_DISABLED
    assert len(states) == 2

    good = next(k for k in listed.keys if k is not bad)
    toggled = await router.admin.SetKeyEnabled(
        admin_pb.SetKeyEnabledRequest(provider="alpha", fingerprint=good.fingerprint, enabled=False)
    )
    assert toggled.key.state == admin_pb.KEY_STATE_DISABLED
    with pytest.raises(grpc.aio.AioRpcError):
        await router.stub.Chat(ask())  # no usable key left
    await router.admin.SetKeyEnabled(
        admin_pb.SetKeyEnabledRequest(provider="alpha", fingerprint=good.fingerprint, enabled=True)
    )
    await router.stub.Chat(ask())


async def test_every_key_disabled_is_a_503_not_a_days_429(
    fake: FakeUpstream, start_router: StartRouter
) -> None:
    """Keys switched off for bad credentials are the service's outage, not the caller's pace:
    UNAVAILABLE (HTTP 503), without the disable's day as a Retry-After."""
    router = await start_router(one_provider(fake.base_url, ["sk-revoked"]))
    fake.state.set_scenario(Scenario.invalid_key(style="native"))
    with pytest.raises(grpc.aio.AioRpcError):
        await router.stub.Chat(ask())  # 401: the key is disabled
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await router.stub.Chat(ask())
    details = details_from_rpc_error(caught.value)
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
    assert (details.reason, details.retry_after_s) == ("NO_CAPACITY", None)
    assert "disabled" in details.message
    assert fake.state.count() == 1  # the disabled key was not tried again


async def test_raw_keys_never_leak(
    fake: FakeUpstream, start_router: StartRouter, caplog: pytest.LogCaptureFixture
) -> None:
    secrets = ["sk-leak-test-bad", "sk-leak-test-limited", "sk-leak-test-good"]
    router = await start_router(one_provider(fake.base_url, secrets))
    # Some providers echo the key they were given: that must not reach anyone either.
    echo = {"error": {"message": f"Incorrect API key provided: {secrets[0]}", "code": 400}}
    fake.state.set_scenario(Scenario(status=400, error_body=echo), key=secrets[0])
    fake.state.set_scenario(Scenario.rate_limited(retry_after="5"), key=secrets[1])
    # ...and an error may name other keys of the account than the one the call used.
    named = f"field not allowed for {secrets[2]} nor {secrets[0]}"
    passthrough = {"error": {"message": named, "code": 422}}
    fake.state.set_scenario(Scenario(status=422, error_body=passthrough), model="model-b")
    seen: list[str] = []
    with caplog.at_level(logging.DEBUG):
        for model in ("a", "a", "a", "b", "b"):
            try:
                seen.append(str(await router.stub.Chat(ask(model))))
            except grpc.aio.AioRpcError as exc:
                seen += [str(exc), repr(details_from_rpc_error(exc))]
        seen.append(str(await router.admin.ListKeys(admin_pb.ListKeysRequest())))
    seen += [record.getMessage() for record in caplog.records]
    blob = "\n".join(seen)
    assert "fp_" in blob
    # The caller's error, keys removed.
    assert "field not allowed for [redacted] nor [redacted]" in blob
    for secret in secrets:
        assert secret not in blob


@pytest.mark.parametrize(
    ("provider", "param", "message"),
    [
        ("alpha", "fingerprint", "No key with that fingerprint in provider `alpha`."),
        ("sk-secret-pasted", "provider", "No provider of that name."),
    ],
)
async def test_set_key_enabled_on_an_unknown_key_never_echoes_it(
    fake: FakeUpstream, start_router: StartRouter, provider: str, param: str, message: str
) -> None:
    router = await start_router(one_provider(fake.base_url, ["sk-secret-1"]))
    pasted = "sk-secret-pasted-instead-of-a-fingerprint"

    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await router.admin.SetKeyEnabled(
            admin_pb.SetKeyEnabledRequest(provider=provider, fingerprint=pasted, enabled=True)
        )

    details = details_from_rpc_error(caught.value)
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    assert (details.reason, details.openai_param, details.message) == (
        "KEY_NOT_FOUND",
        param,
        message,
    )
    assert "sk-secret" not in str(caught.value)


async def test_list_keys_of_an_unknown_provider_is_not_found_not_an_empty_list(
    fake: FakeUpstream, start_router: StartRouter
) -> None:
    """A typo (`--provider alpah`) answered with no keys read as a provider whose keys all went
    away; SetKeyEnabled already said NOT_FOUND. Never echoed: a key may be pasted there."""
    router = await start_router(one_provider(fake.base_url, ["sk-secret-1"]))

    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await router.admin.ListKeys(admin_pb.ListKeysRequest(provider="sk-secret-pasted"))

    details = details_from_rpc_error(caught.value)
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    assert (details.reason, details.openai_param) == ("KEY_NOT_FOUND", "provider")
    assert details.message == "No provider of that name."
    assert "sk-secret" not in str(caught.value)
    listed = await router.admin.ListKeys(admin_pb.ListKeysRequest(provider="alpha"))
    assert [key.provider for key in listed.keys] == ["alpha"]


async def test_set_key_enabled_without_a_provider_finds_the_one_with_that_fingerprint(
    fake: FakeUpstream, start_router: StartRouter, caplog: pytest.LogCaptureFixture
) -> None:
    config: dict[str, Any] = dict(one_provider(fake.base_url, ["sk-secret-1", "sk-secret-2"]))
    config["providers"]["beta"] = {"base_url": fake.base_url, "keys": ["sk-secret-3"]}
    router = await start_router(config)
    listed = await router.admin.ListKeys(admin_pb.ListKeysRequest(provider="beta"))
    (beta_key,) = listed.keys

    with caplog.at_level(logging.INFO, logger="switchboard.audit"):
        toggled = await router.admin.SetKeyEnabled(
            admin_pb.SetKeyEnabledRequest(
                fingerprint=beta_key.fingerprint, enabled=False, reason="leaked in a\nticket"
            )
        )

    assert (toggled.key.provider, toggled.key.state) == ("beta", admin_pb.KEY_STATE_DISABLED)
    # The audit line: who (the open router's caller), what, and why, on one line.
    (line,) = [r.__dict__ for r in caplog.records if r.__dict__.get("event") == "admin"]
    assert (line["client"], line["reason"]) == (
        "anonymous",
        f"disabled key {beta_key.fingerprint} of provider beta: 'leaked in a\\nticket'",
    )
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        pasted = "sk-secret-pasted-instead-of-a-fingerprint"
        await router.admin.SetKeyEnabled(
            admin_pb.SetKeyEnabledRequest(fingerprint=pasted, enabled=False)
        )
    details = details_from_rpc_error(caught.value)
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    assert (details.reason, details.openai_param, details.message) == (
        "KEY_NOT_FOUND",
        "fingerprint",
        "No key with that fingerprint in any provider.",
    )
    assert "sk-secret" not in str(caught.value)


async def test_set_key_enabled_without_a_provider_refuses_a_key_several_have(
    fake: FakeUpstream, start_router: StartRouter
) -> None:
    config: dict[str, Any] = dict(one_provider(fake.base_url, ["sk-shared-1"]))
    config["providers"]["beta"] = {"base_url": fake.base_url, "keys": ["sk-shared-1"]}
    router = await start_router(config)
    (listed, _) = (await router.admin.ListKeys(admin_pb.ListKeysRequest())).keys

    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await router.admin.SetKeyEnabled(
            admin_pb.SetKeyEnabledRequest(fingerprint=listed.fingerprint, enabled=False)
        )

    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert details_from_rpc_error(caught.value).message == (
        "Providers `alpha`, `beta` each have a key with that fingerprint: name one."
    )
    keys = (await router.admin.ListKeys(admin_pb.ListKeysRequest())).keys
    assert {k.state for k in keys} == {admin_pb.KEY_STATE_ACTIVE}  # neither was switched


async def test_enabling_a_key_lifts_its_set_asides_for_models(
    fake: FakeUpstream, start_router: StartRouter
) -> None:
    """A key refused one model (MODEL_DENIED) is set aside for it for `auth_disable_s`, which no
    probe lifts (its model list passes): the operator who got the key that model's access
    enables it, and it serves the model again at once."""
    router = await start_router(one_provider(fake.base_url, ["k1"]))
    denied = {"error": {"message": "You are not allowed to sample from this model"}}
    fake.state.set_scenario(
        Scenario(status=403, error_body=denied, times=1), key="k1", model="model-a"
    )
    with pytest.raises(grpc.aio.AioRpcError):
        await router.stub.Chat(ask("a"))
    (listed,) = (await router.admin.ListKeys(admin_pb.ListKeysRequest())).keys
    assert listed.last_outcome == "MODEL_DENIED"
    assert list(listed.cooling_models) == ["model-a"]
    with pytest.raises(grpc.aio.AioRpcError):
        await router.stub.Chat(ask("a"))  # set aside: not tried
    assert fake.state.count(key="k1", model="model-a") == 1

    toggled = await router.admin.SetKeyEnabled(
        admin_pb.SetKeyEnabledRequest(fingerprint=listed.fingerprint, enabled=True)
    )
    assert toggled.key.state == admin_pb.KEY_STATE_ACTIVE
    assert not toggled.key.cooling_models
    response = await router.stub.Chat(ask("a"))
    assert response.completion.choices[0].message.text == "Echo: hi"


async def test_enabling_a_recovering_key_makes_it_fully_usable(
    fake: FakeUpstream, start_router: StartRouter
) -> None:
    """A key its probe brought back serves one call at a time (half-open) until it has proved
    itself; an operator's enable vouches for it: no longer one at a time."""
    clock = ManualClock()
    config = one_provider(fake.base_url, ["k1"], queue_timeout_s=0)
    router = await start_router(config, clock=clock)
    fake.state.set_scenario(Scenario.invalid_key(style="openai"), key="k1")
    with pytest.raises(grpc.aio.AioRpcError):
        await router.stub.Chat(ask())
    fake.state.clear_scenarios()
    clock.advance(router.runtime.config.key_health.probe_initial_s * 1.5)  # its jitter's longest
    assert await router.runtime.prober.tick() == 1
    (listed,) = (await router.admin.ListKeys(admin_pb.ListKeysRequest())).keys

    await router.admin.SetKeyEnabled(
        admin_pb.SetKeyEnabledRequest(fingerprint=listed.fingerprint, enabled=True)
    )
    fake.state.set_scenario(Scenario(chunks=20, held_after_chunks=2))
    first = router.stub.ChatStream(pb.ChatStreamRequest(params=ask().params))
    try:
        assert (await anext(aiter(first))).route.deployment == "alpha/model-a"
        fake.state.clear_scenarios()
        response = await router.stub.Chat(ask())  # a second call beside the first
        assert response.completion.choices[0].message.text == "Echo: hi"
    finally:
        fake.state.release()
    assert [chunk async for chunk in first]


async def test_a_key_shaped_secret_in_a_disables_reason_is_never_shown(
    fake: FakeUpstream, start_router: StartRouter
) -> None:
    """A key the config does not hold (the account's new key, not yet configured; a client's
    issued key): the log's redactor masks its shape, the note every replica shows did not."""
    router = await start_router(one_provider(fake.base_url, ["sk-secret-1"]))
    (key,) = (await router.admin.ListKeys(admin_pb.ListKeysRequest())).keys
    reason = "rotated to sk-proj-N3wKey0123456789 (ticket 42)"
    toggled = await router.admin.SetKeyEnabled(
        admin_pb.SetKeyEnabledRequest(fingerprint=key.fingerprint, enabled=False, reason=reason)
    )
    (listed,) = (await router.admin.ListKeys(admin_pb.ListKeysRequest())).keys
    assert toggled.key.disabled_note == listed.disabled_note == "rotated to [redacted] (ticket 42)"
