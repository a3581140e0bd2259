"""The store of closed windows on a worker: one RocksDB per source partition, on local disk.

Why RocksDB: a year of 15-minute and hourly windows per series is millions of small values
read one at a time, by late readings, and by commune and window for the derived ratios;
RocksDB (through rocksdict, the binding faust's own tables use) reads one in about half a
microsecond, keeps them sorted (a window's slot is a prefix, the windows past a horizon a
range), and writes a commit as one atomic batch with its version. Why not faust's tables:
they are written from inside a stream's iteration, and their changelog is not tied to our
checkpoints (closed_windows.py says how commits follow them).

One database per partition, in a folder every worker of a deployment on this host shares
(``ZC_INDICATOR_STORE_DIR``): a partition that moves to another worker moves with its
store. RocksDB lets one process open a database: the previous owner closes it when the
partition is revoked (or dies, which releases it), and the next one waits for it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import struct
from collections.abc import Callable, Mapping
from pathlib import Path

from pydantic_core import to_json
from rocksdict import BlockBasedOptions, Cache, Options, Rdict, WriteBatch, WriteBufferManager, WriteOptions

from streams.indicators.closed_windows import StoreVersion
from streams.indicators.window_sums import Accumulator, SlotKey, WindowKey, commune_of

log = logging.getLogger(__name__)

_START_OFFSET = 1 << 62  # window starts before 1970 still sort as unsigned integers
_VERSION_KEY = b"\xff\xff\xff\xff-version"  # after every window key (sizes are far below 2**32 - 1)
_INDEXES_PREFIX = b"\xff\xff\xff\xfe-meter\0"  # then the meter id: after the windows, before the version
LOCK_WAIT_WARNING_SECONDS = 30.0
SHARED_CACHE_BYTES = 16 << 20
SHARED_WRITE_BUFFERS_BYTES = 16 << 20
"""One block cache and one budget of write buffers for every partition's database in the
process: RocksDB's defaults (a 64 MB write buffer and a cache per database) grew a worker by
470 MB in a backfill soak with 24 partitions; shared, a stress of 2 million writes and reads
over 24 databases stays at 76 MB of RSS against 336."""

_shared: tuple[Cache, WriteBufferManager] | None = None


def _options() -> Options:
    global _shared
    if _shared is None:
        _shared = (Cache(SHARED_CACHE_BYTES), WriteBufferManager(SHARED_WRITE_BUFFERS_BYTES, False))
    cache, buffers = _shared
    options = Options(raw_mode=True)
    options.set_write_buffer_size(4 << 20)
    options.set_max_write_buffer_number(2)
    options.set_write_buffer_manager(buffers)
    table = BlockBasedOptions()
    table.set_block_cache(cache)
    table.set_cache_index_and_filter_blocks(True)
    options.set_block_based_table_factory(table)
    return options


def _slot_prefix(size: int, start: int, commune: str, indicator: str) -> bytes:
    return (
        struct.pack(">IQ", size, start + _START_OFFSET)
        + commune.encode()
        + b"\0"
        + indicator.encode()
        + b"\0"
    )


def _key(key: WindowKey) -> bytes:
    indicator, dims, size, start = key
    return _slot_prefix(size, start, commune_of(dims) or "", indicator) + to_json(dims)


def _window_key(raw: bytes, slot: SlotKey) -> WindowKey:
    indicator, _, size, start = slot
    dims = raw[len(_slot_prefix(size, start, slot[1], indicator)) :]
    return (indicator, tuple((name, value) for name, value in json.loads(dims)), size, start)


class RocksClosedWindows:
    """A partition's closed windows in its RocksDB database (``closed_windows.ClosedWindows``)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._db = Rdict(str(path), _options())
        self._durable = WriteOptions()
        self._durable.sync = True  # a commit survives the host, as the checkpoint it follows does

    def version(self) -> StoreVersion | None:
        raw = self._db.get(_VERSION_KEY)
        if raw is None:
            return None
        epoch, generation = json.loads(raw)
        return StoreVersion(epoch, generation)

    def get(self, key: WindowKey) -> Accumulator | None:
        raw = self._db.get(_key(key))
        return None if raw is None else Accumulator(*json.loads(raw))

    def in_slot(self, slot: SlotKey) -> list[tuple[WindowKey, Accumulator]]:
        indicator, commune, size, start = slot
        prefix = _slot_prefix(size, start, commune, indicator)
        found: list[tuple[WindowKey, Accumulator]] = []
        it = self._db.iter()
        it.seek(prefix)
        while it.valid() and (raw := it.key()).startswith(prefix):
            found.append((_window_key(raw, slot), Accumulator(*json.loads(it.value()))))
            it.next()
        return found

    def meter_indexes(self) -> dict[str, bytes]:
        found: dict[str, bytes] = {}
        it = self._db.iter()
        it.seek(_INDEXES_PREFIX)
        while it.valid() and (raw := it.key()).startswith(_INDEXES_PREFIX):
            found[raw[len(_INDEXES_PREFIX) :].decode()] = it.value()
            it.next()
        return found

    def commit(
        self,
        changed: Mapping[WindowKey, Accumulator],
        version: StoreVersion,
        forget_before: Mapping[int, int],
        indexes: Mapping[str, bytes] = {},  # read only
    ) -> None:
        batch = WriteBatch(raw_mode=True)
        for key, acc in changed.items():
            batch.put(_key(key), to_json((acc.nanos, acc.count, acc.revision)))
        for meter, blob in indexes.items():
            batch.put(_INDEXES_PREFIX + meter.encode(), blob)
        for size, before in forget_before.items():  # after the puts, as the memory store does
            end = max(before + _START_OFFSET, 0)
            batch.delete_range(struct.pack(">IQ", size, 0), struct.pack(">IQ", size, end))
        batch.put(_VERSION_KEY, to_json((version.epoch, version.generation)))
        self._db.write(batch, self._durable)

    def wipe(self) -> None:
        batch = WriteBatch(raw_mode=True)
        batch.delete_range(b"", _VERSION_KEY + b"\xff")
        self._db.write(batch, self._durable)

    def close(self) -> None:
        self._db.close()


def store_path(folder: Path, topic: str, partition: int) -> Path:
    return folder / f"{topic}.{partition}"


class PartitionGone(RuntimeError):
    """The partition was revoked while its store was awaited."""


async def open_closed_windows(
    folder: Path,
    topic: str,
    partition: int,
    retry_seconds: float = 0.2,
    wanted: Callable[[], bool] = lambda: True,
) -> RocksClosedWindows:
    """Open the partition's store, waiting while another process holds it: the partition's
    previous owner, which releases it when the partition is revoked or when it dies. Gives up
    (``PartitionGone``) once ``wanted()`` is False: this worker lost the partition meanwhile."""
    path = store_path(folder, topic, partition)
    path.parent.mkdir(parents=True, exist_ok=True)
    waited = 0.0
    while True:
        try:
            return await asyncio.to_thread(RocksClosedWindows, path)
        except Exception as exc:  # rocksdict raises a bare Exception: "IO error: ... <path>/LOCK: ..."
            if f"{path}/LOCK" not in str(exc):
                raise
            if not wanted():
                raise PartitionGone(f"{path}: no longer wanted while waiting for it") from exc
            if waited == 0.0 or waited >= LOCK_WAIT_WARNING_SECONDS:
                log.warning("%s is held by another process (%s): waiting for it", path, exc)
                waited = 0.0
            await asyncio.sleep(retry_seconds)
            waited += retry_seconds
