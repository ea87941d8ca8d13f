"""Object storage clients (S3, GCS, Azure Blob), one per bucket, through obstore.

obstore wraps the Rust `object_store` crate: one async, streaming client for
all three services, with their credential chains (environment keys, web
identity, instance and workload identity). Sources (`proxy.sources.buckets`)
and the result store (`proxy.result_store`) both get their clients here, so
the settings for a service are read in one place.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import unquote, urlsplit

from cachetools import LRUCache
from obstore.store import AzureStore, GCSStore, ObjectStore, S3Store

from proxy.errors import InvalidURL
from proxy.settings import Settings, SettingsError
from proxy.sources import SWITCHES

SCHEMES = tuple(SWITCHES)

# S3's, GCS's and Azure's rules for bucket/container names all fit in this one;
# it also keeps the name safe as a host label in virtual-host style requests.
_BUCKET = re.compile(r"[a-z0-9][a-z0-9._-]{1,221}[a-z0-9]", re.IGNORECASE)

# Clients kept per process; a store holds a connection pool and credentials.
_STORES_KEPT = 64


@dataclass(frozen=True, slots=True)
class ObjectLocation:
    scheme: str  # s3, gs or abs
    bucket: str  # the bucket, or Azure's container
    key: str
    version: str | None = None  # S3 versionId, GCS generation


def parse_object_url(url: str) -> ObjectLocation:
    """s3://bucket/key[?versionId=V | ?V] -> its parts (gs:// and abs:// alike).

    imgproxy takes the whole query as the version; `versionId=` (S3's own
    parameter name) is read too.
    """
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    bucket = parts.netloc
    key = unquote(parts.path).lstrip("/")
    if scheme not in SCHEMES or not _BUCKET.fullmatch(bucket) or not key:
        raise InvalidURL(f"invalid source URL: expected {scheme}://bucket/key")
    query = parts.query
    version = query.removeprefix("versionId=") if query else None
    return ObjectLocation(scheme, bucket, key, unquote(version) if version else None)


def parse_storage_location(url: str) -> tuple[str, str, str]:
    """RESULT_STORAGE's s3://bucket/prefix -> (scheme, bucket, prefix)."""
    parts = urlsplit(url)
    return parts.scheme, parts.netloc, parts.path.strip("/")


class ObjectStores:
    """Builds and keeps one obstore client per (service, bucket)."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._builders: dict[str, Callable[[str], ObjectStore]] = {
            "s3": self._s3,
            "gs": self._gcs,
            "abs": self._azure,
        }
        self._stores: LRUCache[tuple[str, str], ObjectStore] = LRUCache(maxsize=_STORES_KEPT)
        timeout = settings.download_timeout or 60.0
        # The caller's own deadline (asyncio) is the one that counts; the
        # client's is a little later so that a slow store ends as a timeout.
        self._client_options: dict[str, Any] = {
            "timeout": f"{timeout + 1:.3f}s",
            "connect_timeout": f"{settings.connect_timeout:.3f}s",
            "allow_http": True,  # endpoints are the operator's; http only where set so
        }
        self._retry: dict[str, Any] = {
            "max_retries": 2,
            "backoff": {
                "init_backoff": timedelta(milliseconds=50),
                "max_backoff": timedelta(seconds=1),
                "base": 2,
            },
            "retry_timeout": timedelta(seconds=timeout),
        }

    def store(self, scheme: str, bucket: str) -> ObjectStore:
        try:
            return self._stores[(scheme, bucket)]
        except KeyError:
            pass
        store = self._stores[(scheme, bucket)] = self._builders[scheme](bucket)
        return store

    def check(self) -> None:
        """Build each configured client once, so a bad configuration stops the server at start."""
        s = self._settings
        enabled = {"s3": s.use_s3, "gs": s.use_gcs, "abs": s.use_abs}
        if s.result_storage:
            enabled[parse_storage_location(s.result_storage)[0]] = True
        for scheme, on in enabled.items():
            if on:
                self._check(scheme)

    def _check(self, scheme: str) -> None:
        try:
            self._builders[scheme]("pixelpipe-config-check")
        except SettingsError:
            raise
        except Exception as error:  # obstore's configuration errors have no common base
            raise SettingsError(f"USE_{SWITCHES[scheme]}: {error}".splitlines()[0]) from None

    def _client(self, kind: Any, bucket: str, config: dict[str, Any]) -> ObjectStore:
        return kind(  # type: ignore[no-any-return]
            bucket, config=config, client_options=self._client_options, retry_config=self._retry
        )

    def _s3(self, bucket: str) -> ObjectStore:
        s = self._settings
        config: dict[str, Any] = {
            "virtual_hosted_style_request": not s.s3_endpoint_use_path_style,
        }
        if s.s3_endpoint:
            config["endpoint"] = s.s3_endpoint
        if s.s3_region:
            config["region"] = s.s3_region
        if s.s3_assume_role_arn:
            # object_store assumes a role only with a web identity token (IRSA);
            # STS AssumeRole from other credentials is not in the client.
            if not os.environ.get("AWS_WEB_IDENTITY_TOKEN_FILE"):
                raise SettingsError(
                    "PIXELPIPE_S3_ASSUME_ROLE_ARN: needs AWS_WEB_IDENTITY_TOKEN_FILE "
                    "(web identity); assuming a role from other credentials is not supported"
                )
            config["role_arn"] = s.s3_assume_role_arn
        return self._client(S3Store, bucket, config)

    def _gcs(self, bucket: str) -> ObjectStore:
        s = self._settings
        config: dict[str, Any] = {}
        if s.gcs_key:
            config["service_account_key"] = s.gcs_key
        if s.gcs_endpoint:
            config["base_url"] = s.gcs_endpoint
        return self._client(GCSStore, bucket, config)

    def _azure(self, bucket: str) -> ObjectStore:
        s = self._settings
        config: dict[str, Any] = {"account_name": s.abs_name}
        if s.abs_key:
            config["account_key"] = s.abs_key
        if s.abs_endpoint:
            config["endpoint"] = s.abs_endpoint
        return self._client(AzureStore, bucket, config)
