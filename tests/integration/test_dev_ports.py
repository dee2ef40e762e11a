"""Two dev stacks started at the same moment on one machine (two clones, two test workers)
each get a broker and a read store of their own: one takes the default ports, the other free
ones, and neither takes the other's server for its own."""

from __future__ import annotations

import asyncio

from cli.devstack import DevStack
from cli.servers.process import free_port
from shared.readmodel import make_mongo_client


async def test_two_stacks_started_at_once_each_get_their_own_broker_and_read_store(tmp_path):
    stacks = [DevStack(str(tmp_path / name), free_port(), free_port()) for name in "ab"]
    try:
        started = await asyncio.gather(*(stack._start_backends() for stack in stacks))
        brokers = {stack.servers["broker"].port for stack in stacks}
        stores = {stack.servers["read-store"].port for stack in stacks}
        assert len(brokers) == 2 and len(stores) == 2, (brokers, stores)
        for stack, settings in zip(stacks, started, strict=True):
            for server in stack.servers.values():
                assert server.process.poll() is None, f"{server.name} exited: {server.log_path}"
            client = make_mongo_client(settings)  # each store is the stack's own
            try:
                db = client[settings.mongo_database]
                await db["whose"].insert_one({"_id": stack.data.name})
                assert await db["whose"].distinct("_id") == [stack.data.name]
            finally:
                await client.close()
    finally:
        for stack in stacks:
            await stack._stop_all()
