"""What a dependency's outage raises whatever its driver: apart from shared/http.py, so that
the database layer (command_service/db/errors.py) can name it without importing FastAPI."""

from __future__ import annotations

# On top of the drivers' own errors each service names: answered 503 like them.
ANY_DEPENDENCY_DOWN: tuple[type[BaseException], ...] = (TimeoutError, ConnectionError)
