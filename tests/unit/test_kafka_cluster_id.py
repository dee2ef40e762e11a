"""The embedded Kafka's cluster id is never one its storage tool reads as an option."""

from __future__ import annotations

import uuid

from cli.servers import kafka


def test_a_cluster_id_never_starts_with_a_dash(monkeypatch):
    dashed = uuid.UUID(bytes=b"\xf8" + bytes(15))  # its top six bits encode to '-'
    plain = uuid.UUID(int=1)
    drawn = iter([dashed, plain])
    monkeypatch.setattr(kafka.uuid, "uuid4", lambda: next(drawn))
    assert kafka.new_cluster_id() == "AAAAAAAAAAAAAAAAAAAAAQ"  # the second draw
    monkeypatch.undo()
    assert not any(kafka.new_cluster_id().startswith("-") for _ in range(2000))
