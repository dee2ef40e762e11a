"""Settings from `CQRS_*` environment variables (shared/config.py). docs/api.md: every setting has a
documented default, and a bad setting stops the process at start with one clear line naming
the variable (`SettingsError` from `load_settings()`), not a traceback."""

from __future__ import annotations

import os

import pytest

from shared.config import Settings, SettingsError, load_settings


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch):
    """Each test sees only the CQRS_ variables it sets itself."""
    for name in list(os.environ):
        if name.upper().startswith("CQRS_"):
            monkeypatch.delenv(name)


def refusal(monkeypatch, variable: str, value: str) -> str:
    monkeypatch.setenv(variable, value)
    with pytest.raises(SettingsError) as refused:
        load_settings()
    return str(refused.value)


# -- defaults and accepted values ------------------------------------------------------------

def test_every_setting_has_a_default_that_loads_without_any_environment():
    settings = load_settings()
    assert settings.database_url == "sqlite+aiosqlite:///.data/write.db"
    assert settings.kafka_bootstrap_servers == "127.0.0.1:9092"
    assert settings.kafka_enable_idempotence is True
    assert settings.mongo_url.startswith("mongodb://")
    assert settings.mongo_database == "cqrs_accounts"
    assert settings.consistency_wait_default_ms == 2000
    assert settings.consistency_wait_max_ms == 10_000
    assert settings.log_level == "INFO"


def test_no_setting_is_required():
    for name, field in Settings.model_fields.items():
        assert field.default is not None, f"{name} has no default"


@pytest.mark.parametrize(
    ("variable", "value", "field", "expected"),
    [
        ("CQRS_DATABASE_URL", "mysql+asyncmy://root:@127.0.0.1:3306/test", "database_url",
         "mysql+asyncmy://root:@127.0.0.1:3306/test"),
        ("CQRS_DATABASE_URL", "sqlite+aiosqlite:////tmp/w.db", "database_url",
         "sqlite+aiosqlite:////tmp/w.db"),
        ("CQRS_MONGO_URL", "mongodb+srv://cluster.example.net/", "mongo_url",
         "mongodb+srv://cluster.example.net/"),
        ("CQRS_KAFKA_ENABLE_IDEMPOTENCE", "false", "kafka_enable_idempotence", False),
        ("CQRS_KAFKA_ENABLE_IDEMPOTENCE", "0", "kafka_enable_idempotence", False),
        ("CQRS_KAFKA_ENABLE_IDEMPOTENCE", "TRUE", "kafka_enable_idempotence", True),
        ("CQRS_DATABASE_POOL_SIZE", "1", "database_pool_size", 1),
        ("CQRS_DATABASE_POOL_SIZE", "500", "database_pool_size", 500),
        ("CQRS_DATABASE_TIMEOUT_S", "0.5", "database_timeout_s", 0.5),
        ("CQRS_KAFKA_TOPIC_PARTITIONS", "12", "kafka_topic_partitions", 12),
        ("CQRS_CONSISTENCY_WAIT_DEFAULT_MS", "0", "consistency_wait_default_ms", 0),
        ("CQRS_CONSISTENCY_WAIT_MAX_MS", "10000", "consistency_wait_max_ms", 10_000),
        ("CQRS_LOG_LEVEL", "debug", "log_level", "DEBUG"),
        ("CQRS_LOG_LEVEL", "Warning", "log_level", "WARNING"),
    ],
)
def test_valid_values_are_read_from_the_environment(monkeypatch, variable, value, field,
                                                     expected):
    monkeypatch.setenv(variable, value)
    assert getattr(load_settings(), field) == expected


def test_variable_names_are_case_insensitive_like_the_environment_on_some_systems(monkeypatch):
    monkeypatch.setenv("cqrs_kafka_topic", "lower.case")
    assert load_settings().kafka_topic == "lower.case"


def test_unrelated_cqrs_variables_are_ignored(monkeypatch):
    monkeypatch.setenv("CQRS_TEST_MYSQL_URL", "mysql+asyncmy://x")
    monkeypatch.setenv("CQRS_NOT_A_SETTING", "whatever")
    load_settings()


def test_bootstrap_servers_are_split_on_commas_and_trimmed(monkeypatch):
    monkeypatch.setenv("CQRS_KAFKA_BOOTSTRAP_SERVERS", " k1:9092, k2:9093 ,,k3:9094 ")
    assert load_settings().bootstrap_servers == ["k1:9092", "k2:9093", "k3:9094"]


# -- refusals --------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("CQRS_DATABASE_URL", "postgresql://localhost/db"),
        ("CQRS_DATABASE_URL", "mysql://root@localhost/test"),  # sync driver
        ("CQRS_DATABASE_URL", "mysql+pymysql://root@localhost/test"),
        ("CQRS_DATABASE_URL", "sqlite:///write.db"),
        ("CQRS_DATABASE_URL", ""),
        ("CQRS_DATABASE_POOL_SIZE", "0"),
        ("CQRS_DATABASE_POOL_SIZE", "501"),
        ("CQRS_DATABASE_POOL_SIZE", "ten"),
        ("CQRS_DATABASE_POOL_SIZE", ""),
        ("CQRS_DATABASE_POOL_SIZE", "2.5"),
        ("CQRS_DATABASE_TIMEOUT_S", "0"),
        ("CQRS_DATABASE_TIMEOUT_S", "-1"),
        ("CQRS_DATABASE_TIMEOUT_S", "nan"),
        ("CQRS_DATABASE_TIMEOUT_S", "soon"),
        ("CQRS_KAFKA_ENABLE_IDEMPOTENCE", "maybe"),
        ("CQRS_KAFKA_ENABLE_IDEMPOTENCE", ""),
        ("CQRS_KAFKA_TOPIC_PARTITIONS", "0"),
        ("CQRS_KAFKA_TOPIC_PARTITIONS", "1001"),
        ("CQRS_KAFKA_REPLICATION_FACTOR", "0"),
        ("CQRS_KAFKA_REPLICATION_FACTOR", "11"),
        ("CQRS_MONGO_URL", "http://127.0.0.1:27017"),
        ("CQRS_MONGO_URL", "127.0.0.1:27017"),
        ("CQRS_MONGO_TIMEOUT_MS", "99"),
        ("CQRS_RELAY_BATCH_SIZE", "0"),
        ("CQRS_RELAY_BATCH_SIZE", "10001"),
        ("CQRS_RELAY_IDLE_POLL_MS", "0"),
        ("CQRS_RELAY_LEASE_S", "0"),
        ("CQRS_RELAY_LEASE_S", "nan"),
        ("CQRS_PROJECTOR_BATCH_SIZE", "0"),
        ("CQRS_PROJECTOR_POLL_MS", "10001"),
        ("CQRS_CONSISTENCY_WAIT_DEFAULT_MS", "-1"),
        ("CQRS_CONSISTENCY_WAIT_DEFAULT_MS", "10001"),
        ("CQRS_CONSISTENCY_WAIT_MAX_MS", "10001"),
        ("CQRS_LOG_LEVEL", "verbose"),
        ("CQRS_LOG_LEVEL", "CRITICAL"),
    ],
)
def test_a_bad_value_stops_loading_with_one_line_naming_the_variable(monkeypatch, variable,
                                                                      value):
    message = refusal(monkeypatch, variable, value)
    assert message.startswith(f"{variable}: ")
    assert "\n" not in message
    assert len(message) > len(variable) + 2  # says what is wrong, not only where
    assert "Traceback" not in message and "validation error" not in message


@pytest.mark.parametrize(
    ("variable", "value", "hint"),
    [
        ("CQRS_DATABASE_URL", "postgresql://x", "mysql+asyncmy:// or sqlite+aiosqlite://"),
        ("CQRS_MONGO_URL", "http://x", "mongodb:// or mongodb+srv://"),
        ("CQRS_DATABASE_POOL_SIZE", "0", "greater than or equal to 1"),
        ("CQRS_LOG_LEVEL", "loud", "DEBUG, INFO, WARNING or ERROR"),
        ("CQRS_KAFKA_ENABLE_IDEMPOTENCE", "maybe", "boolean"),
    ],
)
def test_the_line_says_what_a_valid_value_looks_like(monkeypatch, variable, value, hint):
    assert hint in refusal(monkeypatch, variable, value)


def test_the_refusal_hides_the_pydantic_traceback(monkeypatch):
    monkeypatch.setenv("CQRS_DATABASE_POOL_SIZE", "0")
    with pytest.raises(SettingsError) as refused:
        load_settings()
    assert refused.value.__cause__ is None
    assert refused.value.__suppress_context__ is True


def test_with_several_bad_values_the_line_names_one_of_them(monkeypatch):
    monkeypatch.setenv("CQRS_DATABASE_POOL_SIZE", "0")
    monkeypatch.setenv("CQRS_LOG_LEVEL", "loud")
    message = refusal(monkeypatch, "CQRS_MONGO_URL", "http://x")
    assert "\n" not in message
    assert message.split(":")[0] in {"CQRS_DATABASE_POOL_SIZE", "CQRS_LOG_LEVEL",
                                     "CQRS_MONGO_URL"}


@pytest.mark.parametrize("variable", ["CQRS_DATABASE_TIMEOUT_S", "CQRS_RELAY_LEASE_S"])
def test_an_infinite_duration_is_refused_at_start(monkeypatch, variable):
    # "inf" passes `gt=0`, then int(inf) / timedelta(seconds=inf) raise OverflowError when the
    # engine or the relay lease is created: a traceback, not a one-line refusal.
    assert refusal(monkeypatch, variable, "inf").startswith(f"{variable}: ")


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("CQRS_KAFKA_BOOTSTRAP_SERVERS", ""),
        ("CQRS_KAFKA_BOOTSTRAP_SERVERS", " , "),
        ("CQRS_KAFKA_TOPIC", ""),
        ("CQRS_KAFKA_CONSUMER_GROUP", ""),
        ("CQRS_MONGO_DATABASE", ""),
    ],
)
def test_an_empty_name_or_address_is_refused_at_start(monkeypatch, variable, value):
    # Accepted today; the process then fails later (no broker to contact, pymongo's
    # InvalidName for an empty database name) with a traceback instead of one line.
    assert refusal(monkeypatch, variable, value).startswith(f"{variable}: ")
