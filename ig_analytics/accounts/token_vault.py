"""Access tokens at rest: encrypted with Fernet (AES-128-CBC + HMAC-SHA256, from ``cryptography``).

The key is ``IG_TOKEN_KEY`` when set (a Fernet key, or any passphrase, which is stretched with SHA-256), else a
key generated once into ``IG_ANALYTICS_HOME/token.key`` with mode 0600. Losing the key means re-adding the
accounts' tokens; nothing else is lost.
"""

from __future__ import annotations

import base64
import hashlib
import os
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken

from ig_analytics.settings import Settings


class TokenVaultError(RuntimeError):
    pass


def _fernet_from_setting(value: str) -> Fernet:
    try:
        return Fernet(value.encode())
    except (ValueError, TypeError):
        return Fernet(base64.urlsafe_b64encode(hashlib.sha256(value.encode()).digest()))


class TokenVault:
    def __init__(self, fernet: Fernet):
        self._fernet = fernet

    @classmethod
    def from_settings(cls, settings: Settings) -> "TokenVault":
        if settings.token_key:
            return cls(_fernet_from_setting(settings.token_key))
        key_file = settings.home / "token.key"
        return cls(Fernet(_read_or_create_key(key_file)))

    def encrypt(self, token: str) -> bytes:
        return self._fernet.encrypt(token.encode())

    def decrypt(self, ciphertext: bytes) -> str:
        try:
            return self._fernet.decrypt(bytes(ciphertext)).decode()
        except InvalidToken as exc:
            raise TokenVaultError(
                "A stored access token cannot be decrypted with the current key (IG_TOKEN_KEY or token.key "
                "changed). Re-add the account's token with: ig-analytics accounts add --ig-user-id ID --token TOKEN"
            ) from exc


def _read_or_create_key(key_file: Path) -> bytes:
    if key_file.exists():
        return key_file.read_bytes().strip()
    key_file.parent.mkdir(parents=True, exist_ok=True)
    key = Fernet.generate_key()
    try:
        fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process created it first: use theirs
        return key_file.read_bytes().strip()
    with os.fdopen(fd, "wb") as handle:
        handle.write(key)
    return key
