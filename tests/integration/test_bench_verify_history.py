"""The verify bench builds its long history in bulk (bench/verify_history.py); what it measures
is honest only if that history's views are the ones the projector would have written."""

from __future__ import annotations

import asyncio
import uuid

from bench import verify_history
from bench.verify_history import build_history, project_log
from bench.workload import bank_events
from command_service.db.engine import create_engine
from command_service.db.migrate import upgrade_to_head
from operations.verify import find_drift
from shared.config import Settings
from shared.readmodel import VIEWS, ViewDatabase, ensure_indexes, make_mongo_client


async def _documents(db) -> dict[str, list[dict]]:
    # `_rev` counts the writes a document took, which depends on how events were batched,
    # not on what the document holds; verify never reads it.
    found = {}
    for view in VIEWS:
        docs = [{k: v for k, v in doc.items() if k != "_rev"} async for doc in db[view].find()]
        found[view] = sorted(docs, key=lambda d: d["_id"])
    return found


async def test_a_bulk_built_history_holds_the_documents_the_projector_writes(
        tmp_path, read_store, monkeypatch):
    # Small chunks and insert batches, so the fold is carried across chunks and the
    # buffered inserts split, as they are for a million events.
    monkeypatch.setattr(verify_history, "CHUNK", 37)
    monkeypatch.setattr(verify_history, "INSERT_BATCH", 50)
    url = f"sqlite+aiosqlite:///{tmp_path / 'write.db'}"
    await asyncio.to_thread(upgrade_to_head, url)
    uid = uuid.uuid4().hex[:8]
    settings = Settings(database_url=url, mongo_url=read_store.mongo_url,
                        mongo_database=f"bulk_{uid}")
    engine, client = create_engine(settings), make_mongo_client(settings)
    bulk, projected = client[f"bulk_{uid}"], client[f"projected_{uid}"]
    try:
        built = await build_history(engine, bulk, bank_events(200, 20))
        assert built.events == built.last_position == 200

        await ensure_indexes(projected)
        assert await project_log(engine, projected, after=0) == 200

        by_bulk, by_projector = await _documents(bulk), await _documents(projected)
        assert all(by_bulk[view] for view in VIEWS)
        for view in VIEWS:
            assert by_bulk[view] == by_projector[view], view
        assert await find_drift(engine, ViewDatabase(bulk)) == []
    finally:
        for db in (bulk, projected):
            await client.drop_database(db.name)
        await client.close()
        await engine.dispose()

