"""`s3://`, `gs://` and `abs://` sources: objects in buckets, streamed with limits.

Errors follow imgproxy's mapping of a storage service's answers: not found
404, access denied 403, timeouts 504, anything else from the service 502.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import obstore
from obstore.exceptions import (
    BaseError,
    InvalidPathError,
    NotFoundError,
    PermissionDeniedError,
    UnauthenticatedError,
)

from proxy.errors import (
    InvalidURL,
    SourceAccessDenied,
    SourceNotFound,
    SourceTimeout,
    SourceTooLarge,
    SourceUnavailable,
)
from proxy.sources import SourceImage
from proxy.storage import ObjectStores, parse_object_url

if TYPE_CHECKING:
    from obstore import GetResult

_CHUNK = 256 * 1024


class BucketSource:
    """One door for all three services: the URL's scheme picks the client."""

    def __init__(self, stores: ObjectStores, max_bytes: int, timeout: float) -> None:
        self._stores = stores
        self._max_bytes = max_bytes
        self._timeout = timeout

    async def fetch(self, url: str) -> SourceImage:
        where = parse_object_url(url)
        store = self._stores.store(where.scheme, where.bucket)
        options = {"version": where.version} if where.version else None
        try:
            async with asyncio.timeout(self._timeout or None):
                found = await obstore.get_async(store, where.key, options=options)
                data = await self._read(found)
        except TimeoutError:
            raise SourceTimeout() from None
        except (FileNotFoundError, NotFoundError):
            raise SourceNotFound() from None
        except (PermissionDeniedError, UnauthenticatedError):
            raise SourceAccessDenied() from None
        except InvalidPathError:
            raise InvalidURL("invalid source URL: not a valid object key") from None
        except (BaseError, OSError) as error:
            # The service's own words stay in our log, not in the answer.
            raise SourceUnavailable(
                f"source object could not be downloaded ({type(error).__name__})"
            ) from None
        attributes = found.attributes
        caching = (
            (("cache-control", attributes["Cache-Control"]),)
            if "Cache-Control" in attributes
            else ()
        )
        return SourceImage(url, data, attributes.get("Content-Type"), caching=caching)

    async def _read(self, found: GetResult) -> bytes:
        limit = self._max_bytes
        if limit and found.meta["size"] > limit:
            raise SourceTooLarge()
        chunks: list[bytes] = []
        received = 0
        async for chunk in found.stream(min_chunk_size=_CHUNK):
            received += len(chunk)
            if limit and received > limit:
                raise SourceTooLarge()  # the size said otherwise; stop reading at once
            chunks.append(bytes(chunk))
        return b"".join(chunks)
