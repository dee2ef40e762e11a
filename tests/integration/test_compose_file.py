"""The production-like stack in docker-compose.yml is wired the way the processes expect.

These tests read the file (and the Dockerfile) as data, so they run on any machine. Two check it
against the Compose Specification's JSON Schema, the one Docker Compose applies first, fetched
with `go` (tests/support/compose_schema.py); one asks the Docker CLI itself to validate the file.
Each of those skips with the reason when it cannot run.
"""

from __future__ import annotations

import copy
import re
import shlex
import shutil
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from shared.config import Settings
from tests.support.compose_schema import compose_schema

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"

# service -> the `cqrs-accounts` subcommand it runs
APP_SERVICES = {
    "command-api": "command-api",
    "query-api": "query-api",
    "relay": "relay",
    "projector": "projector",
    "verify": "verify",
}
BUILT_SERVICES = {"migrate", *APP_SERVICES}
BACKEND_SERVICES = {"mysql", "kafka", "mongo"}
HTTP_PORTS = {"command-api": 8000, "query-api": 8001, "relay": 9100, "projector": 9101,
              "verify": 9102}

# Variables the deployment sets ahead of the setting that reads them (pydantic-settings ignores
# unknown `CQRS_*` names, so they are harmless until then). Keep this list short and explained.
NOT_YET_IN_SETTINGS: set[str] = set()


def load_compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))


def services() -> dict[str, dict[str, Any]]:
    return load_compose()["services"]


def environment(service: dict[str, Any]) -> dict[str, str]:
    """A service's environment as a mapping, whichever of the two Compose forms it uses."""
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) if "=" in item else (item, None) for item in env)
    return {
        str(k): ("" if v is None else str(v).lower() if isinstance(v, bool) else str(v))
        for k, v in env.items()
    }


def command_argv(service: dict[str, Any]) -> list[str]:
    command = service.get("command")
    return shlex.split(command) if isinstance(command, str) else [str(a) for a in command or []]


def depends_on(service: dict[str, Any]) -> dict[str, str]:
    """Each dependency with its condition (the short list form means `service_started`)."""
    deps = service.get("depends_on") or {}
    if isinstance(deps, list):
        return {name: "service_started" for name in deps}
    return {name: (spec or {}).get("condition", "service_started") for name, spec in deps.items()}


def published_container_ports(service: dict[str, Any]) -> set[int]:
    ports: set[int] = set()
    for entry in service.get("ports") or []:
        if isinstance(entry, dict):
            ports.add(int(entry["target"]))
        else:
            ports.add(int(str(entry).split("/")[0].rsplit(":", 1)[-1]))
    return ports


def test_compose_file_uses_the_compose_spec_without_a_version_key():
    compose = load_compose()
    assert "version" not in compose
    assert isinstance(compose.get("services"), dict)


def test_every_part_of_the_system_is_a_service():
    assert set(services()) >= BACKEND_SERVICES | BUILT_SERVICES


def test_backends_are_mysql_8_4_kraft_kafka_and_mongodb_7():
    svc = services()
    assert svc["mysql"]["image"] == "mysql:8.4"
    assert svc["mongo"]["image"].split(":", 1)[1].split(".")[0] == "7"
    assert svc["kafka"]["image"].split(":", 1)[0] in {"apache/kafka", "apache/kafka-native"}
    assert not any("zookeeper" in name for name in svc)
    kafka_env = environment(svc["kafka"])
    assert "controller" in kafka_env["KAFKA_PROCESS_ROLES"]
    assert "KAFKA_ZOOKEEPER_CONNECT" not in kafka_env


def test_kafka_does_not_create_topics_on_first_use():
    assert environment(services()["kafka"])["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"


def test_stateful_backends_keep_their_data_in_named_volumes():
    compose = load_compose()
    named = set(compose.get("volumes") or {})
    for name in ("mysql", "mongo"):
        sources = {str(v).split(":", 1)[0] for v in compose["services"][name].get("volumes", [])}
        assert sources & named, f"{name} has no named volume"


def test_every_service_has_a_healthcheck_except_the_one_shot_migration():
    for name, service in services().items():
        if name == "migrate":
            assert "healthcheck" not in service
            continue
        check = service.get("healthcheck")
        assert check and check.get("test") and not check.get("disable"), name


def test_app_healthchecks_probe_their_own_port():
    svc = services()
    for name, port in HTTP_PORTS.items():
        probe = " ".join(map(str, svc[name]["healthcheck"]["test"]))
        assert f"127.0.0.1:{port}/" in probe, name
        assert "/healthz" in probe or "/readyz" in probe, name


def test_migration_runs_once_after_mysql_is_healthy():
    migrate = services()["migrate"]
    assert depends_on(migrate)["mysql"] == "service_healthy"
    assert migrate["restart"] == "no"  # quoted in YAML: a bare `no` would be the boolean false


def test_app_services_wait_for_their_dependencies_to_be_healthy():
    svc = services()
    expected = {
        "command-api": {"migrate": "service_completed_successfully"},
        "relay": {"migrate": "service_completed_successfully", "kafka": "service_healthy"},
        "projector": {"kafka": "service_healthy", "mongo": "service_healthy"},
        "query-api": {"mongo": "service_healthy"},
        "verify": {"migrate": "service_completed_successfully", "mongo": "service_healthy"},
    }
    for name, needs in expected.items():
        deps = depends_on(svc[name])
        for dependency, condition in needs.items():
            assert deps.get(dependency) == condition, f"{name} -> {dependency}"


def test_long_running_services_restart_unless_stopped():
    for name, service in services().items():
        if name != "migrate":
            assert service.get("restart") == "unless-stopped", name


def test_built_services_use_the_dockerfile_whose_command_is_cqrs_accounts():
    svc = services()
    for name in BUILT_SERVICES:
        build = svc[name]["build"]
        if isinstance(build, str):
            build = {"context": build}
        dockerfile = (
            COMPOSE_FILE.parent / build.get("context", ".") / build.get("dockerfile", "Dockerfile")
        )
        assert dockerfile.resolve() == ROOT / "Dockerfile", name
    instructions = [
        line.strip()
        for line in (ROOT / "Dockerfile").read_text(encoding="utf-8").splitlines()
        if line.strip().startswith(("CMD", "ENTRYPOINT"))
    ]
    assert instructions and all("cqrs-accounts" in line for line in instructions)


def test_each_app_service_runs_its_own_cqrs_accounts_subcommand():
    svc = services()
    assert command_argv(svc["migrate"])[:2] == ["cqrs-accounts", "migrate"]
    for name, subcommand in APP_SERVICES.items():
        argv = command_argv(svc[name])
        assert argv[:2] == ["cqrs-accounts", subcommand], name
        assert argv[argv.index("--port") + 1] == str(HTTP_PORTS[name]), name


def test_http_apis_listen_on_all_interfaces_and_are_published():
    svc = services()
    for name, port in (("command-api", 8000), ("query-api", 8001)):
        argv = command_argv(svc[name])
        assert argv[argv.index("--host") + 1] == "0.0.0.0", name
        assert port in published_container_ports(svc[name]), name


def test_every_cqrs_variable_is_a_setting():
    known = {f"CQRS_{field.upper()}" for field in Settings.model_fields} | NOT_YET_IN_SETTINGS
    for name, service in services().items():
        unknown = {k for k in environment(service) if k.startswith("CQRS_")} - known
        assert not unknown, f"{name} sets unknown variables {sorted(unknown)}"


def test_app_settings_from_the_compose_file_pass_validation():
    for name in BUILT_SERVICES:
        env = environment(services()[name])
        values = {
            k.removeprefix("CQRS_").lower(): v
            for k, v in env.items()
            if k.startswith("CQRS_") and k not in NOT_YET_IN_SETTINGS
        }
        settings = Settings(**values)
        assert settings.kafka_enable_idempotence is True, name  # real Kafka supports it


def test_app_services_reach_the_backends_by_their_compose_names():
    svc = services()
    mysql_env = environment(svc["mysql"])
    advertised = environment(svc["kafka"])["KAFKA_ADVERTISED_LISTENERS"]
    advertised_endpoints = {entry.split("://", 1)[1] for entry in advertised.split(",")}
    for name in BUILT_SERVICES:
        env = environment(svc[name])

        db = urlsplit(env["CQRS_DATABASE_URL"])
        assert db.scheme == "mysql+asyncmy", name
        assert (db.hostname, db.port) == ("mysql", 3306), name
        assert db.username == mysql_env["MYSQL_USER"], name
        assert db.password == mysql_env["MYSQL_PASSWORD"], name
        assert db.path.lstrip("/") == mysql_env["MYSQL_DATABASE"], name

        for server in (s.strip() for s in env["CQRS_KAFKA_BOOTSTRAP_SERVERS"].split(",")):
            assert server.rpartition(":")[0] in svc, f"{name}: {server} is not a compose service"
            assert server in advertised_endpoints, f"{name}: Kafka does not advertise {server}"

        mongo = urlsplit(env["CQRS_MONGO_URL"])
        assert mongo.hostname in svc and mongo.hostname == "mongo", name
        assert (mongo.port or 27017) == 27017, name
        assert env.get("CQRS_MONGO_DATABASE"), name


@pytest.fixture(scope="module")
def compose_spec_validator():
    """A validator for the Compose Specification's schema, of the Draft that schema declares."""
    import jsonschema

    schema, missing = compose_schema()
    if schema is None:
        pytest.skip(f"the Compose Specification's schema cannot be had: {missing}")
    validator = jsonschema.validators.validator_for(schema)
    validator.check_schema(schema)
    return validator(schema)


def schema_errors(validator, compose: dict[str, Any]) -> list[str]:
    return [
        f"{'.'.join(map(str, error.absolute_path)) or '(top level)'}: {error.message}"
        for error in validator.iter_errors(compose)
    ]


def test_compose_file_follows_the_compose_specification_schema(compose_spec_validator):
    errors = schema_errors(compose_spec_validator, load_compose())
    assert not errors, "\n".join(errors)


@pytest.mark.parametrize(
    ("where", "key"),
    [(("services", "migrate"), "restartt"), ((), "servicess")],
    ids=["misspelled service key", "unknown top-level key"],
)
def test_the_schema_check_fails_on_a_key_compose_would_reject(compose_spec_validator, where, key):
    compose = copy.deepcopy(load_compose())
    mapping = compose
    for part in where:
        mapping = mapping[part]
    mapping[key] = "no"
    errors = schema_errors(compose_spec_validator, compose)
    place = ".".join(where) or "(top level)"
    assert any(e.startswith(f"{place}:") and repr(key) in e for e in errors), errors


def _docker_compose_available() -> str | None:
    """None when `docker compose` can run, else why not."""
    if shutil.which("docker") is None:
        return "the docker CLI is not installed"
    try:
        probe = subprocess.run(
            ["docker", "compose", "version"], capture_output=True, text=True, timeout=15
        )
    except subprocess.TimeoutExpired:
        return "`docker compose version` did not answer within 15 s"
    if probe.returncode != 0:
        reason = (probe.stderr or probe.stdout).strip().splitlines()
        return "the docker CLI has no compose plugin" + (f" ({reason[0]})" if reason else "")
    return None


@pytest.mark.docker
def test_docker_compose_accepts_the_file():
    # `docker compose config` only parses and interpolates, so it normally needs no engine; if
    # this Compose version does ask the engine, that is a reason to skip, not a failure.
    missing = _docker_compose_available()
    if missing:
        pytest.skip(f"cannot run `docker compose config`: {missing}")
    result = subprocess.run(
        ["docker", "compose", "--file", str(COMPOSE_FILE), "config", "--quiet"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    if result.returncode != 0 and "Cannot connect to the Docker daemon" in result.stderr:
        pytest.skip(f"no Docker engine reachable: {result.stderr.strip().splitlines()[0]}")
    assert result.returncode == 0, result.stderr


def test_app_services_check_bearer_tokens():
    """Authentication is on in the production-like stack, with a long enough secret."""
    for name in BUILT_SERVICES:
        env = environment(services()[name])
        assert env.get("CQRS_AUTH_DISABLED", "false").lower() not in {"true", "1", "yes"}, name
        values = {k.removeprefix("CQRS_").lower(): v for k, v in env.items()
                  if k.startswith("CQRS_")}
        assert Settings(**values).auth_jwt_secret.get_secret_value(), name


def test_compose_runs_the_kafka_version_the_suite_tests_on():
    """The suite proves the guarantees on the Kafka the project fetches itself: production-like
    compose must run that same release."""
    pom = (ROOT / "cli" / "servers" / "kafka_dist" / "pom.xml").read_text()
    tested = re.search(r"<kafka.version>([^<]+)</kafka.version>", pom).group(1)
    assert services()["kafka"]["image"] == f"apache/kafka:{tested}"
