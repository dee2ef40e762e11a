"""An event stream's own rules, without a server: a slow client gets versions folded, never
an older one after a newer; the per-subject cap takes and gives back slots exactly once."""

from __future__ import annotations

import asyncio

import pytest

from query_service.event_stream import KEEP_ALIVE, StreamSlots, view_event, view_events
from query_service.live import Subscriber, customer_revision
from shared.auth import ANONYMOUS, READ, Principal
from shared.http import ApiError


def test_a_view_event_is_one_sse_block_with_its_version_as_id():
    assert view_event(7, b'{"a":1}') == b'event: view\nid: 7\ndata: {"a":1}\n\n'


def test_a_subscriber_keeps_only_the_newest_version_offered():
    subscriber = Subscriber()
    subscriber.offer(3, b"three")
    subscriber.offer(5, b"five")
    subscriber.offer(4, b"four")  # older than what waits: dropped
    assert subscriber.take() == (5, b"five")
    assert subscriber.take() is None and not subscriber.wake.is_set()


def test_the_customer_stream_id_grows_with_any_account_of_the_customer():
    before = {"version": 2, "accounts": [{"version": 3}, {"version": 1}]}
    after = {"version": 2, "accounts": [{"version": 4}, {"version": 1}]}
    assert customer_revision(before) == 6 < customer_revision(after)


async def test_a_stream_sends_the_first_view_then_only_newer_versions_then_ends():
    subscriber = Subscriber()
    stream = view_events(subscriber, (4, b"four"), known=-1, keep_alive_s=60)
    assert await anext(stream) == view_event(4, b"four")
    subscriber.offer(3, b"three")  # the watcher was behind the stream's own read
    subscriber.offer(6, b"six")
    assert await anext(stream) == view_event(6, b"six")
    subscriber.end()
    with pytest.raises(StopAsyncIteration):
        await anext(stream)


async def test_a_client_that_has_the_version_gets_a_keep_alive_and_not_the_view():
    stream = view_events(Subscriber(), (4, b"four"), known=4, keep_alive_s=0.01)
    assert await asyncio.wait_for(anext(stream), 5) == KEEP_ALIVE


def test_streams_are_capped_per_subject_and_each_slot_is_given_back_once():
    slots = StreamSlots(per_subject=2)
    ada = Principal("ada", frozenset({READ}))
    first, second = slots.acquire(ada), slots.acquire(ada)
    with pytest.raises(ApiError) as refused:
        slots.acquire(ada)
    assert refused.value.status == 429 and refused.value.headers["Retry-After"]
    bob = slots.acquire(Principal("bob", frozenset({READ})))  # another subject's own cap
    first()
    first()  # twice changes nothing
    assert slots.open_for("ada") == 1
    third = slots.acquire(ada)
    assert slots.open_for("ada") == 2
    for release in (second, third, bob):
        release()
    assert slots.open_for("ada") == slots.open_for("bob") == 0


def test_without_authentication_there_is_no_subject_and_no_cap():
    slots = StreamSlots(per_subject=1)
    for release in [slots.acquire(ANONYMOUS) for _ in range(3)]:
        release()
