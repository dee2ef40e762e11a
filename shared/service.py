"""One builder for both HTTP services, so they cannot drift apart in what every service does:
the lifespan (settings, tracing, the authenticator, then the service's own clients), the
middleware order, the error format and its handlers, and /healthz, /readyz, /metrics. Each
service's app factory says only what is its own: its clients, its dependency probes and its
routers."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from fastapi import APIRouter, FastAPI
from starlette.middleware.gzip import GZipMiddleware

from shared.auth import Authenticator, BearerAuthMiddleware, describe, metrics_guard
from shared.browsers import GZIP_OPTIONS, BrowserAccess
from shared.config import Settings, get_settings
from shared.http import BodySizeLimit, add_error_schema, health_router, install_error_handlers
from shared.observability import RequestContext
from shared.tracing import configure_tracing

log = logging.getLogger(__name__)

# Opens the service's own clients on `app.state` for as long as the service runs.
Resources = Callable[[FastAPI, Settings], AbstractAsyncContextManager[None]]


@dataclass
class ServiceSpec:
    name: str  # "command" or "query": logs, metrics labels, the tracing service name
    title: str
    description: str
    resources: Resources
    # Dependency name -> a probe that raises when it does not answer (for /readyz).
    probes: Callable[[FastAPI], dict[str, Callable[[], Awaitable[None]]]]
    unavailable: tuple[type[BaseException], ...]  # errors that mean "try again shortly": 503
    routers: Sequence[tuple[APIRouter, dict[str, Any]]] = field(default_factory=list)


def build_service(spec: ServiceSpec, settings: Settings | None = None) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI):
        config = settings or get_settings()
        app.state.settings = config
        configure_tracing(f"cqrs-accounts-{spec.name}")
        app.state.authenticator = Authenticator.from_settings(config)  # no key: refuse to start
        app.state.metrics_admin_only = config.auth_metrics_admin_only
        log.info("%s service: %s", spec.name, describe(config))
        async with spec.resources(app, config):
            yield

    app = FastAPI(title=spec.title, version="0.1.0", description=spec.description,
                  lifespan=lifespan)
    app.add_middleware(BodySizeLimit)
    app.add_middleware(BearerAuthMiddleware)  # no token, nothing else happens
    app.add_middleware(GZipMiddleware, **GZIP_OPTIONS)  # errors too
    # Outside authentication: a preflight carries no token, and a browser must be able to
    # read a 401 or a 429 to act on it.
    app.add_middleware(BrowserAccess)
    app.add_middleware(RequestContext, service=spec.name)  # outermost: ids and latency
    install_error_handlers(app, unavailable=spec.unavailable)
    add_error_schema(app)
    for router, options in spec.routers:
        app.include_router(router, **options)
    # Last: FastAPI tries included routers in order, and probes are the rarest requests.
    app.include_router(health_router(spec.probes(app), metrics_guard=metrics_guard))
    return app
