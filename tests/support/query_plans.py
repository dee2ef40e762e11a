"""How the read store runs a query: explained, so a test can show that it reads an index and
how many documents it examines to return its page."""

from __future__ import annotations


async def query_plan(read_db, collection: str, query: dict, sort: dict, limit: int,
                     hint: str | None) -> tuple[set[str], int, int]:
    """(the plan's stages, documents examined, documents returned) of `find` as a service runs
    it, with the index it names (`hint`)."""
    find = {"find": collection, "filter": query, "sort": sort, "limit": limit}
    explained = await read_db.command({"explain": find | ({"hint": hint} if hint else {}),
                                       "verbosity": "executionStats"})

    def stages(plan: dict) -> set[str]:
        found = {plan["stage"]}
        for key in ("inputStage", "inputStages"):
            for child in ([plan[key]] if isinstance(plan.get(key), dict)
                          else plan.get(key, [])):
                found |= stages(child)
        return found

    stats = explained["executionStats"]
    return (stages(explained["queryPlanner"]["winningPlan"]), stats["totalDocsExamined"],
            stats["nReturned"])
