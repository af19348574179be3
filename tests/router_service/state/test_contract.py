"""The StateStore contract: every test here runs against each store (memory, Redis) and expects
the same answers, to the float. Time is a ManualClock; the Redis store reads it as the memory
store does, so moving the clock moves both."""

from __future__ import annotations

import pytest

from router_service.clock import ManualClock
from router_service.state import PutResult, RateCount, SlotRequest
from tests.router_service.state.stores import MakeStore


# -- slots ---------------------------------------------------------------------------------------
async def test_acquire_respects_limit_and_release_frees(make_store: MakeStore) -> None:
    store = make_store(ManualClock())
    first = (await store.acquire(SlotRequest("r", 60, 2))).lease_id
    second = (await store.acquire(SlotRequest("r", 60, 2))).lease_id
    assert first and second and first != second
    refused = await store.acquire(SlotRequest("r", 60, 2))
    assert (refused.lease_id, refused.retry_after_s, refused.window) == (None, 0.0, 0)
    await store.release("r", first)
    await store.release("r", first)  # twice is harmless
    await store.release("r", "no-such-lease")
    assert await store.held(["r", "other"]) == [1, 0]
    assert (await store.acquire(SlotRequest("r", 60, 2))).lease_id is not None


async def test_unreleased_lease_expires_by_ttl(make_store: MakeStore) -> None:
    clock = ManualClock()
    store = make_store(clock)
    assert (await store.acquire(SlotRequest("r", 30, 1))).lease_id is not None
    assert (await store.acquire(SlotRequest("r", 30, 1))).lease_id is None
    clock.advance(29.5)
    assert await store.held(["r"]) == [1]
    clock.advance(0.5)
    assert await store.held(["r"]) == [0]
    assert (await store.acquire(SlotRequest("r", 30, 1))).lease_id is not None


async def test_no_limit_counts_every_holder(make_store: MakeStore) -> None:
    store = make_store(ManualClock())
    leases = [(await store.acquire(SlotRequest("r", 60))).lease_id for _ in range(5)]
    assert None not in leases and len(set(leases)) == 5
    assert await store.held(["r"]) == [5]
    assert await store.held([]) == []


async def test_grant_names_its_rate_window(make_store: MakeStore) -> None:
    store = make_store(ManualClock(start=6_000.5))
    grant = await store.acquire(SlotRequest("k", 60, rpm=10))
    assert grant.window == 100


async def test_rpm_window_slides(make_store: MakeStore) -> None:
    clock = ManualClock(start=600.0)  # the start of a window
    store = make_store(clock)
    for _ in range(3):
        grant = await store.acquire(SlotRequest("k", 60, rpm=3))
        assert grant.lease_id is not None
    refused = await store.acquire(SlotRequest("k", 60, rpm=3))
    assert refused.lease_id is None
    # Not the window's end (60 s): the next window starts with these 3 counted in full, and has
    # room for a 3rd only once they weigh 2, a third of the way in.
    assert refused.retry_after_s == 80.0
    assert refused.window == 10
    clock.advance(60.0)  # next window: the previous one still counts in full at its start
    assert (await store.acquire(SlotRequest("k", 60, rpm=3))).lease_id is None
    clock.advance(19.9)
    assert (await store.acquire(SlotRequest("k", 60, rpm=3))).lease_id is None
    clock.advance(10.1)  # halfway: 3 * 0.5 = 1.5 of the budget used
    assert (await store.acquire(SlotRequest("k", 60, rpm=3))).lease_id is not None
    refused = await store.acquire(SlotRequest("k", 60, rpm=3))
    assert refused.lease_id is None
    assert refused.retry_after_s == pytest.approx(10.0)  # 3 * (1/3) + 1 + 1 = 3 at 700 s
    clock.advance(refused.retry_after_s)
    assert (await store.acquire(SlotRequest("k", 60, rpm=3))).lease_id is not None


async def test_a_skipped_window_forgets_the_old_one(make_store: MakeStore) -> None:
    clock = ManualClock(start=600.0)
    store = make_store(clock)
    for _ in range(2):
        assert (await store.acquire(SlotRequest("k", 60, rpm=2))).lease_id is not None
    clock.advance(120.0)  # two windows on: nothing of the first counts
    for _ in range(2):
        assert (await store.acquire(SlotRequest("k", 60, rpm=2))).lease_id is not None


async def test_tpm_counts_estimates_and_corrections(make_store: MakeStore) -> None:
    clock = ManualClock(start=600.0)
    store = make_store(clock)
    grant = await store.acquire(SlotRequest("k", 60, tpm=1000, tokens=900))
    assert grant.lease_id is not None
    assert (await store.acquire(SlotRequest("k", 60, tpm=1000, tokens=200))).lease_id is None
    await store.add_tokens("k", grant.window, -800)  # it really cost 100
    assert (await store.acquire(SlotRequest("k", 60, tpm=1000, tokens=200))).lease_id is not None
    # A request larger than the whole budget still gets into an empty window.
    assert (await store.acquire(SlotRequest("big", 60, tpm=10, tokens=50))).lease_id is not None
    await store.add_tokens("never-used", 10, 5)  # harmless


async def test_token_correction_reaches_the_previous_window(make_store: MakeStore) -> None:
    clock = ManualClock(start=600.0)
    store = make_store(clock)
    grant = await store.acquire(SlotRequest("k", 60, tpm=1000, tokens=1000))
    clock.advance(60.0)  # the window rolls on the next acquire
    assert (await store.acquire(SlotRequest("k", 60, tpm=1000, tokens=10))).lease_id is None
    await store.add_tokens("k", grant.window, -990)  # the usage arrives late
    assert (await store.acquire(SlotRequest("k", 60, tpm=1000, tokens=10))).lease_id is not None
    await store.add_tokens("k", grant.window, -10_000)  # never below zero
    assert (await store.acquire(SlotRequest("k", 60, tpm=1000, tokens=900))).lease_id is not None


async def test_calls_made_under_a_grant_count_in_its_rpm_window(make_store: MakeStore) -> None:
    # An embeddings request sent as three upstream calls is three of the key's requests.
    clock = ManualClock(start=600.0)
    store = make_store(clock)
    grant = await store.acquire(SlotRequest("k", 60, rpm=4))
    await store.add_tokens("k", grant.window, 0, 2)
    assert await store.rates(["k"]) == [RateCount(3, 0)]
    assert (await store.acquire(SlotRequest("k", 60, rpm=4))).lease_id is not None
    assert (await store.acquire(SlotRequest("k", 60, rpm=4))).lease_id is None
    clock.advance(60.0)
    assert (await store.acquire(SlotRequest("k", 60, rpm=20))).lease_id is not None  # rolled
    await store.add_tokens("k", grant.window, 0, 4)  # in the grant's window, now the previous
    assert await store.rates(["k"]) == [RateCount(9, 0)]


async def test_calls_counted_but_never_made_leave_the_rpm_window(make_store: MakeStore) -> None:
    # Counted before they went, then not made (the request failed first): taken back, to zero.
    clock = ManualClock(start=600.0)
    store = make_store(clock)
    grant = await store.acquire(SlotRequest("k", 60, rpm=4))
    await store.add_tokens("k", grant.window, 0, 3)
    await store.add_tokens("k", grant.window, 0, -2)
    assert await store.rates(["k"]) == [RateCount(2, 0)]
    await store.add_tokens("k", grant.window, 0, -5)
    assert await store.rates(["k"]) == [RateCount(0, 0)]


async def test_rates_read_the_sliding_minute_without_counting(make_store: MakeStore) -> None:
    clock = ManualClock(start=600.0)
    store = make_store(clock)
    grant = await store.acquire(SlotRequest("k", 60, rpm=10, tpm=1000, tokens=300))
    await store.acquire(SlotRequest("k", 60, rpm=10, tpm=1000, tokens=100))
    await store.add_tokens("k", grant.window, -200)  # the first one reported 100
    assert await store.rates(["k", "never"]) == [RateCount(2, 200), RateCount()]
    assert await store.rates(["k"]) == [RateCount(2, 200)]  # a read counts nothing
    clock.advance(75.0)  # next minute, a quarter in: three quarters of the last one weigh
    assert await store.rates(["k"]) == [RateCount(1.5, 150)]
    await store.acquire(SlotRequest("k", 60, rpm=10, tpm=1000, tokens=50))
    assert (await store.read(rates=["k"])).rates == [RateCount(2.5, 200)]
    clock.advance(60.0)  # a minute later still: only the one of the last minute, by a quarter
    assert await store.rates(["k"]) == [RateCount(0.75, 37.5)]
    clock.advance(60.0)  # two minutes on: nothing counts
    assert await store.rates(["k"]) == [RateCount()]
    assert await store.rates([]) == []


async def test_in_flight_and_rate_limits_together(make_store: MakeStore) -> None:
    store = make_store(ManualClock(start=600.0))
    one = await store.acquire(SlotRequest("k", 60, 1, rpm=5))
    assert one.lease_id is not None
    busy = await store.acquire(SlotRequest("k", 60, 1, rpm=5))
    assert (busy.lease_id, busy.retry_after_s) == (None, 0.0)  # refused before counting
    await store.release("k", one.lease_id)
    for _ in range(4):
        grant = await store.acquire(SlotRequest("k", 60, 1, rpm=5))
        assert grant.lease_id is not None
        await store.release("k", grant.lease_id)
    # 5 counted: the next window has room once they weigh 4, a fifth of the way in.
    assert (await store.acquire(SlotRequest("k", 60, 1, rpm=5))).retry_after_s == pytest.approx(72)


async def test_unless_refuses_while_a_deadline_is_in_force_and_counts_nothing(
    make_store: MakeStore,
) -> None:
    clock = ManualClock(start=600.0)
    store = make_store(clock)
    until = clock.now() + 10.25
    await store.extend_deadline("cool", until)
    guarded = SlotRequest("r", 60, 1, rpm=2, unless=("throttle", "cool"))
    refused = await store.acquire(guarded)
    assert (refused.lease_id, refused.retry_after_s, refused.window) == (None, 0.0, 0)
    assert refused.deadlines == (0.0, until)
    assert await store.held(["r"]) == [0]
    clock.advance(10.25)  # a deadline ends at its instant
    first = await store.acquire(guarded)
    assert first.lease_id is not None and first.deadlines == (0.0, 0.0)
    # The refused attempt took no rate budget: rpm=2 still admits a second request.
    await store.release("r", first.lease_id)
    assert (await store.acquire(guarded)).lease_id is not None
    over = await store.acquire(SlotRequest("r", 60, rpm=2, unless=("throttle",)))
    assert over.lease_id is None and over.retry_after_s > 0 and over.deadlines == (0.0,)


async def test_unless_reports_deadlines_when_the_limit_refuses(make_store: MakeStore) -> None:
    store = make_store(ManualClock())
    assert (await store.acquire(SlotRequest("r", 60, 1, unless=("a", "b")))).lease_id
    refused = await store.acquire(SlotRequest("r", 60, 1, unless=("a", "b")))
    assert (refused.lease_id, refused.deadlines) == (None, (0.0, 0.0))
    assert (await store.acquire(SlotRequest("s", 60))).deadlines == ()


# -- deadlines -----------------------------------------------------------------------------------
async def test_deadline_only_extends(make_store: MakeStore) -> None:
    clock = ManualClock()
    store = make_store(clock)
    now = clock.now()
    assert await store.extend_deadline("d", now + 60) == now + 60
    assert await store.extend_deadline("d", now + 5) == now + 60  # never shortened
    assert await store.extend_deadline("d", now + 60.25) == now + 60.25
    assert await store.deadlines(["d", "other"]) == [now + 60.25, 0.0]
    assert await store.deadlines([]) == []
    clock.advance(60.25)
    assert await store.deadlines(["d"]) == [0.0]


async def test_clear_deadline(make_store: MakeStore) -> None:
    clock = ManualClock()
    store = make_store(clock)
    await store.extend_deadline("off", clock.now() + 3600)
    await store.clear_deadline("off")
    await store.clear_deadline("never-set")
    assert await store.deadlines(["off"]) == [0.0]
    assert await store.extend_deadline("off", clock.now() + 1) == clock.now() + 1


# -- values --------------------------------------------------------------------------------------
async def test_values_expire_and_overwrite(make_store: MakeStore) -> None:
    clock = ManualClock()
    store = make_store(clock)
    await store.set_value("sticky:s1", "alpha/model-a", 10)
    await store.set_value("sticky:s2", "", 10)
    await store.set_value("odd", "a|b\nc", 10)
    assert await store.get_values(["sticky:s1", "sticky:s2", "odd", "none"]) == [
        "alpha/model-a",
        "",
        "a|b\nc",
        None,
    ]
    clock.advance(5)
    await store.set_value("sticky:s1", "beta/model-b", 10)  # a new value, a new TTL
    clock.advance(5)
    assert await store.get_values(["sticky:s1", "sticky:s2"]) == ["beta/model-b", None]
    clock.advance(5)
    assert await store.get_values(["sticky:s1"]) == [None]
    assert await store.get_values([]) == []


# -- groups --------------------------------------------------------------------------------------
async def test_groups_limit_distinct_members(make_store: MakeStore) -> None:
    store = make_store(ManualClock())
    a1 = await store.enter("active:alpha", "s-a", limit=2, ttl_s=60)
    a2 = await store.enter("active:alpha", "s-a", limit=2, ttl_s=60)
    b1 = await store.enter("active:alpha", "s-b", limit=2, ttl_s=60)
    assert a1 and a2 and b1 and len({a1, a2, b1}) == 3
    assert await store.enter("active:alpha", "s-c", limit=2, ttl_s=60) is None
    assert await store.enter("active:alpha", "s-b", limit=2, ttl_s=60) is not None  # inside
    assert await store.enter("active:beta", "s-c", limit=2, ttl_s=60) is not None
    assert await store.members("active:alpha") == {"s-a": 2, "s-b": 2}
    await store.leave("active:alpha", "s-a", a1)
    await store.leave("active:alpha", "s-a", a1)  # twice is harmless
    await store.leave("active:alpha", "s-x", "no-token")
    assert await store.members("active:alpha") == {"s-a": 1, "s-b": 2}
    await store.leave("active:alpha", "s-a", a2)
    assert await store.enter("active:alpha", "s-c", limit=2, ttl_s=60) is not None
    assert await store.members("active:alpha") == {"s-b": 2, "s-c": 1}
    assert await store.members("nobody") == {}


async def test_group_marks_expire(make_store: MakeStore) -> None:
    clock = ManualClock()
    store = make_store(clock)
    old = await store.enter("g", "s-a", limit=1, ttl_s=10)
    assert old is not None
    clock.advance(5)
    assert await store.enter("g", "s-a", limit=1, ttl_s=10) is not None
    clock.advance(5)  # the first mark is gone; the second holds s-a inside
    assert await store.members("g") == {"s-a": 1}
    assert await store.enter("g", "s-b", limit=1, ttl_s=10) is None
    await store.leave("g", "s-a", old)  # an expired mark: nothing more to take away
    assert await store.members("g") == {"s-a": 1}
    clock.advance(5)
    assert await store.enter("g", "s-b", limit=1, ttl_s=10) is not None
    assert await store.members("g") == {"s-b": 1}
    assert await store.enter("g", "s-c", limit=None, ttl_s=10) is not None


# -- buckets -------------------------------------------------------------------------------------
async def test_buckets_add_up_and_expire(make_store: MakeStore) -> None:
    clock = ManualClock()
    store = make_store(clock)
    await store.add_to_bucket("stats:a", 7, {"ok": 1, "latency_ms": 120.5}, ttl_s=30)
    await store.add_to_bucket("stats:a", 7, {"ok": 1, "errors": 1, "latency_ms": 80.25}, 30)
    await store.add_to_bucket("stats:a", 8, {}, ttl_s=30)
    clock.advance(20)
    await store.add_to_bucket("stats:a", 9, {"ok": 2}, ttl_s=30)
    await store.add_to_bucket("stats:b", 9, {"ok": -1.5}, ttl_s=30)
    assert await store.read_buckets(["stats:a", "stats:b", "none"]) == [
        {7: {"ok": 2.0, "latency_ms": 200.75, "errors": 1.0}, 8: {}, 9: {"ok": 2.0}},
        {9: {"ok": -1.5}},
        {},
    ]
    clock.advance(10)  # buckets 7 and 8 were last written 30 s ago
    assert await store.read_buckets(["stats:a"]) == [{9: {"ok": 2.0}}]
    await store.add_to_bucket("stats:a", 10, {"ok": 1}, ttl_s=30)
    assert await store.read_buckets(["stats:a"]) == [{9: {"ok": 2.0}, 10: {"ok": 1.0}}]
    assert await store.read_buckets([]) == []


async def test_aclose_is_idempotent(make_store: MakeStore) -> None:
    store = make_store(ManualClock())
    await store.aclose()
    await store.aclose()


async def test_one_read_finds_what_the_separate_calls_find(make_store: MakeStore) -> None:
    clock = ManualClock()
    store = make_store(clock)
    assert (await store.acquire(SlotRequest("r", 60, 3))).lease_id is not None
    await store.extend_deadline("cool", clock.now() + 30)
    await store.set_value("v", "alpha", 60)
    names, resources, values = ["cool", "none"], ["r", "other"], ["v", "nothing"]
    assert (await store.acquire(SlotRequest("w", 60, rpm=5))).lease_id is not None
    reading = await store.read(deadlines=names, held=resources, values=values, rates=["w", "x"])
    assert reading.rates == await store.rates(["w", "x"]) == [RateCount(1, 0), RateCount()]
    assert reading.deadlines == await store.deadlines(names) == [clock.now() + 30, 0.0]
    assert reading.held == await store.held(resources) == [1, 0]
    assert reading.values == await store.get_values(values) == ["alpha", None]
    # Any part may be left out.
    assert (await store.read(held=["r"])).held == [1]
    only = await store.read(values=["v"])
    assert (only.deadlines, only.held, only.values) == ([], [], ["alpha"])
    nothing = await store.read()
    assert (nothing.deadlines, nothing.held, nothing.values, nothing.rates) == ([], [], [], [])


# -- documents -----------------------------------------------------------------------------------
async def test_documents_round_trip_any_bytes_and_expire(make_store: MakeStore) -> None:
    clock = ManualClock()
    store = make_store(clock)
    binary = bytes(range(256)) * 3  # no UTF-8: a protobuf's bytes are not
    assert await store.put_document("resp:a", binary, 60) is PutResult.KEPT
    assert await store.put_document("resp:b", b"", 30) is PutResult.KEPT
    assert await store.get_documents(["resp:a", "nope", "resp:b"]) == [binary, None, b""]
    assert await store.get_documents([]) == []
    # replaced, with a new TTL
    assert await store.put_document("resp:a", b"second", 60) is PutResult.KEPT
    clock.advance(30)
    assert await store.get_documents(["resp:a", "resp:b"]) == [b"second", None]
    clock.advance(30)
    assert await store.get_documents(["resp:a"]) == [None]


async def test_a_deleted_document_is_gone_and_says_whether_it_was_there(
    make_store: MakeStore,
) -> None:
    clock = ManualClock()
    store = make_store(clock)
    assert await store.put_document("resp:a", b"a", 60) is PutResult.KEPT
    assert await store.put_document("resp:b", b"b", 10) is PutResult.KEPT
    assert await store.delete_document("resp:a")
    assert await store.get_documents(["resp:a", "resp:b"]) == [None, b"b"]
    assert not await store.delete_document("resp:a")  # already gone
    assert not await store.delete_document("nope")
    clock.advance(10)  # expired by the store's clock (Redis still holds the key a little)
    assert not await store.delete_document("resp:b")
    # a name can be used again
    assert await store.put_document("resp:a", b"again", 60) is PutResult.KEPT
    assert await store.get_documents(["resp:a"]) == [b"again"]


async def test_an_only_new_document_is_written_once_while_it_lives(make_store: MakeStore) -> None:
    clock = ManualClock()
    store = make_store(clock)
    binary = bytes(range(256))
    assert await store.put_document("resp:a", binary, 60, only_new=True) is PutResult.KEPT
    clock.advance(30)
    # Refused, and the first stays as it was: its bytes and its expiry.
    assert await store.put_document("resp:a", b"other", 600, only_new=True) is PutResult.EXISTS
    assert await store.get_documents(["resp:a"]) == [binary]
    clock.advance(30)  # expired by the store's clock (Redis still holds the key a little)
    assert await store.get_documents(["resp:a"]) == [None]
    assert await store.put_document("resp:a", b"after", 60, only_new=True) is PutResult.KEPT
    assert await store.get_documents(["resp:a"]) == [b"after"]
    assert await store.delete_document("resp:a")
    assert await store.put_document("resp:a", b"deleted", 60, only_new=True) is PutResult.KEPT
    assert await store.get_documents(["resp:a"]) == [b"deleted"]
    # Without `only_new` a document is still replaced.
    assert await store.put_document("resp:a", b"replaced", 60) is PutResult.KEPT
    assert await store.get_documents(["resp:a"]) == [b"replaced"]
