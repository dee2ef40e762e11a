"""Commands over HTTP flow through the outbox, the broker and the projector into the views."""

from __future__ import annotations

from tests.scenarios import open_deposit_withdraw_and_see_the_views
from tests.stack import Stack


async def test_commands_over_http_converge_into_the_query_views(settings, read_db):
    async with Stack(settings) as stack:
        await open_deposit_withdraw_and_see_the_views(stack)
