"""`switchboard admin` (router_service/admin_cli/) against a real router on a loopback port and
the fake upstream: each subcommand's table and JSON show the router's real state, and what it
changes the router really does (a disabled key gets no calls, a purged answer is asked upstream
again). Deadlines are shown against the router's ManualClock."""

from __future__ import annotations

import json
import logging
from importlib import metadata
from pathlib import Path

import pytest

from clients.switchboard.v1 import routing_pb2
from router_service.admin_cli._format import size
from router_service.fake_upstream import FakeUpstream, Scenario
from router_service.keys import fingerprint
from tests.conftest import StartRouter
from tests.router_service.admin_cli.shell import ALICE, Shell, ops_shell
from tests.router_service.auth.helpers import bearer, chat
from tests.router_service.server.client_figures import NOON

pytestmark = pytest.mark.timeout(60)

ALPHA_1, ALPHA_2, BETA_1 = (fingerprint(k) for k in ("sk-alpha-1", "sk-alpha-2", "sk-beta-1"))


@pytest.fixture
async def ops(fake: FakeUpstream, start_router: StartRouter, tmp_path: Path) -> Shell:
    return await ops_shell(fake, start_router, tmp_path)


async def chats(ops: Shell, calls: int, *, same: bool = False) -> list[int]:
    """Alice chats `calls` times, each call another question unless `same`; each answer's
    cache status."""
    statuses = []
    for _ in range(calls):
        ops.asked += 0 if same else 1
        request = chat(text=f"question {ops.asked}")
        answer = await ops.router.stub.Chat(request, metadata=bearer(ALICE))
        statuses.append(answer.route.cache)
    await ops.router.runtime.afterwork.drain()  # the statistics and counts after the answers
    return statuses


async def test_info_says_which_replica_answered_and_what_it_runs(ops: Shell) -> None:
    ops.clock.advance(3725)

    shown = await ops("info")

    assert (shown.code, shown.err) == (0, "")
    assert shown.row("version") == ["version", metadata.version("switchboard")]
    assert shown.row("address") == ["address", ops.router.server.address]
    assert shown.row("serving for") == ["serving for", "1h 2m"]
    assert shown.row("config") == ["config", "(no file), loaded 1h 2m ago"]
    assert shown.row("last reload") == ["last reload", "ok"]
    assert shown.row("state") == ["state", "memory"]
    assert shown.row("certificate") == ["certificate", "none (plaintext gRPC)"]
    assert shown.row("callers") == ["callers", "client keys"]
    # --json after the subcommand as before it: the message, with the proto's field names.
    for argv in (["info", "--json"], ["--json", "info"]):
        answer = json.loads((await ops(*argv)).out)
        assert answer["address"] == ops.router.server.address
        assert answer["started_unix"] == NOON
        assert answer["auth_open"] is False  # printed although false: scripts expect it
        assert answer["reload_error"] == ""


async def test_a_key_disabled_from_the_shell_is_shown_so_and_gets_no_calls(
    ops: Shell, fake: FakeUpstream, caplog: pytest.LogCaptureFixture
) -> None:
    listed = await ops("keys")
    assert listed.code == 0
    assert listed.lines()[0][:4] == ["PROVIDER", "FINGERPRINT", "STATE", "IN FLIGHT"]
    assert [cells[1:4] for cells in listed.lines()[1:]] == [
        [ALPHA_1, "active", "0"],
        [ALPHA_2, "active", "0"],
        [BETA_1, "active", "0"],
    ]
    await chats(ops, 4)  # the least recently used key first: both alpha keys take calls
    assert fake.state.count(key="sk-alpha-1") == fake.state.count(key="sk-alpha-2") == 2

    with caplog.at_level(logging.INFO, logger="switchboard.audit"):
        disabled = await ops("keys", "disable", ALPHA_1, "--reason", "leaked in a ticket")

    assert disabled.code == 0
    assert disabled.out.startswith(f"{ALPHA_1} of alpha disabled (until enabled again)\n")
    (audited,) = [r for r in caplog.records if r.__dict__.get("event") == "admin"]
    assert (audited.name, audited.__dict__["client"]) == ("switchboard.audit", "ops")
    said = f"disabled key {ALPHA_1} of provider alpha: 'leaked in a ticket'"
    assert said == audited.__dict__["reason"]
    after = await ops("keys", "--provider", "alpha")
    assert [cells[:6] for cells in after.lines()[1:]] == [
        ["alpha", ALPHA_1, "disabled", "0", "until changed", "manual: leaked in a ticket (ops)"],
        ["alpha", ALPHA_2, "active", "0", "-", "-"],
    ]
    as_json = json.loads((await ops("keys", "--provider", "alpha", "--json")).out)
    states = {key["fingerprint"]: key for key in as_json["keys"]}
    assert states[ALPHA_1]["state"] == "KEY_STATE_DISABLED"
    assert states[ALPHA_1]["until_unix"] > NOON + 365 * 86400
    assert [states[ALPHA_1][f"disabled_{part}"] for part in ("reason", "note", "by")] == [
        *("manual", "leaked in a ticket", "ops")
    ]
    assert (states[ALPHA_2]["state"], states[ALPHA_2]["max_in_flight"]) == ("KEY_STATE_ACTIVE", 0)
    assert states[ALPHA_2]["last_outcome"] == "OK"
    assert states[ALPHA_2]["cooling_models"] == {}

    await chats(ops, 4)
    assert (fake.state.count(key="sk-alpha-1"), fake.state.count(key="sk-alpha-2")) == (2, 6)

    enabled = await ops("keys", "enable", ALPHA_1)
    assert (enabled.code, enabled.out.splitlines()[0]) == (0, f"{ALPHA_1} of alpha enabled")
    assert (await ops("keys")).lines()[1][1:6] == [ALPHA_1, "active", "0", "-", "-"]
    await chats(ops, 2)
    assert fake.state.count(key="sk-alpha-1") == 3  # back in rotation


async def test_a_cooling_key_shows_its_model_and_when_it_ends(
    ops: Shell, fake: FakeUpstream
) -> None:
    rate_limited = Scenario.rate_limited(retry_after="42", times=1)
    fake.state.set_scenario(rate_limited, key="sk-alpha-1", model="model-a")
    await chats(ops, 1)  # alpha-1 answers 429 for model-a; alpha-2 then serves the call
    ops.clock.advance(12)

    shown = await ops("keys", "--provider", "alpha")

    assert shown.lines()[1] == [
        *("alpha", ALPHA_1, "cooling", "0", "-", "-", "RATE_LIMITED", "model-a in 30s")
    ]
    as_json = json.loads((await ops("keys", "--json")).out)
    (cooling,) = [key for key in as_json["keys"] if key["cooling_models"]]
    assert cooling["cooling_models"] == {"model-a": NOON + 42}


async def test_an_unknown_fingerprint_or_provider_is_the_routers_not_found(ops: Shell) -> None:
    # A raw key pasted where its fingerprint goes: neither the router nor the command echoes it.
    pasted = await ops("keys", "disable", "sk-alpha-1")
    assert (pasted.code, pasted.out) == (4, "")
    assert pasted.err == (
        "switchboard admin: not found: No key with that fingerprint in any provider.\n"
    )
    unknown = await ops("keys", "enable", ALPHA_1, "--provider", "nope")
    assert (unknown.code, unknown.err) == (
        4,
        "switchboard admin: not found: No provider of that name.\n",
    )
    elsewhere = await ops("keys", "--provider", "beta", "enable", ALPHA_1)  # --provider first
    assert elsewhere.code == 4
    assert "No key with that fingerprint in provider `beta`." in elsewhere.err


async def test_stats_show_each_deployment_group_and_provider(ops: Shell) -> None:
    await chats(ops, 3)

    shown = await ops("stats")

    assert shown.code == 0
    deployment = shown.row("alpha/model-a")
    assert deployment[1:5] == ["alpha", deployment[2], "3", "0"]
    assert float(deployment[2]) > 0.5  # the success mean, after three successes
    assert deployment[-1] == "-"  # no cooldown
    assert shown.row("chain") == ["chain", "ordered", "alpha/model-a, beta/model-b", "-"]
    assert shown.row("beta") == ["beta", "model-skip", "0 (0 requests)", "0", "0"]
    as_json = json.loads((await ops("stats", "--json")).out)
    by_name = {d["deployment"]: d for d in as_json["deployments"]}
    assert (by_name["alpha/model-a"]["successes"], by_name["beta/model-b"]["successes"]) == (3, 0)
    assert {g["name"] for g in as_json["groups"]} == {"chain", "embedder"}
    assert {s["provider"] for s in as_json["sessions"]} == {"alpha", "beta"}


async def test_clients_show_limits_budgets_and_quotas_against_their_period(ops: Shell) -> None:
    ops.clock.advance(30)
    await chats(ops, 3)
    used = json.loads((await ops("clients", "--json")).out)
    alice = next(c for c in used["clients"] if c["name"] == "alice")
    spent = alice["budgets"][0]["used"]
    assert spent > 0 and alice["rpm"] == 10 and alice["budgets"][0]["period"] == "day"

    shown = await ops("clients")

    assert shown.code == 0
    assert shown.rows("ops")[0] == ["ops", "admin", "*", "-", "-", "-"]
    alice_lines = {cells[1]: cells for cells in shown.rows("alice")}
    tokens = f"{alice['minute_tokens']:,.0f}"
    assert alice_lines["chat"] == ["alice", "chat", "chain", "3/10", f"{tokens}/5,000", "-"]
    # NOON + 30 s: the day's budget renews at midnight UTC.
    assert alice_lines["tokens/day"] == [
        *("alice", "tokens/day", f"{spent:,}", "1,000", f"{spent / 1000:.0%}", "in 11h 59m")
    ]
    cached = alice_lines["cached answers"]
    assert alice["cached_answers"]["used"] > 1024  # three answers: shown in KiB
    assert cached[2:4] == [size(alice["cached_answers"]["used"]), "64.0 MiB"]
    assert cached[2].endswith(" KiB")


async def test_purge_cache_needs_a_model_or_all_and_makes_the_next_call_a_miss(
    ops: Shell,
) -> None:
    miss, hit = routing_pb2.CACHE_STATUS_MISS, routing_pb2.CACHE_STATUS_HIT
    assert await chats(ops, 2, same=True) == [miss, hit]

    bare = await ops("purge-cache")
    assert (bare.code, bare.out) == (2, "")
    assert "one of the arguments MODEL --all is required" in bare.err
    assert await chats(ops, 1, same=True) == [hit]  # nothing was forgotten

    purged = await ops("purge-cache", "chain")
    assert purged.code == 0
    assert purged.out.startswith("response cache: the answers of model chain forgotten")
    assert await chats(ops, 2, same=True) == [miss, hit]

    unknown = await ops("purge-cache", "no-such-model")
    assert (unknown.code, unknown.err.startswith("switchboard admin: not found: ")) == (4, True)

    everything = await ops("purge-cache", "--all", "--json")
    assert (everything.code, json.loads(everything.out)) == (0, {"queued": False})
    assert await chats(ops, 1, same=True) == [miss]
