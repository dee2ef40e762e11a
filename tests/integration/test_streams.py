"""Live updates (docs/api.md, "Live updates"): a view as Server-Sent Events, over real HTTP
against the whole stack. The query service reaches the read store through a proxy
(tests/support/store_proxy.py) that counts its queries and can fail like a store does."""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator

import httpx
import pytest

from query_service.app import create_app as create_query_app
from shared.auth import READ, WRITE, mint_token
from shared.config import Settings
from tests.stack import CLIENT_LIMITS, Stack, admin_headers, http_client, in_loop_server
from tests.support.contract import check_error, open_account, register
from tests.support.sse import EventReader, Message, open_stream
from tests.support.store_proxy import StoreProxy

POLL_MS = 50
KEEP_ALIVE_S = 0.5


@contextlib.asynccontextmanager
async def live_stack(settings: Settings, read_store, **query_settings) -> AsyncIterator[Stack]:
    """The stack, its query service on the read store through `stack.proxy`."""
    async with StoreProxy(read_store.port) as proxy:
        query = settings.model_copy(update={
            "mongo_url": proxy.mongo_url(), "stream_poll_ms": POLL_MS,
            "stream_keepalive_s": KEEP_ALIVE_S, **query_settings})
        async with Stack(settings, query) as stack:
            stack.proxy = proxy
            yield stack


def bearer(settings: Settings, *scopes: str, subject: str = "someone",
           customer_id: str | None = None) -> dict[str, str]:
    return {"Authorization": "Bearer " + mint_token(
        settings, subject=subject, scopes=list(scopes), customer_id=customer_id)}


def revision(customer_view: dict) -> int:
    """The customer stream's id for a 360 view (docs/api.md): its version and its accounts'."""
    return customer_view["version"] + sum(a["version"] for a in customer_view["accounts"])


async def customer_with_account(stack: Stack, initial: str = "10.00") -> tuple[str, str]:
    """A customer with one account, both views projected (the 360 view lists the account)."""
    customer_id = await register(stack)
    account_id = await open_account(stack, customer_id, initial_deposit=initial)
    await stack.eventually(f"/v1/accounts/{account_id}", lambda r: r.status_code == 200)
    await stack.eventually(f"/v1/customers/{customer_id}", lambda r: r.status_code == 200
                           and [a["account_id"] for a in r.json()["accounts"]] == [account_id])
    return customer_id, account_id


async def deposit(stack: Stack, account_id: str, amount: str = "1.00") -> int:
    response = await stack.commands.post(f"/v1/accounts/{account_id}/deposits",
                                         json={"amount": amount})
    assert response.status_code == 201, response.text
    return response.json()["version"]


async def ticks(stack: Stack) -> float:
    text = (await stack.queries.get("/metrics")).text
    return float(re.search(r"^cqrs_query_stream_ticks_total (\S+)$", text, re.M).group(1))


async def assert_is_get(stack: Stack, path: str, event: Message) -> None:
    """The event's data is, byte for byte, what the view's GET answers (at that version)."""
    response = await stack.queries.get(path.removesuffix("/stream"))
    assert response.status_code == 200, response.text
    assert event.data == response.content


# -- the first event and the next ------------------------------------------------------------


async def test_a_stream_opens_with_the_view_exactly_as_get_answers_it(settings, read_store):
    async with live_stack(settings, read_store) as stack:
        customer_id, account_id = await customer_with_account(stack)
        for path in (f"/v1/accounts/{account_id}/stream", f"/v1/customers/{customer_id}/stream"):
            async with open_stream(stack.queries, path) as reader:
                assert reader.response.status_code == 200
                assert reader.response.headers["content-type"].startswith("text/event-stream")
                assert reader.response.headers["cache-control"] == "no-cache"
                # httpx accepts gzip, and gzip would hold events back in its buffer.
                assert "content-encoding" not in reader.response.headers
                first = await reader.next_event()
                assert first.event == "view"
                await assert_is_get(stack, path, first)
                view = first.view()
                assert first.version == (view["version"] if "/accounts/" in path
                                         else revision(view))


async def test_a_deposit_sends_each_view_again_with_a_bigger_id(settings, read_store):
    async with live_stack(settings, read_store) as stack:
        customer_id, account_id = await customer_with_account(stack)
        account_path = f"/v1/accounts/{account_id}/stream"
        customer_path = f"/v1/customers/{customer_id}/stream"
        async with open_stream(stack.queries, account_path) as account, \
                open_stream(stack.queries, customer_path) as customer:
            account_first, customer_first = await account.next_event(), \
                await customer.next_event()
            version = await deposit(stack, account_id, "2.50")

            (moved,) = await account.event_reaching(version)
            assert moved.version == version > account_first.version
            assert moved.view()["balance"] == "12.50"
            await assert_is_get(stack, account_path, moved)

            (moved,) = await customer.event_reaching(customer_first.version + 1)
            assert moved.version == customer_first.version + 1
            assert moved.view()["accounts"][0]["balance"] == "12.50"
            assert moved.view()["version"] == customer_first.view()["version"]  # not moved
            await assert_is_get(stack, customer_path, moved)


# -- reconnecting ----------------------------------------------------------------------------


async def test_a_client_that_reconnects_gets_an_event_at_once_only_if_it_is_behind(
        settings, read_store):
    async with live_stack(settings, read_store) as stack:
        customer_id, account_id = await customer_with_account(stack)
        path = f"/v1/accounts/{account_id}/stream"
        async with open_stream(stack.queries, path) as reader:
            current = (await reader.next_event()).version

        # Current: nothing is sent until the view moves; the keep-alive shows the stream is
        # open and that no event came first (the watcher polls ten times in that interval).
        async with open_stream(stack.queries, path,
                               headers={"Last-Event-ID": str(current)}) as reader:
            assert (await reader.next()).comment == "keep-alive"
            version = await deposit(stack, account_id)
            event = await reader.next_event()
            assert event.version == version

        # Behind: the view now, at once.
        async with open_stream(stack.queries, path,
                               headers={"Last-Event-ID": str(current)}) as reader:
            event = await reader.next()
            assert event.comment is None and event.version == version

        # The same for the 360 view, whose id is its revision.
        customer_path = f"/v1/customers/{customer_id}/stream"
        async with open_stream(stack.queries, customer_path,
                               headers={"Last-Event-ID": "0"}) as reader:
            event = await reader.next()
            assert event.comment is None and event.version == revision(event.view())
        async with open_stream(stack.queries, customer_path,
                               headers={"Last-Event-ID": str(event.version)}) as reader:
            assert (await reader.next()).comment == "keep-alive"

        check_error(await stack.queries.get(path, headers={"Last-Event-ID": "seven"}), 422,
                    "validation_error", "Last-Event-ID")


async def test_keep_alive_comments_are_sent_while_nothing_changes(settings, read_store):
    async with live_stack(settings, read_store) as stack:
        _, account_id = await customer_with_account(stack)
        async with open_stream(stack.queries, f"/v1/accounts/{account_id}/stream") as reader:
            await reader.next_event()
            started = asyncio.get_running_loop().time()
            for _ in range(2):
                message = await reader.next(timeout_s=5 * KEEP_ALIVE_S)
                assert message == Message(comment="keep-alive")
            assert asyncio.get_running_loop().time() - started >= 1.5 * KEEP_ALIVE_S


# -- refusals before the stream starts -------------------------------------------------------


async def test_a_view_that_does_not_exist_yet_is_404_before_the_stream_starts(
        settings, read_store):
    async with live_stack(settings, read_store) as stack:
        for path, code in (("/v1/accounts/7d5a3a53-0e44-4b38-9c3a-0b8e5b7f1c11/stream",
                            "account_not_found"),
                           ("/v1/customers/7d5a3a53-0e44-4b38-9c3a-0b8e5b7f1c11/stream",
                            "customer_not_found")):
            response = await stack.queries.get(path)
            check_error(response, 404, code)
            assert response.headers["content-type"] == "application/json"


async def test_streams_have_the_views_auth_and_confinement(settings, read_store):
    async with live_stack(settings, read_store) as stack:
        mine, my_account = await customer_with_account(stack)
        theirs, their_account = await customer_with_account(stack)
        own = bearer(settings, READ, subject="customer-a", customer_id=mine)
        async with httpx.AsyncClient(base_url=stack.queries.base_url,
                                     limits=CLIENT_LIMITS) as anonymous:
            for path in (f"/v1/accounts/{my_account}/stream", f"/v1/customers/{mine}/stream"):
                check_error(await anonymous.get(path), 401, None)
                check_error(await anonymous.get(path, headers=bearer(settings, WRITE)), 403,
                            None)
                async with open_stream(anonymous, path, headers=own) as reader:
                    assert (await reader.next_event()).event == "view"
            for path in (f"/v1/accounts/{their_account}/stream",
                         f"/v1/customers/{theirs}/stream"):
                check_error(await anonymous.get(path, headers=own), 403, "forbidden")


async def test_open_streams_are_capped_per_subject(settings, read_store):
    async with live_stack(settings, read_store, streams_per_subject=2) as stack:
        _, account_id = await customer_with_account(stack)
        path = f"/v1/accounts/{account_id}/stream"
        watcher = bearer(settings, READ, subject="watcher")
        async with contextlib.AsyncExitStack() as streams:
            for _ in range(2):
                reader = await streams.enter_async_context(
                    open_stream(stack.queries, path, headers=watcher))
                await reader.next_event()
            refused = await stack.queries.get(path, headers=watcher)
            check_error(refused, 429, "too_many_streams")
            assert int(refused.headers["Retry-After"]) >= 1
            async with open_stream(stack.queries, path,
                                   headers=bearer(settings, READ, subject="other")) as reader:
                assert reader.response.status_code == 200  # the cap is per subject
        # Closed streams give their slots back (once the server sees the client leave).
        async with asyncio.timeout(10):
            while True:
                async with open_stream(stack.queries, path, headers=watcher) as reader:
                    if reader.response.status_code == 200:
                        await reader.next_event()
                        break
                await asyncio.sleep(0.02)


# -- many streams, and what they cost the read store ----------------------------------------


async def test_two_hundred_streams_all_follow_their_views_at_a_constant_cost_per_tick(
        settings, read_store):
    async with live_stack(settings, read_store, streams_per_subject=1000) as stack:
        pairs = [await customer_with_account(stack) for _ in range(10)]
        paths = [f"/v1/accounts/{a}/stream" for _, a in pairs for _ in range(16)] + \
                [f"/v1/customers/{c}/stream" for c, _ in pairs for _ in range(4)]
        assert len(paths) == 200
        limits = httpx.Limits(max_connections=None, keepalive_expiry=2.0)
        async with httpx.AsyncClient(base_url=stack.queries.base_url, limits=limits,
                                     headers=admin_headers(settings)) as client, \
                contextlib.AsyncExitStack() as streams:
            readers: list[EventReader] = list(await asyncio.gather(*(
                streams.enter_async_context(open_stream(client, path)) for path in paths)))
            firsts = await asyncio.gather(*(reader.next_event() for reader in readers))

            # Nothing changes: one versions query per kind of view per tick.
            finds, started = stack.proxy.finds("accounts", "customers"), await ticks(stack)
            async with asyncio.timeout(30):  # a watcher too slow to tick fails here
                while await ticks(stack) < started + 20:
                    await asyncio.sleep(POLL_MS / 1000)
            quiet_ticks = await ticks(stack) - started
            quiet_finds = stack.proxy.finds("accounts", "customers") - finds
            # (+2 ticks: the counters are read apart, so a tick may straddle each end.)
            assert quiet_finds <= 2 * (quiet_ticks + 2), (quiet_finds, quiet_ticks)

            # Every account moves: every stream gets its view's new version.
            finds, started = stack.proxy.finds("accounts", "customers"), await ticks(stack)
            versions = dict(zip([a for _, a in pairs], await asyncio.gather(
                *(deposit(stack, a) for _, a in pairs)), strict=True))
            targets = [versions[path.split("/")[3]] if "/accounts/" in path
                       else first.version + 1 for path, first in zip(paths, firsts, strict=True)]
            last = await asyncio.gather(*(reader.event_reaching(target, timeout_s=60)
                                          for reader, target in zip(readers, targets,
                                                                    strict=True)))
            moving_ticks = await ticks(stack) - started
            moving_finds = stack.proxy.finds("accounts", "customers") - finds
            # Per tick at most: one versions query and one query of the views that moved,
            # for accounts and for customers; whatever the number of streams.
            assert moving_finds <= 4 * (moving_ticks + 2), (moving_finds, moving_ticks)
            for events, target in zip(last, targets, strict=True):
                assert events[-1].version == target
            print(f"\n200 streams: {quiet_finds / quiet_ticks:.2f} finds per tick while quiet, "
                  f"{moving_finds / moving_ticks:.2f} while 10 accounts moved")


# -- the projector restarts, the read store fails --------------------------------------------


async def test_streams_keep_going_across_a_projector_restart(settings, read_store):
    async with live_stack(settings, read_store) as stack:
        customer_id, account_id = await customer_with_account(stack)
        async with open_stream(stack.queries, f"/v1/accounts/{account_id}/stream") as account, \
                open_stream(stack.queries, f"/v1/customers/{customer_id}/stream") as customer:
            seen: dict[str, list[Message]] = {"account": [await account.next_event()],
                                              "customer": [await customer.next_event()]}
            final: asyncio.Future[int] = asyncio.get_running_loop().create_future()

            async def follow(name: str, reader: EventReader, offset: int) -> None:
                while not (final.done() and seen[name][-1].version >= final.result() + offset):
                    seen[name].append(await reader.next_event(timeout_s=60))

            customer_offset = seen["customer"][0].version - seen["account"][0].version
            followers = [asyncio.create_task(follow("account", account, 0)),
                         asyncio.create_task(follow("customer", customer, customer_offset))]
            version = 0
            for step in range(30):
                if step == 10:
                    stack.projector.kill()  # a crash: no graceful stop
                if step == 20:
                    stack.projector.start()
                version = await deposit(stack, account_id)
            final.set_result(version)
            async with asyncio.timeout(60):
                await asyncio.gather(*followers)
            for name, events in seen.items():
                ids = [event.version for event in events]
                assert ids == sorted(set(ids)), f"{name}: ids went back or repeated: {ids}"
                assert len(ids) >= 2, f"{name}: {ids}"
            assert seen["account"][-1].version == version
            assert seen["account"][-1].view()["balance"] == "40.00"
            assert not account.ended and not customer.ended


@pytest.mark.parametrize("failure", ["refuse", "silence"])
async def test_a_read_store_outage_ends_the_streams_and_clients_reconnect(
        settings, read_store, failure):
    async with live_stack(settings, read_store, mongo_timeout_ms=500) as stack:
        customer_id, account_id = await customer_with_account(stack)
        paths = [f"/v1/accounts/{account_id}/stream", f"/v1/customers/{customer_id}/stream"]
        async with open_stream(stack.queries, paths[0]) as account, \
                open_stream(stack.queries, paths[1]) as customer:
            firsts = [await account.next_event(), await customer.next_event()]
            getattr(stack.proxy, failure)()
            # Each response completes, soon (the watcher gives up on a silent store after
            # twice CQRS_MONGO_TIMEOUT_MS), rather than sending keep-alives forever.
            async with asyncio.timeout(5):
                for reader in (account, customer):
                    while (message := await reader.next()) is not None:
                        assert message.comment == "keep-alive", message
            assert account.ended and customer.ended
        if failure == "refuse":  # a new stream is refused at once, like a GET
            check_error(await stack.queries.get(paths[0]), 503, "dependency_unavailable")
        stack.proxy.restore()
        version = await deposit(stack, account_id)
        for path, first in zip(paths, firsts, strict=True):
            async with asyncio.timeout(20):
                while (await stack.queries.get(path.removesuffix("/stream"))).status_code \
                        != 200:
                    await asyncio.sleep(0.05)  # the driver finds the store again
            target = version if "/accounts/" in path else first.version + 1
            async with open_stream(stack.queries, path,
                                   headers={"Last-Event-ID": first.id}) as reader:
                events = await reader.event_reaching(target)
                assert first.version < events[0].version and events[-1].version == target


async def test_stopping_the_query_service_ends_its_streams_at_once(settings, read_store):
    """Without it, uvicorn would wait its graceful-shutdown timeout (10 s) for the streams."""
    async with live_stack(settings, read_store) as stack:
        _, account_id = await customer_with_account(stack)
        server = in_loop_server(create_query_app(settings))
        client = http_client(await server.start(), headers=admin_headers(settings))
        try:
            async with open_stream(client, f"/v1/accounts/{account_id}/stream") as reader:
                await reader.next_event()
                async with asyncio.timeout(5):
                    await server.stop()
                    while await reader.next() is not None:
                        pass
        finally:
            await client.aclose()
            await server.stop()
