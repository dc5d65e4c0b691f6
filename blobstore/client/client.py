"""``Client``: the native API of a blobstore service, as Python calls.

Where it overlaps the library it has the :class:`~blobstore.Store`'s names,
arguments, return types and exceptions (``put``, ``open``, ``stat``,
``exists``, ``put_ref``, ``get_ref``, ``list_refs``, ``delete_ref``,
``stats``), so code written against a Store runs against a service
unchanged; tests/client_contract.py runs the same suite over both. What
only a remote client needs is its own: :meth:`Client.upload_file` (parallel,
resumable multipart), :meth:`Client.get_file`. A client never deletes
blobs: GC does, on the service.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
from collections.abc import Iterable
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from blobstore.client.http import Http
from blobstore.client.http import Retry
from blobstore.client.reader import RemoteReader
from blobstore.client.upload import Progress
from blobstore.client.upload import upload_file
from blobstore.errors import BadParams
from blobstore.errors import BlobNotFound
from blobstore.errors import Corrupt
from blobstore.errors import HashMismatch
from blobstore.errors import SizeMismatch
from blobstore.hashing import check_hash
from blobstore.records import BlobRecord
from blobstore.records import BlobTotals
from blobstore.records import PutResult
from blobstore.records import RefRecord

__all__ = ["Client"]

#: What :meth:`Client.put` accepts: bytes, a binary file (or any object with
#: ``read``), or an iterable of byte chunks.
Content = bytes | bytearray | memoryview | io.IOBase | Any | Iterable[bytes]


class Client:
    """A blobstore service at *url* (``http://host:8080``).

    :param token: a bearer token (``[auth] tokens`` on the service).
    :param timeout: seconds to wait to connect, and for each read.
    :param retry: how long safe requests are retried (:class:`Retry`).
    """

    def __init__(
        self,
        url: str,
        token: str | None = None,
        timeout: float = 60.0,
        retry: Retry | None = None,
    ) -> None:
        self.http = Http(url, token, timeout, retry)

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- blobs -------------------------------------------------------------

    def put(
        self, stream: Content, hash: str | None = None, size: int | None = None
    ) -> PutResult:
        """Store *stream* (bytes, a binary file, or an iterable of chunks);
        the service verifies *hash* (and *size*) when given.

        Bytes and seekable files are hashed here first when *hash* is not
        given, and sent by hash, which is retried when the service is briefly
        unreachable. Other streams and iterables are sent once, as they are
        read, and the service computes the hash.

        :raises HashMismatch: the stream does not have *hash*.
        :raises SizeMismatch: the stream is not *size* bytes.
        """
        if hash is not None:
            check_hash(hash)
        if isinstance(stream, bytearray | memoryview):
            stream = bytes(stream)
        if isinstance(stream, bytes):
            if size is not None and size != len(stream):
                raise SizeMismatch(f"expected {size} bytes, got {len(stream)}")
            data = stream
            hash = hash or hashlib.sha384(data).hexdigest()
            return self._put_by_hash(hash, lambda: data)
        start = _seekable_start(stream)
        if start is not None:
            length = stream.seek(0, io.SEEK_END) - start
            stream.seek(start)
            if size is not None and size != length:
                raise SizeMismatch(f"expected {size} bytes, the stream has {length}")
            if hash is None:
                hash = _hash_stream(stream)
            return self._put_by_hash(hash, lambda: _Rewound(stream, start, length))
        chunks = _chunks(stream, size)
        if hash is not None:
            response = self.http.request(
                "PUT", Http.path("v1", "blobs", hash), body=chunks
            )
        else:
            response = self.http.request("POST", "/v1/blobs", body=chunks)
        return _put_result(response)

    def _put_by_hash(self, hash: str, body: Any) -> PutResult:
        response = self.http.request(
            "PUT", Http.path("v1", "blobs", hash), body=body, safe=True
        )
        return _put_result(response)

    def stat(self, hash: str) -> BlobRecord:
        """The blob's hash, size and put time. :raises BlobNotFound:"""
        check_hash(hash)
        response = self.http.request(
            "HEAD", Http.path("v1", "blobs", hash), safe=True, not_found=BlobNotFound
        )
        return BlobRecord(
            hash,
            int(response.headers["Content-Length"]),
            _http_date(response.headers.get("Last-Modified")),
        )

    def exists(self, hash: str) -> bool:
        try:
            self.stat(hash)
        except BlobNotFound:
            return False
        return True

    def open(self, hash: str) -> RemoteReader:
        """A seekable reader of the blob that fetches what is read, when it
        is read (:class:`~blobstore.client.reader.RemoteReader`).
        :raises BlobNotFound:"""
        return RemoteReader(self.http, hash, self.stat(hash).size)

    def copy_to(self, hash: str, out: Any) -> int:
        """Write the blob to the binary stream *out* as it arrives, checking
        its hash; return its size.

        :raises HashMismatch: what arrived is not the blob (*out* has it).
        """
        digest = hashlib.sha384()
        size = 0
        with self.open(hash) as reader:
            while chunk := reader.read(1024 * 1024):
                digest.update(chunk)
                out.write(chunk)
                size += len(chunk)
        if digest.hexdigest() != hash:
            raise HashMismatch(
                f"blob {hash}: the bytes received hash to {digest.hexdigest()}"
            )
        return size

    def get_file(self, hash: str, path: str | os.PathLike[str]) -> int:
        """Write the blob to *path* (through a temporary file beside it,
        renamed once the bytes are verified); return its size.
        :raises HashMismatch: what arrived is not the blob (then *path* is
        left as it was)."""
        target = os.fspath(path)
        partial = f"{target}.partial"
        try:
            with open(partial, "wb") as out:
                size = self.copy_to(hash, out)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(partial)
            raise
        os.replace(partial, target)
        return size

    def upload_file(
        self,
        path: str | os.PathLike[str],
        *,
        part_size: int | None = None,
        concurrency: int = 4,
        upload_id: str | None = None,
        expires: float | None = None,
        progress: Progress | None = None,
        on_upload: Any = None,
    ) -> str:
        """Upload a (big) file in parallel parts, resumably; its hash.
        See :mod:`blobstore.client.upload`."""
        return upload_file(
            self.http,
            path,
            part_size=part_size,
            concurrency=concurrency,
            upload_id=upload_id,
            expires=expires,
            progress=progress,
            on_upload=on_upload,
        )

    def stats(self) -> BlobTotals:
        """How many blobs the service holds (needs an admin token)."""
        doc = self.http.request("GET", "/v1/stats", safe=True).json()
        return BlobTotals(doc["blobs"], doc["bytes"], doc["composites"])

    # -- named refs ----------------------------------------------------------

    def put_ref(self, name: str, hash: str) -> bool:
        """Pin blob *hash* under *name*. True if the ref is new.
        :raises BlobNotFound: the blob is not stored."""
        response = self.http.request(
            "PUT", self._ref_path(name), json={"hash": hash}, safe=True
        )
        return response.status_code == 201

    def get_ref(self, name: str) -> RefRecord:
        """:raises RefNotFound:"""
        return _ref(self.http.request("GET", self._ref_path(name), safe=True).json())

    def delete_ref(self, name: str) -> None:
        """:raises RefNotFound:"""
        self.http.request(
            "DELETE", self._ref_path(name), safe=True, ok_when_resent=(404,)
        )

    def list_refs(
        self, prefix: str = "", after: str = "", limit: int = 1000
    ) -> list[RefRecord]:
        """One page of refs in name order (pass the last name as *after*)."""
        if not 1 <= limit <= 10000:
            raise BadParams(f"limit {limit} out of range 1..10000")
        doc = self.http.request(
            "GET",
            "/v1/refs",
            params={"prefix": prefix, "after": after, "limit": limit},
            safe=True,
        ).json()
        return [_ref(r) for r in doc["refs"]]

    def iter_refs(self, prefix: str = "") -> Iterable[RefRecord]:
        """Every ref under *prefix*, page after page."""
        after = ""
        while page := self.list_refs(prefix, after, 1000):
            yield from page
            if len(page) < 1000:
                return
            after = page[-1].name

    @staticmethod
    def _ref_path(name: str) -> str:
        if not isinstance(name, str) or not name:
            raise BadParams("empty ref name")
        return Http.path("v1", "refs", name)


# -- helpers ---------------------------------------------------------------------


def _put_result(response: Any) -> PutResult:
    doc = response.json()
    return PutResult(doc["hash"], doc["size"], response.status_code == 201)


def _ref(doc: dict[str, Any]) -> RefRecord:
    return RefRecord(doc["name"], doc["hash"], _iso(doc["mtime"]))


def _iso(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _http_date(text: str | None) -> datetime:
    from email.utils import parsedate_to_datetime

    if not text:
        raise Corrupt("the service's answer has no Last-Modified")
    return parsedate_to_datetime(text)


def _seekable_start(content: Any) -> int | None:
    """Where a seekable binary stream is now, or None for anything else."""
    if not hasattr(content, "read") or not hasattr(content, "seek"):
        return None
    try:
        if not content.seekable():
            return None
        return content.tell()
    except (AttributeError, OSError, ValueError):
        return None


def _hash_stream(stream: Any) -> str:
    start = stream.tell()
    digest = hashlib.sha384()
    while chunk := stream.read(1024 * 1024):
        digest.update(chunk)
    stream.seek(start)
    return digest.hexdigest()


class _Rewound:
    """*size* bytes of a seekable stream from *start*, as a request body
    (made again for each attempt): 1 MiB chunks, and ``len()``."""

    def __init__(self, stream: Any, start: int, size: int) -> None:
        stream.seek(start)
        self._stream = stream
        self._size = size

    def __len__(self) -> int:
        return self._size

    def __iter__(self) -> Iterator[bytes]:
        left = self._size
        while left > 0:
            chunk = self._stream.read(min(1024 * 1024, left))
            if not chunk:
                return  # short: the service says SizeMismatch
            left -= len(chunk)
            yield chunk


class _Sized:
    """Chunks of a known total: ``len()`` makes requests send a
    Content-Length instead of chunked framing. Content that turns out longer
    or shorter stops the request (the service then stores nothing): sent
    on, the extra bytes would be read as the next request, or the service
    would wait for bytes that never come."""

    def __init__(self, chunks: Iterable[bytes], size: int) -> None:
        self._chunks = chunks
        self._size = size

    def __len__(self) -> int:
        return self._size

    def __iter__(self) -> Iterator[bytes]:
        left = self._size
        for chunk in self._chunks:
            if len(chunk) > left:
                raise SizeMismatch(f"the content is longer than {self._size} bytes")
            left -= len(chunk)
            yield chunk
        if left:
            raise SizeMismatch(
                f"the content is {self._size - left} bytes, not {self._size}"
            )


def _chunks(content: Any, size: int | None) -> Iterable[bytes]:
    """A stream or an iterable as request body chunks (sent chunked when
    *size* is unknown)."""
    if hasattr(content, "read"):

        def read() -> Iterable[bytes]:
            while chunk := content.read(1024 * 1024):
                yield chunk

        chunks: Iterable[bytes] = read()
    else:
        chunks = iter(content)
    return chunks if size is None else _Sized(chunks, size)
