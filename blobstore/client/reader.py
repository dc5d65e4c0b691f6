"""A blob on the service as a seekable stream that fetches on demand.

:class:`RemoteReader` is what :meth:`Client.open <blobstore.client.Client.open>`
returns, with the interface of the Store's readers (``read``, ``readinto``,
``seek``, ``tell``, ``size``, ``hash``, a context manager). It holds at most
one ranged GET open: reads that follow each other are served from the same
response as it streams; a seek elsewhere closes it, and the next read opens
``Range: bytes=<position>-`` there. Nothing is fetched that is not read
(beyond the socket's buffer), so reading a header of a 10 GiB blob costs a
header. A response that ends early (a dropped connection) is reopened at the
position reached, within the client's retry budget.
"""

from __future__ import annotations

import io
from typing import Any

from blobstore.client.http import Http
from blobstore.errors import Unavailable
from blobstore.seeking import seek_position

__all__ = ["RemoteReader"]


class RemoteReader(io.RawIOBase):
    """*size* bytes of blob *hash*, read from the service through *http*."""

    def __init__(self, http: Http, hash: str, size: int) -> None:
        super().__init__()
        self._http = http
        self.hash = hash
        self.size = size
        self._pos = 0
        self._response: Any = None
        self._response_pos = -1  # where the open response's next byte is
        self._path = Http.path("v1", "blobs", hash)

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        self._pos = seek_position(self._pos, self.size, offset, whence)
        return self._pos

    def readinto(self, buffer: Any) -> int:  # type: ignore[override]
        view = memoryview(buffer).cast("B")
        want = min(len(view), self.size - self._pos)
        if want <= 0:
            return 0
        for _ in range(max(1, self._http.retry.attempts)):
            if self._response is None or self._response_pos != self._pos:
                self._open()
            try:
                n = self._response.raw.readinto(view[:want])
            except OSError:
                n = 0
            if n:
                self._pos += n
                self._response_pos = self._pos
                return n
            # The response ended before the blob did: start again from here.
            self._close_response()
        raise Unavailable(
            f"GET {self._path}: the service kept closing the connection at "
            f"byte {self._pos} of {self.size}"
        )

    def read(self, size: int = -1) -> bytes:
        if size is None or size < 0:
            size = max(0, self.size - self._pos)
        buf = bytearray(min(size, max(0, self.size - self._pos)))
        got = 0
        view = memoryview(buf)
        while got < len(buf):
            n = self.readinto(view[got:])
            if n == 0:
                break
            got += n
        del view
        del buf[got:]
        return bytes(buf)

    def _open(self) -> None:
        self._close_response()
        self._response = self._http.request(
            "GET",
            self._path,
            headers={"Range": f"bytes={self._pos}-{self.size - 1}"},
            stream=True,
            safe=True,
            ok=(206,),
        )
        self._response_pos = self._pos

    def _close_response(self) -> None:
        if self._response is not None:
            self._response.close()
            self._response = None
            self._response_pos = -1

    def close(self) -> None:
        self._close_response()
        super().close()
