"""The published event contract, generated from the code into docs/events/: a JSON Schema per
event type and schema version, and the AsyncAPI 3 document of the topic. `cqrs-accounts
schema` writes them; `cqrs-accounts schema --check` (and the suite) fails when the checked-in
files and the code differ."""

from __future__ import annotations

import json
from importlib.metadata import version
from pathlib import Path

from command_service.event_contract.asyncapi import asyncapi_document
from command_service.event_contract.schemas import message_schemas, schema_file
from shared.config import Settings

ASYNCAPI_FILE = "asyncapi.json"
GENERATED_GLOB = ("*.schema.json", ASYNCAPI_FILE)


def _dump(document: dict) -> str:
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def render() -> dict[str, str]:
    """File name -> content, for every generated file of docs/events/."""
    schemas = message_schemas()
    defaults = Settings.model_fields
    files = {schema_file(t, v): _dump(schema) for (t, v), schema in schemas.items()}
    files[ASYNCAPI_FILE] = _dump(asyncapi_document(
        schemas, version=version("cqrs-accounts"), topic=defaults["kafka_topic"].default,
        partitions=defaults["kafka_topic_partitions"].default))
    return files


def differences(directory: Path, wanted: dict[str, str] | None = None) -> list[str]:
    """What is out of date in `directory`: a file to write, rewrite or delete."""
    wanted = render() if wanted is None else wanted
    present = {path.name for pattern in GENERATED_GLOB for path in directory.glob(pattern)}
    problems = [f"{name} is missing" for name in sorted(set(wanted) - present)]
    problems += [f"{name} differs from the code" for name in sorted(set(wanted) & present)
                 if (directory / name).read_text(encoding="utf-8") != wanted[name]]
    problems += [f"{name} is no longer generated" for name in sorted(present - set(wanted))]
    return problems


def write(directory: Path) -> list[str]:
    """Bring `directory` up to date; returns what changed."""
    wanted = render()
    changed = differences(directory, wanted)
    directory.mkdir(parents=True, exist_ok=True)
    for path in (p for pattern in GENERATED_GLOB for p in directory.glob(pattern)):
        if path.name not in wanted:
            path.unlink()
    for name, text in wanted.items():
        (directory / name).write_text(text, encoding="utf-8")
    return changed
