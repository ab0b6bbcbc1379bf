"""Memory a stage freed, given back to the system before the next large allocation."""

from __future__ import annotations

import contextlib
import ctypes
import gc

import pyarrow as pa


def release_free_memory() -> None:
    """Give freed memory back to the system: glibc, and Arrow's allocator behind the Parquet
    reads and DuckDB's results, keep freed pages of a large process resident otherwise (0.46 GiB
    after loading ten times The Complete Journey), so the next step's peak would sit on the
    last one's. Call it once the large objects are unreferenced."""
    gc.collect()
    pa.default_memory_pool().release_unused()
    with contextlib.suppress(OSError, AttributeError):  # not glibc (macOS, musl): nothing to do
        ctypes.CDLL("libc.so.6").malloc_trim(0)
