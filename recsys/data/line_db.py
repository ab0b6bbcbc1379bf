"""The DuckDB connection a set of basket lines and their views share (recsys.data.lines)."""

from __future__ import annotations

import contextlib
import shutil
import threading

import duckdb

from recsys.data.duck import DuckSettings, connect

DATABASE = "lines.duckdb"


class LineDatabase:
    """The connection the lines and their views share, used one query at a time; on disk it
    may be closed between uses and reopens at the next one."""

    def __init__(self, con: duckdb.DuckDBPyConnection, directory: str | None, settings: DuckSettings | None):
        self.con, self.directory, self.settings = con, directory, settings
        self.lock = threading.Lock()

    @contextlib.contextmanager
    def use(self):
        with self.lock:
            if self.con is None:
                self.con = connect(self.settings, self.directory, database=DATABASE)
            yield self.con

    def release(self) -> None:
        with self.lock:
            if self.directory is not None and self.con is not None:
                self.con.close()
                self.con = None

    def drop(self, table: str) -> None:
        try:
            with self.lock, contextlib.suppress(duckdb.Error):  # at exit the connection may be gone already
                if self.con is not None:
                    if self.directory is None:
                        self.con.execute(f"DROP TABLE IF EXISTS {table}")
                        self.con.execute(f"DROP TABLE IF EXISTS {table}_baskets")
                    self.con.close()
                self.con = None
        finally:
            if self.directory is not None:
                shutil.rmtree(self.directory, ignore_errors=True)
