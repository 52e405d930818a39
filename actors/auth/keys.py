"""The Ed25519 keys that sign access tokens, and the JWKS that publishes them."""

import base64
import hashlib
import json
import os
from pathlib import Path

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from actors.auth.settings import AuthSettings


class SigningKeyError(RuntimeError):
    """The signing key is missing or unusable; the message says what to set."""


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def public_jwk(public_key: Ed25519PublicKey) -> dict:
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    members = {"crv": "Ed25519", "kty": "OKP", "x": _b64url(raw)}
    # RFC 7638 thumbprint: the same key always gets the same kid.
    kid = _b64url(hashlib.sha256(json.dumps(members, separators=(",", ":"), sort_keys=True).encode()).digest())
    return members | {"kid": kid, "alg": "EdDSA", "use": "sig"}


def generate_key_file(path: Path) -> None:
    """Write a new private key readable only by its owner (development keys)."""
    pem = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(pem)


class SigningKeys:
    """Signs with the current key; publishes it and, during a rotation, the previous one."""

    def __init__(self, private_key: Ed25519PrivateKey, previous: list[Ed25519PublicKey] = ()):
        self.private_key = private_key
        current = public_jwk(private_key.public_key())
        self.kid = current["kid"]
        self.jwks = {"keys": [current, *(public_jwk(k) for k in previous)]}
        self._by_kid = {k["kid"]: jwt.PyJWK(k) for k in self.jwks["keys"]}

    @classmethod
    def from_settings(cls, settings: AuthSettings) -> "SigningKeys":
        if settings.signing_key:
            pem = settings.signing_key.encode()
        elif settings.signing_key_file:
            try:
                pem = settings.signing_key_file.read_bytes()
            except OSError as exc:
                raise SigningKeyError(f"AUTH_SIGNING_KEY_FILE {settings.signing_key_file} cannot be read: {exc}") from exc
        else:
            raise SigningKeyError("Set AUTH_SIGNING_KEY (PEM) or AUTH_SIGNING_KEY_FILE to an Ed25519 private key.")
        private_key = serialization.load_pem_private_key(pem, password=None)
        if not isinstance(private_key, Ed25519PrivateKey):
            raise SigningKeyError("The signing key must be an Ed25519 private key (openssl genpkey -algorithm ed25519).")
        previous = []
        if settings.previous_public_key_file:
            loaded = serialization.load_pem_public_key(settings.previous_public_key_file.read_bytes())
            if not isinstance(loaded, Ed25519PublicKey):
                raise SigningKeyError("AUTH_PREVIOUS_PUBLIC_KEY_FILE must hold an Ed25519 public key.")
            previous.append(loaded)
        return cls(private_key, previous)

    def sign(self, claims: dict) -> str:
        return jwt.encode(claims, self.private_key, algorithm="EdDSA", headers={"kid": self.kid})

    async def get(self, kid: str) -> jwt.PyJWK | None:
        """The auth service verifies with its own keys, without fetching its JWKS."""
        return self._by_kid.get(kid)
