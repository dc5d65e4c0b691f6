"""Parallel, resumable multipart upload of a file (``Client.upload_file``).

The file is cut into parts of ``part_size`` bytes (the last one shorter).
``concurrency`` threads each take the next part, hash it (SHA-384: the
native API names a part by its hash before its body, so the server can
verify it), and send it; while they do, one more thread hashes the whole
file front to back, so the hash the server answers when the upload is
finished is checked against the client's own. hashlib and the socket
release the GIL, so the threads overlap for real: hashing one part while
others are on the wire.

**Resuming.** An upload is named by its id (``on_upload`` hears it as soon
as the upload is created; the CLI prints it). Given that id again, the parts
the service already holds are checked against the file (same offset, size
and hash; a changed file is refused, not mixed in) and skipped, and only
the rest is sent. The default part size depends only on the file's size,
so a resume with default arguments cuts the file the same way.

**Failures.** A part is retried as any idempotent request (a PUT by hash;
:mod:`blobstore.client.http`); when one part fails for good, no new part
starts, the error is raised, and the upload stays on the service, to be
resumed or to expire.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Callable
from collections.abc import Iterator
from concurrent.futures import FIRST_EXCEPTION
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import wait
from dataclasses import dataclass
from typing import Any

from blobstore.client.http import Http
from blobstore.errors import BadParams
from blobstore.errors import HashMismatch

__all__ = [
    "DEFAULT_PART_SIZE",
    "Part",
    "Progress",
    "default_part_size",
    "hash_range",
    "read_range",
    "upload_file",
]

MiB = 1024 * 1024
#: Parts of this size unless the file needs bigger ones to fit in
#: ``MAX_PARTS`` (the service's default limit).
DEFAULT_PART_SIZE = 64 * MiB
MAX_PARTS = 10_000
#: How much of the file one read takes (hashing and sending).
CHUNK = MiB

#: ``progress(bytes_done, bytes_total)``, called from the upload's threads.
Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class Part:
    """Part *number* of the file: *size* bytes at *offset*."""

    number: int
    offset: int
    size: int


def default_part_size(size: int) -> int:
    """The part size for a file of *size* bytes: 64 MiB, or larger (in whole
    MiB) when that would make more than ``MAX_PARTS`` parts."""
    needed = -(-size // MAX_PARTS)
    return max(DEFAULT_PART_SIZE, -(-needed // MiB) * MiB)


def cut(size: int, part_size: int) -> list[Part]:
    """The parts of a *size*-byte file (none for an empty file)."""
    return [
        Part(i, offset, min(part_size, size - offset))
        for i, offset in enumerate(range(0, size, part_size))
    ]


def read_range(fd: int, offset: int, size: int) -> Iterator[bytes]:
    """*size* bytes of *fd* from *offset*, 1 MiB at a time (with pread, so
    threads share one descriptor).

    :raises BadParams: the file is shorter: it changed while being sent.
    """
    end = offset + size
    while offset < end:
        chunk = os.pread(fd, min(CHUNK, end - offset), offset)
        if not chunk:
            raise BadParams(f"the file ended at byte {offset} of {end}: it changed")
        offset += len(chunk)
        yield chunk


def hash_range(fd: int, offset: int, size: int) -> str:
    """The SHA-384 of *size* bytes of *fd* from *offset*."""
    digest = hashlib.sha384()
    for chunk in read_range(fd, offset, size):
        digest.update(chunk)
    return digest.hexdigest()


class _FileSlice:
    """A part's bytes as a request body: ``len()`` gives the Content-Length,
    iterating reads 1 MiB at a time (not http.client's 16 KiB blocks)."""

    def __init__(self, fd: int, part: Part, sent: Callable[[int], None]) -> None:
        self._fd = fd
        self._part = part
        self._sent = sent

    def __len__(self) -> int:
        return self._part.size

    def __iter__(self) -> Iterator[bytes]:
        for chunk in read_range(self._fd, self._part.offset, self._part.size):
            yield chunk
            self._sent(len(chunk))


class _Tally:
    """Bytes sent, per part (a retried part starts its count again)."""

    def __init__(self, total: int, progress: Progress | None) -> None:
        self._total = total
        self._progress = progress
        self._parts: dict[int, int] = {}
        self._lock = threading.Lock()

    def set(self, number: int, sent: int) -> None:
        with self._lock:
            self._parts[number] = sent
            done = sum(self._parts.values())
        if self._progress is not None:
            self._progress(done, self._total)


def upload_file(
    http: Http,
    path: str | os.PathLike[str],
    *,
    part_size: int | None = None,
    concurrency: int = 4,
    upload_id: str | None = None,
    expires: float | None = None,
    progress: Progress | None = None,
    on_upload: Callable[[str], None] | None = None,
) -> str:
    """Upload the file at *path* as a multipart upload; return its hash.

    :param upload_id: resume this upload instead of starting one.
    :param expires: seconds the upload may stay unfinished (the service's
        maximum by default).
    :raises HashMismatch: the service's hash of the whole is not the file's.
    :raises BadParams: the file does not match the upload being resumed.
    """
    fd = os.open(path, os.O_RDONLY)
    try:
        size = os.fstat(fd).st_size
        part_size = part_size or default_part_size(size)
        if part_size <= 0:
            raise BadParams(f"part size must be positive, not {part_size}")
        parts = cut(size, part_size)
        whole: dict[str, Any] = {}
        hasher = threading.Thread(
            target=lambda: whole.update(hash=_guarded(hash_range, fd, 0, size)),
            name="blobstore-whole-hash",
            daemon=True,
        )
        hasher.start()
        if upload_id is None:
            params = {} if expires is None else {"expires": expires}
            # Safe to resend: an upload made by a lost answer expires unused.
            upload_id = http.request(
                "POST", "/v1/uploads", params=params, safe=True
            ).json()["id"]
            held: list[Any] = []
        else:
            info = http.request("GET", Http.path("v1", "uploads", upload_id), safe=True)
            held = info.json()["parts"]
        if on_upload is not None:
            on_upload(upload_id)
        tally = _Tally(size, progress)
        hashes = _send_parts(http, fd, upload_id, parts, held, concurrency, tally)
        finished = http.request(
            "POST",
            Http.path("v1", "uploads", upload_id, "finish"),
            json={"parts": [{"hash": h} for h in hashes]},
            safe=True,  # finishing again gives the same answer
        ).json()
        hasher.join()
        local = whole["hash"]
        if isinstance(local, BaseException):
            raise local
        if finished["hash"] != local:
            raise HashMismatch(
                f"upload {upload_id}: the service's hash {finished['hash']} is not "
                f"the file's {local}"
            )
        return local
    finally:
        os.close(fd)


def _guarded(function: Callable[..., Any], *args: Any) -> Any:
    try:
        return function(*args)
    except BaseException as exc:  # handed to the caller's thread
        return exc


def _send_parts(
    http: Http,
    fd: int,
    upload_id: str,
    parts: list[Part],
    held: list[Any],
    concurrency: int,
    tally: _Tally,
) -> list[str]:
    """Send every part the upload does not hold yet; their hashes in order."""
    stop = threading.Event()

    def one(part: Part) -> str:
        if stop.is_set():
            raise _Cancelled()
        digest = hash_range(fd, part.offset, part.size)
        stored = held[part.number] if part.number < len(held) else None
        if stored is not None and stored.get("complete"):
            if (stored["offset"], stored["size"], stored["hash"]) != (
                part.offset,
                part.size,
                digest,
            ):
                raise BadParams(
                    f"upload {upload_id} holds a part {part.number} of "
                    f"{stored['size']} bytes at {stored['offset']} (hash "
                    f"{stored['hash']}), not this file's {part.size} bytes at "
                    f"{part.offset} (hash {digest}): a different file or part size"
                )
            tally.set(part.number, part.size)
            return digest

        def body() -> _FileSlice:
            sent = 0

            def count(n: int) -> None:
                nonlocal sent
                sent += n
                tally.set(part.number, sent)

            tally.set(part.number, 0)
            return _FileSlice(fd, part, count)

        http.request(
            "PUT",
            Http.path("v1", "uploads", upload_id, "parts", str(part.number)),
            params={"hash": digest, "offset": part.offset},
            body=body,
            safe=True,  # by hash: a repeat is "already stored"
        )
        return digest

    with ThreadPoolExecutor(
        max_workers=max(1, concurrency), thread_name_prefix="blobstore-part"
    ) as pool:
        futures = [pool.submit(one, part) for part in parts]
        done, _ = wait(futures, return_when=FIRST_EXCEPTION)
        failed = next((f for f in done if f.exception() is not None), None)
        if failed is not None:
            stop.set()
            for future in futures:
                future.cancel()
            error = failed.exception()
            if not isinstance(error, _Cancelled):
                raise error  # type: ignore[misc]
    return [future.result() for future in futures]


class _Cancelled(Exception):
    """A part not started because another failed."""
