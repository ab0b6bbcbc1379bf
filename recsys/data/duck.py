"""DuckDB connections with the service's limits: what the basket lines and the purchase history
are reduced in.

Why DuckDB: it scans a pandas frame in place (no copy of the lines), aggregates out of core
within a memory limit and spills to disk beyond it, and reads Parquet the same way, so the same
queries serve lines that do not fit in memory.

Environment: ``RECSYS_DUCKDB_MEMORY`` (default ``512MB``: DuckDB's buffer pool, the bound on the
aggregations' working memory; at ten times The Complete Journey 512MB against 1GB lowered the
offer ranker's peak by 0.3 GiB for 3% more time, 256MB by 0.4 GiB for 6%),
``RECSYS_DUCKDB_THREADS`` (default 2, this machine's cores), ``RECSYS_DUCKDB_TEMP`` (default
the system's temporary directory: database files and spills).

Each database or spill directory names the process that made it (``owner``: host and process
id). A process killed where nothing of it can clean up (SIGKILL, the kernel out of memory)
leaves its directory behind; the next one made under the same temporary directory removes the
directories of this host's processes that no longer run.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pandas as pd

from recsys.errors import ConfigurationError

ON_DISK_FROM = 500_000  # rows: from this many a reduction gets its own limited connection and disk


@dataclass(frozen=True)
class DuckSettings:
    """DuckDB's limits, from the environment with defaults."""

    memory: str = "512MB"
    threads: int = 2
    temp: str | None = None

    @classmethod
    def from_env(cls) -> DuckSettings:
        memory = os.environ.get("RECSYS_DUCKDB_MEMORY", cls.memory).strip()
        if not re.fullmatch(r"\d+(\.\d+)?\s*([KMGT]i?)?B", memory, flags=re.IGNORECASE):
            raise ConfigurationError(f"RECSYS_DUCKDB_MEMORY={memory!r}: expected a size such as 1GB or 512MiB")
        threads = os.environ.get("RECSYS_DUCKDB_THREADS", str(cls.threads)).strip()
        if not threads.isdigit() or int(threads) < 1:
            raise ConfigurationError(f"RECSYS_DUCKDB_THREADS={threads!r}: expected a whole number, 1 or more")
        return cls(memory, int(threads), os.environ.get("RECSYS_DUCKDB_TEMP") or None)


_small = threading.local()  # per thread: one in-memory connection for small reductions


def memory_connection() -> duckdb.DuckDBPyConnection:
    """This thread's in-memory connection for a few rows (connecting costs ~10 ms, a request's
    reduction ~2)."""
    con = getattr(_small, "con", None)
    if con is None:
        con = _small.con = duckdb.connect(config={"threads": 1})
    return con


def connect(settings: DuckSettings, directory: str, database: str | None = None) -> duckdb.DuckDBPyConnection:
    """A connection within ``settings``' limits spilling under ``directory``; to a database file
    there when ``database`` is named, else in memory."""
    return duckdb.connect(
        str(Path(directory) / database) if database else ":memory:",
        config={
            "memory_limit": settings.memory,
            "threads": settings.threads,
            "temp_directory": str(Path(directory) / "spill"),
            "preserve_insertion_order": False,
        },
    )


def out_of_memory(error: BaseException, settings: DuckSettings, what: str) -> BaseException:
    """``error``, or where DuckDB ran out of its memory limit a ConfigurationError naming it."""
    if isinstance(error, duckdb.OutOfMemoryException):
        return ConfigurationError(
            f"RECSYS_DUCKDB_MEMORY={settings.memory!r} is too little for {what} (DuckDB: {str(error).splitlines()[0]})"
        )
    return error


OWNER = "owner"  # in each scratch directory: "<host> <pid>" of the process that made it
SCRATCH = ("recsys-lines-", "recsys-duck-")  # the prefixes of the directories made here


def scratch_directory(prefix: str, settings: DuckSettings) -> str:
    """A new directory under the settings' temporary directory, owned by this process; the
    directories left by this host's processes that no longer run are removed first."""
    base = Path(settings.temp or tempfile.gettempdir())
    for stale in (d for p in SCRATCH for d in base.glob(f"{p}*")):
        if _orphaned(stale):
            shutil.rmtree(stale, ignore_errors=True)
    directory = tempfile.mkdtemp(prefix=prefix, dir=settings.temp)
    (Path(directory) / OWNER).write_text(f"{socket.gethostname()} {os.getpid()}\n")
    return directory


def _orphaned(directory: Path) -> bool:
    """Whether ``directory`` was made by a process of this host that no longer runs (one of
    another host, or without an owner, is never taken for orphaned)."""
    try:
        host, pid = (directory / OWNER).read_text().split()
        pid = int(pid)
    except (OSError, ValueError):
        return False
    if host != socket.gethostname():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # another user's process: it runs
        return False
    return False


def register(con: duckdb.DuckDBPyConnection, name: str, frame) -> None:
    """``frame`` under ``name``: a pandas frame read in place, or a LineView (lines on disk:
    recsys.data.line_file) as a view of its query."""
    if hasattr(frame, "sql"):
        con.execute(f"CREATE OR REPLACE TEMP VIEW {name} AS {frame.sql}")
    else:
        con.register(name, frame)


def unregister(con: duckdb.DuckDBPyConnection, name: str, frame) -> None:
    if hasattr(frame, "sql"):
        con.execute(f"DROP VIEW IF EXISTS {name}")
    else:
        con.unregister(name)


def reduce(sql: str, frames: dict, what: str) -> pd.DataFrame:
    """The result of ``sql`` over ``frames`` (registered under their names, read in place: frames
    or LineViews, see :func:`register`): on
    this thread's small connection for small frames, else on a connection of its own within
    the settings' limits, its spill directory removed after."""
    rows = max((len(f) for f in frames.values()), default=0)
    if rows < ON_DISK_FROM:
        con = memory_connection().cursor()
        try:
            for name, frame in frames.items():
                register(con, name, frame)
            return con.execute(sql).df()
        finally:
            for name, frame in frames.items():  # a view outlives its cursor on the thread's connection
                if hasattr(frame, "sql"):
                    unregister(con, name, frame)
            con.close()
    settings = DuckSettings.from_env()
    directory = scratch_directory("recsys-duck-", settings)
    try:
        with connect(settings, directory) as con:
            for name, frame in frames.items():
                register(con, name, frame)
            return con.execute(sql).df()
    except BaseException as e:
        raised = out_of_memory(e, settings, what)
        if raised is e:
            raise
        raise raised from e
    finally:
        shutil.rmtree(directory, ignore_errors=True)
