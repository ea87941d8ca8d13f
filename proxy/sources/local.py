"""`local:///path` sources, confined to one root directory."""

from __future__ import annotations

import asyncio
import os
from urllib.parse import unquote, urlsplit

from proxy.errors import InvalidURL, SourceForbidden, SourceNotFound, SourceTooLarge
from proxy.sources import SourceImage


class LocalSource:
    def __init__(self, root: str, max_bytes: int) -> None:
        self._root = os.path.realpath(root)
        self._max_bytes = max_bytes

    def resolve(self, url: str) -> str:
        """local:///a/b.jpg -> <root>/a/b.jpg, refusing anything outside the root."""
        relative = unquote(urlsplit(url).path).lstrip("/")
        if "\x00" in relative:  # `%00` in the path: no file has that name
            raise InvalidURL("invalid source URL: control characters")
        # realpath follows symlinks too, so a link pointing out of the root is caught.
        path = os.path.realpath(os.path.join(self._root, relative))
        if os.path.commonpath([self._root, path]) != self._root:
            raise SourceForbidden("source path is outside the local root")
        return path

    async def fetch(self, url: str) -> SourceImage:
        path = self.resolve(url)
        return SourceImage(url, await asyncio.to_thread(self._read, path))

    def _read(self, path: str) -> bytes:
        try:
            with open(path, "rb") as handle:
                if self._max_bytes and os.fstat(handle.fileno()).st_size > self._max_bytes:
                    raise SourceTooLarge()
                return handle.read()
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            raise SourceNotFound() from None
        except PermissionError:
            raise SourceForbidden("source file is not readable") from None
