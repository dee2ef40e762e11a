"""Bearer tokens (shared/auth/), the command access rules (command_service/access.py) and the
per-subject token bucket (shared/ratelimit.py), without a server."""

from __future__ import annotations

import json
import os
import stat
import time
import uuid

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from cli.dev_secret import dev_secret
from command_service.access import Forbidden, check_command
from command_service.domain import commands as c
from command_service.domain.model import AccountType
from shared.auth import (
    ADMIN,
    ANONYMOUS,
    LEEWAY_S,
    READ,
    WRITE,
    Authenticator,
    Principal,
    TokenVerifier,
    check_auth_settings,
    mint_token,
)
from shared.config import Settings, SettingsError, load_settings
from shared.http import ApiError
from shared.ratelimit import TokenBucketLimiter, retry_after_header

SECRET = "unit-test-secret-0123456789abcdef-0123456789"
OTHER_SECRET = "another-secret-0123456789abcdef-0123456789ab"


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch):
    for name in list(os.environ):
        if name.upper().startswith("CQRS_"):
            monkeypatch.delenv(name)


def settings(**values) -> Settings:
    return Settings(**({"auth_jwt_secret": SECRET} | values))


def claims(**overrides) -> dict:
    now = int(time.time())
    base = {"iss": "cqrs-accounts", "aud": "cqrs-accounts", "sub": "alice", "iat": now,
            "exp": now + 600, "scope": "accounts:read accounts:write"}
    return {k: v for k, v in (base | overrides).items() if v is not None}


def hs256(key: str = SECRET, **overrides) -> str:
    return jwt.encode(claims(**overrides), key, algorithm="HS256")


def refusal(verifier: TokenVerifier, token: str) -> ApiError:
    with pytest.raises(ApiError) as refused:
        verifier.verify(token)
    assert refused.value.status == 401 and refused.value.code == "unauthorized"
    assert refused.value.headers["WWW-Authenticate"].startswith("Bearer")
    return refused.value


# -- accepted tokens ---------------------------------------------------------------------------

def test_a_valid_hs256_token_names_its_subject_scopes_and_customer():
    customer = str(uuid.uuid4())
    verifier = TokenVerifier.from_settings(settings())
    principal = verifier.verify(hs256(customer_id=customer.upper()))
    assert principal == Principal("alice", frozenset({READ, WRITE}), customer)
    assert principal.restricted and principal.may_see_customer(customer)
    assert not principal.may_see_customer(str(uuid.uuid4()))


@pytest.mark.parametrize("scope_claims,expected", [
    ({"scope": "accounts:read"}, {READ}),
    ({"scope": ["accounts:write", "admin"]}, {WRITE, ADMIN}),
    ({"scope": None, "scp": ["accounts:read"]}, {READ}),
    ({"scope": "accounts:read openid profile"}, {READ}),  # unknown scopes are dropped
    ({"scope": None}, set()),
])
def test_scopes_are_read_from_scope_or_scp(scope_claims, expected):
    principal = TokenVerifier.from_settings(settings()).verify(hs256(**scope_claims))
    assert principal.scopes == expected


def test_admin_sees_everything_even_with_a_customer_claim():
    admin = Principal("ops", frozenset({ADMIN}), str(uuid.uuid4()))
    assert admin.has(READ) and admin.has(WRITE) and not admin.restricted
    assert admin.may_see_customer(str(uuid.uuid4()))


def test_mint_token_makes_tokens_the_verifier_accepts():
    config = settings(auth_issuer="bank", auth_audience="accounts-api")
    customer = str(uuid.uuid4())
    token = mint_token(config, subject="bob", scopes=[READ], customer_id=customer, ttl_s=60)
    principal = TokenVerifier.from_settings(config).verify(token)
    assert principal == Principal("bob", frozenset({READ}), customer)
    decoded = jwt.decode(token, SECRET, algorithms=["HS256"], audience="accounts-api")
    assert decoded["iss"] == "bank" and decoded["exp"] - decoded["iat"] == 60


def test_rs256_with_a_public_key_file_or_inline_pem(tmp_path):
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = private.public_key().public_bytes(serialization.Encoding.PEM,
                                            serialization.PublicFormat.SubjectPublicKeyInfo)
    (tmp_path / "public.pem").write_bytes(pem)
    for key_setting in (str(tmp_path / "public.pem"), pem.decode()):
        config = Settings(auth_public_key=key_setting)
        verifier = TokenVerifier.from_settings(config)
        token = jwt.encode(claims(), private, algorithm="RS256")
        assert verifier.verify(token).subject == "alice"
        # The public key used as an HMAC secret (the classic algorithm confusion) is refused.
        forged = jwt.encode(claims(), SECRET, algorithm="HS256")
        refusal(verifier, forged)


def test_es256_keys_from_a_jwks_file_are_chosen_by_kid(tmp_path):
    first, second = (ec.generate_private_key(ec.SECP256R1()) for _ in range(2))
    keys = []
    for kid, private in (("k1", first), ("k2", second)):
        jwk = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(private.public_key()))
        keys.append(jwk | {"kid": kid, "alg": "ES256", "use": "sig"})
    (tmp_path / "jwks.json").write_text(json.dumps({"keys": keys}))
    verifier = TokenVerifier.from_settings(Settings(auth_jwks_file=str(tmp_path / "jwks.json")))
    for kid, private in (("k1", first), ("k2", second)):
        token = jwt.encode(claims(sub=kid), private, algorithm="ES256", headers={"kid": kid})
        assert verifier.verify(token).subject == kid
    # Signed by k1's key but naming k2: the signature does not verify.
    mismatched = jwt.encode(claims(), first, algorithm="ES256", headers={"kid": "k2"})
    refusal(verifier, mismatched)
    # Several keys and no kid: which one is meant is not guessed.
    refusal(verifier, jwt.encode(claims(), first, algorithm="ES256"))


def test_a_verified_token_is_not_checked_again_until_it_expires(monkeypatch):
    now = [time.time()]
    verifier = TokenVerifier(TokenVerifier.from_settings(settings())._keys, "cqrs-accounts",
                             "cqrs-accounts", clock=lambda: now[0])
    checks = []
    real_decode = jwt.decode
    monkeypatch.setattr(jwt, "decode", lambda *a, **k: checks.append(1) or real_decode(*a, **k))
    token = hs256(exp=int(now[0]) + 60)
    first = verifier.verify(token)
    assert verifier.verify(token) is first and len(checks) == 1
    assert verifier.verify(hs256(sub="bob")).subject == "bob" and len(checks) == 2
    now[0] = int(now[0]) + 60 + LEEWAY_S  # where PyJWT refuses it: checked again
    verifier.verify(token)
    assert len(checks) == 3


def test_the_verified_tokens_kept_are_bounded(monkeypatch):
    monkeypatch.setattr("shared.auth.tokens.VERIFIED_TOKENS_KEPT", 2)
    verifier = TokenVerifier.from_settings(settings())
    for subject in ("a", "b", "c"):
        verifier.verify(hs256(sub=subject))
    assert [p.subject for p, _ in verifier._verified.values()] == ["b", "c"]


# -- refused tokens ----------------------------------------------------------------------------

@pytest.mark.parametrize("label,token_for,message", [
    ("expired", lambda: hs256(exp=int(time.time()) - 120), "expired"),
    ("wrong audience", lambda: hs256(aud="someone-else"), "audience"),
    ("wrong issuer", lambda: hs256(iss="https://evil.example"), "issuer"),
    ("wrong signature", lambda: hs256(key=OTHER_SECRET), "signature"),
    ("no exp", lambda: hs256(exp=None), "exp"),
    ("no aud", lambda: hs256(aud=None), "aud"),
    ("no iss", lambda: hs256(iss=None), "iss"),
    ("no sub", lambda: hs256(sub=None), "sub"),
    ("empty sub", lambda: hs256(sub=" "), "sub"),
    ("control characters in sub", lambda: hs256(sub="a\nb"), "sub"),
    ("sub too long", lambda: hs256(sub="x" * 256), "sub"),
    ("not yet valid", lambda: hs256(nbf=int(time.time()) + 3600), "not valid yet"),
    ("customer_id not a uuid", lambda: hs256(customer_id="{\"$ne\": null}"), "customer_id"),
    ("alg none", lambda: jwt.encode(claims(), None, algorithm="none"), "key"),
    ("garbage", lambda: "not.a.jwt", "malformed"),
    ("too long", lambda: "a" * 9000, "too long"),
])
def test_each_bad_token_is_refused_with_401(label, token_for, message):
    verifier = TokenVerifier.from_settings(settings())
    refused = refusal(verifier, token_for())
    assert message in refused.message, (label, refused.message)
    assert 'error="invalid_token"' in refused.headers["WWW-Authenticate"]


def test_no_token_is_401_and_asks_for_a_bearer_token():
    authenticator = Authenticator.from_settings(settings())
    with pytest.raises(ApiError) as refused:
        authenticator.principal(None)
    assert refused.value.status == 401
    assert refused.value.headers["WWW-Authenticate"] == 'Bearer realm="cqrs-accounts"'


def test_with_authentication_disabled_everyone_is_the_anonymous_principal():
    authenticator = Authenticator.from_settings(Settings(auth_disabled=True))
    assert not authenticator.enabled
    assert authenticator.principal(None) is ANONYMOUS
    assert authenticator.principal("whatever") is ANONYMOUS


# -- settings ----------------------------------------------------------------------------------

def test_authentication_on_without_a_key_is_a_settings_error_naming_the_variable():
    with pytest.raises(SettingsError) as refused:
        check_auth_settings(Settings())
    assert str(refused.value).startswith("CQRS_AUTH_JWT_SECRET:")
    assert "CQRS_AUTH_DISABLED" in str(refused.value)
    check_auth_settings(Settings(auth_disabled=True))  # off: nothing needed
    check_auth_settings(settings())


@pytest.mark.parametrize("values,variable", [
    ({"auth_public_key": "/no/such/key.pem"}, "CQRS_AUTH_PUBLIC_KEY"),
    ({"auth_public_key": "-----BEGIN PUBLIC KEY-----\nnope\n-----END PUBLIC KEY-----"},
     "CQRS_AUTH_PUBLIC_KEY"),
    ({"auth_jwks_file": "/no/such/jwks.json"}, "CQRS_AUTH_JWKS_FILE"),
])
def test_an_unusable_key_is_a_settings_error_naming_the_variable(values, variable):
    with pytest.raises(SettingsError) as refused:
        check_auth_settings(Settings(**values))
    assert str(refused.value).startswith(f"{variable}:")
    assert "\n" not in str(refused.value)


def test_a_jwks_without_signing_keys_is_refused(tmp_path):
    (tmp_path / "jwks.json").write_text(json.dumps({"keys": [
        {"kty": "oct", "k": "c2VjcmV0", "alg": "HS256"}]}))
    with pytest.raises(SettingsError, match="^CQRS_AUTH_JWKS_FILE:"):
        check_auth_settings(Settings(auth_jwks_file=str(tmp_path / "jwks.json")))


def test_a_short_secret_stops_the_process(monkeypatch):
    monkeypatch.setenv("CQRS_AUTH_JWT_SECRET", "short")
    with pytest.raises(SettingsError, match="^CQRS_AUTH_JWT_SECRET: must be at least 32"):
        load_settings()


def test_the_secret_never_shows_in_the_settings_repr_or_dump(monkeypatch):
    monkeypatch.setenv("CQRS_AUTH_JWT_SECRET", SECRET)
    loaded = load_settings()
    assert loaded.auth_jwt_secret.get_secret_value() == SECRET
    assert SECRET not in repr(loaded) and SECRET not in str(loaded)
    assert SECRET not in loaded.model_dump_json()


def test_the_development_secret_is_made_once_and_kept_private(tmp_path):
    first = dev_secret(tmp_path / "data")
    assert len(first) >= 32
    assert dev_secret(tmp_path / "data") == first
    mode = stat.S_IMODE((tmp_path / "data" / "auth-secret").stat().st_mode)
    assert mode == 0o600
    Settings(auth_jwt_secret=first)  # long enough to be accepted


# -- who may send which command --------------------------------------------------------------

CUSTOMER = str(uuid.uuid4())
OTHER = str(uuid.uuid4())


def customer_token(*scopes: str) -> Principal:
    return Principal(f"customer:{CUSTOMER}", frozenset(scopes or {WRITE}), CUSTOMER)


@pytest.mark.parametrize("principal,command,allowed", [
    (customer_token(READ), c.Deposit(str(uuid.uuid4()), 100, None), False),
    (Principal("svc", frozenset({READ})), c.Deposit(str(uuid.uuid4()), 100, None), False),
    (Principal("svc", frozenset({WRITE})), c.FreezeAccount(str(uuid.uuid4()), "why"), True),
    (Principal("ops", frozenset({ADMIN})), c.UnfreezeAccount(str(uuid.uuid4())), True),
    (customer_token(), c.RegisterCustomer("Me", "me@example.com", CUSTOMER), True),
    (customer_token(), c.RegisterCustomer("You", "you@example.com", OTHER), False),
    (customer_token(), c.OpenAccount(CUSTOMER, AccountType.CHECKING, "USD", 0,
                                     str(uuid.uuid4())), True),
    (customer_token(), c.OpenAccount(OTHER, AccountType.CHECKING, "USD", 0,
                                     str(uuid.uuid4())), False),
    (customer_token(), c.FreezeAccount(str(uuid.uuid4()), "lost card"), False),
    (customer_token(), c.UnfreezeAccount(str(uuid.uuid4())), False),
    (customer_token(), c.Withdraw(str(uuid.uuid4()), 100, None), True),  # owner: checked later
])
def test_the_static_command_rules(principal, command, allowed):
    if allowed:
        check_command(principal, command)
    else:
        with pytest.raises(Forbidden):
            check_command(principal, command)


# -- the token bucket --------------------------------------------------------------------------

class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_subject_may_burst_then_waits_for_the_refill():
    clock = FakeClock()
    limiter = TokenBucketLimiter(rate=10, burst=5, clock=clock)
    assert [limiter.acquire("alice") for _ in range(5)] == [0.0] * 5
    wait = limiter.acquire("alice")
    assert wait == pytest.approx(0.1)
    assert retry_after_header(wait) == "1"
    assert limiter.acquire("bob") == 0.0  # buckets are per subject
    clock.now += 0.1
    assert limiter.acquire("alice") == 0.0
    assert limiter.acquire("alice") > 0
    clock.now += 60  # refills up to the burst, not beyond
    assert [limiter.acquire("alice") for _ in range(6)].count(0.0) == 5


def test_the_default_lets_a_client_burst_at_least_100_commands_a_second():
    config = Settings()
    clock = FakeClock()
    limiter = TokenBucketLimiter(config.rate_limit_commands_per_s, config.rate_limit_burst,
                                 clock=clock)
    granted = 0
    for i in range(1000):  # 1,000 commands spread over one second
        clock.now = 1000.0 + i / 1000
        granted += limiter.acquire("client") == 0.0
    assert granted >= 100 + config.rate_limit_burst - 1


def test_rate_zero_means_no_limit_and_the_number_of_buckets_is_bounded():
    assert TokenBucketLimiter(rate=0, burst=1).acquire("x") == 0.0
    limiter = TokenBucketLimiter(rate=1, burst=1, max_keys=3)
    for key in "abcde":
        limiter.acquire(key)
    assert len(limiter._buckets) == 3
