"""HMAC-SHA256 URL signatures, as imgproxy defines them.

signature = urlsafe_base64_nopad(HMAC_SHA256(key, salt + path)[:size])
where `path` is everything after the signature segment, leading "/" included.
itsdangerous supplies the HMAC primitive and the unpadded URL-safe base64.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable

from itsdangerous.encoding import base64_encode
from itsdangerous.signer import HMACAlgorithm

_HMAC_SHA256 = HMACAlgorithm(hashlib.sha256)


def _as_bytes(value: bytes | str) -> bytes:
    # Keys and salts are hex strings in settings, as imgproxy's IMGPROXY_KEY/SALT.
    return bytes.fromhex(value) if isinstance(value, str) else value


class Signer:
    """One key/salt pair."""

    def __init__(self, key: bytes | str, salt: bytes | str, size: int = 32) -> None:
        if not 1 <= size <= 32:
            raise ValueError("signature size must be from 1 to 32 bytes")
        self._key = _as_bytes(key)
        self._salt = _as_bytes(salt)
        self._size = size

    def sign(self, path: str) -> str:
        digest = _HMAC_SHA256.get_signature(self._key, self._salt + path.encode())
        return base64_encode(digest[: self._size]).decode("ascii")

    def verify(self, signature: str, path: str) -> bool:
        # compare_digest: the time taken must not tell how much of a guess was right.
        return hmac.compare_digest(self.sign(path).encode(), signature.encode("utf-8", "replace"))


class KeyRing:
    """Several key/salt pairs, any of which may sign (key rotation)."""

    def __init__(self, signers: Iterable[Signer]) -> None:
        self._signers = tuple(signers)

    @classmethod
    def from_pairs(
        cls, keys: Iterable[bytes | str], salts: Iterable[bytes | str], size: int = 32
    ) -> KeyRing:
        return cls(Signer(k, s, size) for k, s in zip(keys, salts, strict=True))

    def __bool__(self) -> bool:
        return bool(self._signers)

    def sign(self, path: str) -> str:
        """Sign with the first pair: the current one during a rotation."""
        return self._signers[0].sign(path)

    def verify(self, signature: str, path: str) -> bool:
        # Check every pair, without stopping early, so timing says nothing of which matched.
        results = [signer.verify(signature, path) for signer in self._signers]
        return any(results)


def sign_path(path: str, key: bytes | str, salt: bytes | str, size: int = 32) -> str:
    """`/rs:fill:300:200/plain/...` -> `/SIGNATURE/rs:fill:300:200/plain/...`."""
    if not path.startswith("/"):
        path = "/" + path
    return "/" + Signer(key, salt, size).sign(path) + path
