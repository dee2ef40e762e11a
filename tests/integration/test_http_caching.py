"""Conditional reads over real HTTP against the whole stack: every view and page answers a
strong ETag and `Cache-Control: private, no-cache`; the ETag changes exactly when what the
answer shows changes (an event on the account, a renamed customer) and not otherwise (the same
GET again, an event on an unrelated account); a matching If-None-Match is 304 without a body,
and only after the X-Consistency-Token wait."""

from __future__ import annotations

import uuid

from tests.stack import Stack
from tests.support.contract import open_account, register

CACHE_CONTROL = "private, no-cache"


async def command(stack: Stack, method: str, path: str, body: dict) -> dict[str, str]:
    """Send a command; the X-Consistency-Token header that reads its effect."""
    response = await stack.commands.request(method, path, json=body)
    assert response.status_code in (200, 201), response.text
    return {"X-Consistency-Token": response.headers["X-Consistency-Token"]}


async def caught_up(stack: Stack, token: dict[str, str], *paths: str) -> None:
    """Wait (read-your-writes) until each view in `paths` holds the command of `token`. The
    account view is written after its transactions and history, the customer view after its
    statistics: once both hold it, every view does."""
    for path in paths:
        response = await stack.queries.get(path, headers={**token,
                                                          "X-Consistency-Wait-Ms": "10000"})
        assert response.status_code == 200, response.text


async def etags(stack: Stack, paths: list[str]) -> dict[str, str]:
    tags = {}
    for path in paths:
        response = await stack.queries.get(path)
        assert response.status_code == 200, f"{path}: {response.text}"
        tag = response.headers["ETag"]
        assert tag.startswith('"') and tag.endswith('"') and len(tag) > 2, tag  # strong
        assert response.headers["Cache-Control"] == CACHE_CONTROL, path
        tags[path] = tag
    return tags


async def unchanged(stack: Stack, tags: dict[str, str]) -> list[str]:
    """The paths that still answer 304 to their ETag."""
    still = []
    for path, tag in tags.items():
        response = await stack.queries.get(path, headers={"If-None-Match": tag})
        assert response.status_code in (200, 304), f"{path}: {response.text}"
        if response.status_code == 304:
            assert response.content == b"", path
            assert response.headers["ETag"] == tag, path
            assert response.headers["Cache-Control"] == CACHE_CONTROL, path
            still.append(path)
    return sorted(still)


async def test_etags_change_exactly_when_what_each_answer_shows_changes(settings):
    async with Stack(settings) as stack:
        tag_word = uuid.uuid4().hex[:12]
        customer = await register(stack, f"Ada {tag_word}")
        account = await open_account(stack, customer, initial_deposit="100.00")
        other_customer = await register(stack, "Charles Babbage")
        other_account = await open_account(stack, other_customer, initial_deposit="5.00")
        token = await command(stack, "POST", f"/v1/accounts/{account}/deposits",
                              {"amount": "1.00"})
        other = await command(stack, "POST", f"/v1/accounts/{other_account}/deposits",
                              {"amount": "1.00"})
        await caught_up(stack, token, f"/v1/accounts/{account}", f"/v1/customers/{customer}")
        await caught_up(stack, other, f"/v1/accounts/{other_account}",
                        f"/v1/customers/{other_customer}")

        account_paths = [f"/v1/accounts/{account}", f"/v1/accounts/{account}/transactions",
                         f"/v1/accounts/{account}/history"]
        customer_paths = [f"/v1/customers/{customer}", f"/v1/customers/{customer}/accounts",
                          f"/v1/customers/{customer}/transactions",
                          f"/v1/customers/{customer}/stats",
                          f"/v1/customers/{customer}/stats?granularity=month"]
        profile_paths = [f"/v1/customers/{customer}/history", f"/v1/customers?q={tag_word}"]
        every_account = ["/v1/accounts"]
        paths = account_paths + customer_paths + profile_paths + every_account

        # The same GET again: the same ETag, and 304 for it.
        tags = await etags(stack, paths)
        assert await etags(stack, paths) == tags
        assert await unchanged(stack, tags) == sorted(paths)

        # An event on an unrelated account: only the bank-wide list shows that account.
        other = await command(stack, "POST", f"/v1/accounts/{other_account}/withdrawals",
                              {"amount": "2.00"})
        await caught_up(stack, other, f"/v1/accounts/{other_account}",
                        f"/v1/customers/{other_customer}", "/v1/accounts")
        assert await unchanged(stack, tags) == sorted(paths[:-1])
        tags = await etags(stack, paths)

        # A renamed customer: its 360 view, its own history and the search show the name.
        renamed = await command(stack, "PATCH", f"/v1/customers/{customer}",
                                {"name": f"Ada King {tag_word}"})
        await caught_up(stack, renamed, f"/v1/customers/{customer}")
        assert await unchanged(stack, tags) == sorted(
            [*account_paths, *customer_paths[1:], *every_account])
        tags = await etags(stack, paths)

        # A new event on the account: everything that shows the account or its money, not
        # the customer's own history or the search (which show neither).
        deposit = await command(stack, "POST", f"/v1/accounts/{account}/deposits",
                                {"amount": "3.00"})
        await caught_up(stack, deposit, f"/v1/accounts/{account}", f"/v1/customers/{customer}")
        assert await unchanged(stack, tags) == sorted(profile_paths)


async def test_a_matching_if_none_match_is_304_and_any_other_is_the_view(settings):
    async with Stack(settings) as stack:
        customer = await register(stack)
        account = await open_account(stack, customer, initial_deposit="10.00")
        token = await command(stack, "POST", f"/v1/accounts/{account}/deposits",
                              {"amount": "1.00"})
        await caught_up(stack, token, f"/v1/accounts/{account}")
        path = f"/v1/accounts/{account}"
        tag = (await etags(stack, [path]))[path]

        for header in (tag, f"W/{tag}", f'"elsewhere", {tag}', f'W/"x,y", {tag}', "*"):
            answer = await stack.queries.get(path, headers={"If-None-Match": header})
            assert answer.status_code == 304, header
            assert answer.content == b"" and answer.headers["ETag"] == tag, header
        for header in ('"elsewhere"', f'"{tag}"', tag[1:-1], "", "W/"):
            answer = await stack.queries.get(path, headers={"If-None-Match": header})
            assert answer.status_code == 200, header
            assert answer.json()["account_id"] == account and answer.headers["ETag"] == tag
        # Two If-None-Match lines are one list.
        answer = await stack.queries.get(path, headers=[("If-None-Match", '"elsewhere"'),
                                                        ("If-None-Match", tag)])
        assert answer.status_code == 304
        # A view that does not exist is 404 whatever If-None-Match says.
        missing = await stack.queries.get(f"/v1/accounts/{uuid.uuid4()}",
                                          headers={"If-None-Match": "*"})
        assert missing.status_code == 404


async def test_the_consistency_wait_comes_before_the_comparison(settings):
    """A client polling with its last ETag and the token of its new command never gets a 304
    for the view from before the command: the view is read after the wait."""
    async with Stack(settings) as stack:
        customer = await register(stack)
        account = await open_account(stack, customer, initial_deposit="10.00")
        path = f"/v1/accounts/{account}"
        await caught_up(stack, await command(stack, "POST", f"{path}/deposits",
                                             {"amount": "1.00"}), path)
        before = await stack.queries.get(path)
        for round_ in range(5):
            token = await command(stack, "POST", f"{path}/deposits", {"amount": "1.00"})
            after = await stack.queries.get(path, headers={
                **token, "If-None-Match": before.headers["ETag"],
                "X-Consistency-Wait-Ms": "10000"})
            assert after.status_code == 200, f"round {round_}: {after.status_code}"
            assert after.json()["version"] == before.json()["version"] + 1
            assert after.headers["ETag"] != before.headers["ETag"]
            before = after


async def test_a_later_page_keeps_its_etag_while_newer_entries_arrive(settings):
    async with Stack(settings) as stack:
        customer = await register(stack)
        account = await open_account(stack, customer, initial_deposit="10.00")
        for amount in ("1.00", "2.00"):
            token = await command(stack, "POST", f"/v1/accounts/{account}/deposits",
                                  {"amount": amount})
        await caught_up(stack, token, f"/v1/accounts/{account}")
        path = f"/v1/accounts/{account}/transactions?limit=1"
        first = await stack.queries.get(path)
        second_path = f"{path}&cursor={first.json()['next_cursor']}"
        second = await stack.queries.get(second_path)
        assert second.status_code == 200 and second.json()["items"]

        token = await command(stack, "POST", f"/v1/accounts/{account}/deposits",
                              {"amount": "4.00"})
        await caught_up(stack, token, f"/v1/accounts/{account}")
        # The first page shows the new deposit; the second, older entries only, unchanged.
        again = await stack.queries.get(path, headers={"If-None-Match": first.headers["ETag"]})
        assert again.status_code == 200 and again.json()["items"][0]["amount"] == "4.00"
        assert again.headers["ETag"] != first.headers["ETag"]
        assert (await stack.queries.get(second_path, headers={
            "If-None-Match": second.headers["ETag"]})).status_code == 304
