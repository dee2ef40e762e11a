"""The keys this process trusts to sign tokens, loaded from its settings.

HS256 with `CQRS_AUTH_JWT_SECRET`; RS256/ES256 with `CQRS_AUTH_PUBLIC_KEY` (a PEM, inline or a
file) or the signing keys of `CQRS_AUTH_JWKS_FILE`. Loading is apart from verifying so a process
can refuse to start on an unusable key (`check_auth_settings`) before it serves anything, with
one line naming the setting at fault.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from shared.config import Settings, SettingsError

ASYMMETRIC = {"RS256", "ES256"}


@dataclass(frozen=True)
class Key:
    algorithm: str
    key: Any
    kid: str | None = None


def _pem_text(value: str) -> bytes:
    if value.lstrip().startswith("-----BEGIN"):
        return value.encode()
    path = Path(value).expanduser()
    try:
        return path.read_bytes()
    except OSError as exc:
        raise SettingsError(f"CQRS_AUTH_PUBLIC_KEY: cannot read {path} "
                            f"({exc.strerror or exc.__class__.__name__})") from None


def _public_key(value: str) -> Key:
    try:
        key = serialization.load_pem_public_key(_pem_text(value))
    except ValueError:
        raise SettingsError("CQRS_AUTH_PUBLIC_KEY: not a PEM public key") from None
    if isinstance(key, rsa.RSAPublicKey):
        if key.key_size < 2048:
            raise SettingsError("CQRS_AUTH_PUBLIC_KEY: an RSA key needs at least 2048 bits")
        return Key("RS256", key)
    if isinstance(key, ec.EllipticCurvePublicKey) and isinstance(key.curve, ec.SECP256R1):
        return Key("ES256", key)
    raise SettingsError("CQRS_AUTH_PUBLIC_KEY: must be an RSA (RS256) or P-256 (ES256) key")


def _jwks(path_text: str) -> list[Key]:
    path = Path(path_text).expanduser()
    try:
        keyset = jwt.PyJWKSet.from_json(path.read_text())
    except OSError as exc:
        raise SettingsError(f"CQRS_AUTH_JWKS_FILE: cannot read {path} "
                            f"({exc.strerror or exc.__class__.__name__})") from None
    except (jwt.PyJWKSetError, jwt.PyJWKError, ValueError, KeyError) as exc:
        raise SettingsError(f"CQRS_AUTH_JWKS_FILE: not a usable JWKS ({exc})") from None
    keys = [Key(k.algorithm_name, k.key, k.key_id) for k in keyset.keys
            if k.algorithm_name in ASYMMETRIC and getattr(k, "public_key_use", None) != "enc"]
    if not keys:
        raise SettingsError("CQRS_AUTH_JWKS_FILE: holds no RS256 or ES256 signing key")
    return keys


def keys_from_settings(settings: Settings) -> list[Key]:
    """Every configured key; SettingsError when one does not load, or none is configured."""
    keys: list[Key] = []
    secret = settings.auth_jwt_secret.get_secret_value()
    if secret:
        keys.append(Key("HS256", secret.encode()))
    if settings.auth_public_key:
        keys.append(_public_key(settings.auth_public_key))
    if settings.auth_jwks_file:
        keys.extend(_jwks(settings.auth_jwks_file))
    if not keys:
        raise SettingsError(
            "CQRS_AUTH_JWT_SECRET: authentication is on but no key is configured; set it "
            "(or CQRS_AUTH_PUBLIC_KEY / CQRS_AUTH_JWKS_FILE), or CQRS_AUTH_DISABLED=true "
            "on a network nobody else reaches")
    return keys


def check_auth_settings(settings: Settings) -> None:
    """Raise SettingsError (one line naming the setting) unless the process can check tokens:
    authentication is off, or a key is configured and loads."""
    if not settings.auth_disabled:
        keys_from_settings(settings)


def describe(settings: Settings) -> str:
    """How this process checks tokens, for a start-up log line (never the key itself)."""
    if settings.auth_disabled:
        return "authentication disabled"
    kinds = [name for name, present in (
        ("HS256 secret", settings.auth_jwt_secret.get_secret_value()),
        ("public key", settings.auth_public_key), ("JWKS file", settings.auth_jwks_file),
    ) if present]
    return (f"bearer tokens ({', '.join(kinds)}; iss={json.dumps(settings.auth_issuer)}, "
            f"aud={json.dumps(settings.auth_audience)})")
