"""Healing: find missing or corrupt shards and rebuild them.

For one blob, :func:`heal_blob`

1. gathers its shards (see :func:`.reader.gather`); drives with no shard, an
   unreadable one or another write's shard are *targets*;
2. verifies every block of every shard against its checksum (a deep scan:
   bitrot shows only when the bytes are read); a shard with any bad block
   becomes a target too;
3. if there are targets, rebuilds them block by block: decodes each block
   from k fragments that verify (any shard's, even a damaged shard's good
   blocks) and re-encodes it, writing the targets' fragments to locked temp
   files on their drives, then commits them like a write (fsync, rename);
4. checks that the blob was not removed meanwhile, and takes its rebuilt
   shards back if it was (so healing never resurrects a deleted blob).

Nothing is locked: readers keep their open files, and healing only adds or
replaces whole shard files by rename, so it runs alongside reads and writes.
A target on an offline drive is left for a later heal (the blob is reported
*degraded*); a blob with a block that has fewer than k good fragments is
*unrecoverable* and left as it is for an operator.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterator
from collections.abc import Sequence

from blobstore.backends.erasure.codec import Codec
from blobstore.backends.erasure.codec import get_codec
from blobstore.backends.erasure.layout import Drive
from blobstore.backends.erasure.layout import Layout
from blobstore.backends.erasure.meta import checksum
from blobstore.backends.erasure.reader import ShardSet
from blobstore.backends.erasure.reader import gather
from blobstore.backends.erasure.trash import move_to_trash
from blobstore.backends.erasure.writer import Parallel
from blobstore.backends.erasure.writer import ShardSink
from blobstore.backends.healing import HealProgress
from blobstore.backends.healing import HealReport
from blobstore.backends.healing import Outcome
from blobstore.errors import BlobNotFound
from blobstore.errors import BlobStoreError
from blobstore.errors import ReadQuorumError

__all__ = ["HealReport", "Outcome", "heal_blob", "iter_names"]

log = logging.getLogger(__name__)

#: A meta file without its shard is a write between its two renames, or the
#: leftover of a crash there; only the latter is this old.
DANGLING_META_AGE = 600.0


#: Progress callback: the report so far and the blob just scanned.
Progress = HealProgress


def iter_names(drives: Sequence[Drive]) -> Iterator[list[str]]:
    """Every object name on any online drive, one sorted batch per fan
    directory (so memory stays bounded by the largest fan)."""
    fans: set[str] = set()
    for drive in drives:
        try:
            fans.update(e.name for e in os.scandir(drive.objects) if e.is_dir())
        except OSError:
            continue  # offline drive
    for fan in sorted(fans):
        names: set[str] = set()
        for drive in drives:
            try:
                entries = os.scandir(drive.objects / fan)
            except OSError:
                continue
            with entries:
                for entry in entries:
                    names.add(entry.name.removesuffix(".meta"))
        yield sorted(n for n in names if "." not in n)


def heal_blob(
    name: str,
    *,
    drives: Sequence[Drive],
    layout: Layout,
    fsync: bool,
    parallel: Parallel,
) -> tuple[Outcome, int]:
    """Heal one blob; returns the outcome and the number of shards rebuilt.

    :raises BlobStoreError: an unexpected failure (reported, not fatal).
    """
    try:
        shards = gather(name, drives, layout)
    except BlobNotFound:
        _drop_dangling_metas(name, drives)
        return Outcome.GONE, 0
    except ReadQuorumError as exc:
        log.error("cannot heal %s: %s", name, exc)
        return Outcome.UNRECOVERABLE, 0
    try:
        targets = set(shards.missing)
        targets |= _verify(shards)
        if not targets:
            return Outcome.HEALTHY, 0
        return _rebuild(shards, targets, drives, layout, fsync, parallel)
    finally:
        shards.close()


def _verify(shards: ShardSet) -> set[int]:
    """The shard indexes with at least one bad block."""
    bad: set[int] = set()
    for j, shard in shards.shards.items():
        for block in range(shard.meta.blocks):
            data, problem = shard.fragment(block)
            if data is None:
                log.warning(
                    "blob %s: shard %d on %s: %s",
                    shards.name,
                    j,
                    shard.drive.path,
                    problem,
                )
                bad.add(j)
                break
    return bad


def _rebuild(
    shards: ShardSet,
    targets: set[int],
    drives: Sequence[Drive],
    layout: Layout,
    fsync: bool,
    parallel: Parallel,
) -> tuple[Outcome, int]:
    name, meta = shards.name, shards.meta
    placement = layout.placement(name)
    codec = get_codec(meta.codec, meta.k, meta.m)
    sinks = [ShardSink(drives[placement[j]], j) for j in sorted(targets)]
    try:
        for sink in sinks:
            sink.open(name)
        live = [s for s in sinks if s.live]
        if not live:
            return Outcome.DEGRADED, 0
        if not _rebuild_blocks(shards, targets, live, codec):
            return Outcome.UNRECOVERABLE, 0
        live = [s for s in live if s.live]
        results = parallel(
            lambda s: s.commit(name, meta.with_index(s.shard_index), fsync), live
        )
        for sink, result in zip(live, results, strict=True):
            if isinstance(result, OSError):
                sink.fail(result)
        committed = [s for s in sinks if s.committed]
        if committed and not _still_there(name, meta.write_id, drives, layout):
            for sink in committed:
                sink.undo()
            return Outcome.GONE, 0
        for sink in sinks:
            if sink.error is not None:
                log.warning(
                    "cannot rebuild shard %d of %s on %s: %s",
                    sink.shard_index,
                    name,
                    sink.drive.path,
                    sink.error,
                )
        if len(committed) == len(sinks):
            log.info("healed %s: rebuilt %d shards", name, len(committed))
            return Outcome.HEALED, len(committed)
        return Outcome.DEGRADED, len(committed)
    finally:
        for sink in sinks:
            sink.discard()


def _rebuild_blocks(
    shards: ShardSet, targets: set[int], sinks: Sequence[ShardSink], codec: Codec
) -> bool:
    """Write every block's fragments for *sinks*; False if a block cannot be
    decoded from the intact fragments."""
    meta = shards.meta
    # Intact shards first; a damaged shard's good blocks still count.
    sources = sorted(shards.shards, key=lambda j: (j in targets, j))
    for block in range(meta.blocks):
        fragments: dict[int, bytes] = {}
        for j in sources:
            data, _ = shards.shards[j].fragment(block)
            if data is not None:
                fragments[j] = data
                if len(fragments) == meta.k:
                    break
        if len(fragments) < meta.k:
            log.error(
                "cannot heal %s: block %d has %d intact fragments, %d needed",
                shards.name,
                block,
                len(fragments),
                meta.k,
            )
            return False
        decoded = codec.decode(fragments, meta.block_len(block))
        rebuilt = codec.encode(memoryview(decoded))
        for sink in sinks:
            if sink.live:
                frag = rebuilt[sink.shard_index]
                sink.write(block, frag, checksum(frag))
    return True


def _still_there(name: str, write_id: str, drives: Sequence[Drive], layout: Layout):
    """Whether the blob we healed still exists as the same write.

    A remove that ran while we rebuilt moved the other shards to the trash;
    our fresh shards would then be a partial blob nobody can read.
    """
    try:
        again = gather(name, drives, layout)
    except BlobStoreError:
        return False
    try:
        return again.meta.write_id == write_id
    finally:
        again.close()


def _drop_dangling_metas(name: str, drives: Sequence[Drive]) -> None:
    """Trash meta files whose shard never arrived (a crash between renames)."""
    now = time.time()
    for drive in drives:
        path = drive.meta_path(name)
        try:
            if os.path.exists(drive.shard_path(name)):
                continue
            if now - os.stat(path).st_mtime > DANGLING_META_AGE:
                move_to_trash(drive, path)
        except OSError:
            continue
