"""Process-wide logging setup, one line per record on stderr."""

from __future__ import annotations

import logging


def configure_logging(level: str) -> None:
    logging.basicConfig(
        level=level,
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
        force=True,
    )
    # aiokafka logs every reconnect attempt at ERROR while a broker is away; our own loops
    # report outages once, with what they do about them.
    logging.getLogger("aiokafka").setLevel(max(logging.getLevelName(level), logging.WARNING))
