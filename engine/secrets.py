"""The secrets-at-rest key and what is built from it: `SecretBox` encrypts function secrets (Fernet),
and `derive` turns the same key into purpose-bound keys (e.g. the session-cookie signing key), so one
file (or `NIMBUS_SECRET_KEY`) is the only secret an operator has to keep and back up."""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import os
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken

from engine.config import Settings

KEY_FILE = "secret.key"


class SecretsKeyError(Exception):
    """The configured secrets key is unusable (not a Fernet key)."""


class SecretsKeyMismatch(Exception):
    """Stored secrets were encrypted with another key: the key file or `NIMBUS_SECRET_KEY` changed.

    Deliberately not an `engine.errors` type: it is an operator's misconfiguration, not the caller's
    bad input, so the API reports it as an internal error and the server log names the cause."""


def load_or_create_key(settings: Settings) -> bytes:
    """`settings.secret_key` when set, else `data_dir/secret.key`, created (mode 0600) on first use.

    Several nodes over one database must share the key: set `NIMBUS_SECRET_KEY` on each of them."""
    if settings.secret_key:
        return _checked(settings.secret_key.strip().encode(), "NIMBUS_SECRET_KEY")
    path = Path(settings.data_dir) / KEY_FILE
    if not path.exists():
        _create_key_file(path)
    return _checked(path.read_bytes().strip(), str(path))


def _create_key_file(path: Path) -> None:
    """Write a fresh key without ever exposing a partial or world-readable file, and without clobbering a
    key another process created meanwhile (two nodes starting at once on a shared data dir)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(Fernet.generate_key() + b"\n")
            handle.flush()
            os.fsync(handle.fileno())
        with contextlib.suppress(FileExistsError):  # someone else won the race: keep theirs
            os.link(tmp, path)  # unlike rename, link never replaces an existing file
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def _checked(key: bytes, source: str) -> bytes:
    try:
        Fernet(key)
    except (ValueError, TypeError) as exc:
        raise SecretsKeyError(
            f"{source} is not a valid secrets key (32 url-safe base64-encoded bytes); generate one with "
            "python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'"
        ) from exc
    return key


def derive(key: bytes, purpose: str) -> bytes:
    """A key for one purpose (HMAC-SHA256 of the purpose under the master key): leaking a derived key,
    say the cookie-signing one, reveals neither the master key nor any other derived key."""
    return hmac.new(key, b"nimbus:" + purpose.encode(), hashlib.sha256).digest()


class SecretBox:
    """Encrypts a `{name: value}` dict into one opaque string for a text column, and back."""

    def __init__(self, key: bytes) -> None:
        self._fernet = Fernet(key)

    def encrypt(self, values: dict[str, str]) -> str:
        if not values:
            return ""  # no secrets: nothing to decrypt later, and no key needed to read the row
        blob = json.dumps(values, sort_keys=True, separators=(",", ":")).encode()
        return self._fernet.encrypt(blob).decode("ascii")

    def decrypt(self, token: str) -> dict[str, str]:
        if not token:
            return {}
        try:
            blob = self._fernet.decrypt(token.encode("ascii"))
        except (InvalidToken, UnicodeEncodeError) as exc:
            raise SecretsKeyMismatch(
                "stored secrets cannot be decrypted with this secrets key; was NIMBUS_SECRET_KEY or "
                f"{KEY_FILE} in the data directory changed or lost?"
            ) from exc
        values = json.loads(blob)
        if not isinstance(values, dict):
            raise SecretsKeyMismatch("decrypted secrets are not a mapping")
        return {str(k): str(v) for k, v in values.items()}
