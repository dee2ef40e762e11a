# One image for every process of cqrs-accounts: the command run picks it (`cqrs-accounts migrate`,
# `command-api`, `query-api`, `relay`, `projector`; see docker-compose.yml).

ARG PYTHON_IMAGE=python:3.11-slim

# --- build: install the package and its runtime dependencies into a self-contained venv --------
FROM ${PYTHON_IMAGE} AS build

# pip compiles the .pyc files here, so the read-only venv of the runtime stage starts fast.
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1

RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH

WORKDIR /src
# The whole context (trimmed by .dockerignore): pyproject.toml decides which packages get
# installed, and this stage is thrown away, so nothing here reaches the final image.
COPY . .

# Runtime dependencies only: no `test` extra, and no `embedded` extra (the Tansu broker and the
# GPL-2.0 SecantusDB server are for `make dev` and tests, never for this image).
RUN pip install .

# --- runtime: the venv on a clean slim base, no build leftovers, no source tree ----------------
FROM ${PYTHON_IMAGE} AS runtime

LABEL org.opencontainers.image.title="cqrs-accounts" \
      org.opencontainers.image.description="CQRS bank accounts: command API, query API, outbox relay, projector" \
      org.opencontainers.image.licenses="Apache-2.0"

ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1

RUN groupadd --system --gid 10001 app \
    && useradd --system --uid 10001 --gid app --home-dir /app --no-create-home \
        --shell /usr/sbin/nologin app \
    && mkdir /app && chown app:app /app

COPY --from=build /opt/venv /opt/venv

WORKDIR /app
# Numeric so that orchestrators enforcing "run as non-root" can verify it without /etc/passwd.
USER 10001:10001

# command-api, query-api, relay health port, projector health port (as wired in compose).
EXPOSE 8000 8001 9100 9101

# No ENTRYPOINT, so `docker compose run --rm command-api cqrs-accounts verify` (or `sh`) works.
# Exec form: the process gets SIGTERM directly (compose also sets `init: true`).
# No HEALTHCHECK here: each process listens on its own port, so compose declares one per service.
CMD ["cqrs-accounts", "command-api", "--host", "0.0.0.0", "--port", "8000"]
