"""Read and write the contract's tables: a directory of Parquet/CSV files or a SQL database.

A source is a path to a directory holding ``<table>.parquet`` or ``<table>.csv`` files, or
a SQLAlchemy URL (``sqlite:///file.db``, ``postgresql://user@host/db``) whose database has
tables of those names. Files and tables outside the contract are ignored.
"""

from __future__ import annotations

import io
import json
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from recsys.constants import TABLES
from recsys.data import contract as K
from recsys.errors import DataSourceError, DataValidationError, Issue
from recsys.io import atomic_directory

logger = logging.getLogger(__name__)

FILE_FORMATS = ("parquet", "csv")


@dataclass
class RawTables:
    """Tables as read, before validation, with where each came from."""

    frames: dict[str, pd.DataFrame]
    origins: dict[str, str]
    text_tables: frozenset[str] = field(default_factory=frozenset)


def is_sql_url(source: str | os.PathLike) -> bool:
    return "://" in str(source)


def describe_source(source: str | os.PathLike) -> str:
    """The source as it may be shown or logged: a URL loses its password."""
    if is_sql_url(source):
        from sqlalchemy.engine import make_url

        return make_url(str(source)).render_as_string(hide_password=True)
    return str(Path(source).resolve())


def read_tables(source: str | os.PathLike, tables: tuple[str, ...] = TABLES) -> RawTables:
    if is_sql_url(source):
        return _read_sql(str(source), tables)
    return _read_directory(Path(source), tables)


def parquet_table(path: Path, name: str) -> Path | None:
    """The Parquet file (or dataset directory) of table ``name`` in the directory ``path``; None
    when the table is not there as Parquet alone (read_tables then reads or reports it)."""
    if not path.is_dir():
        return None
    found = [path / f"{name}.{fmt}" for fmt in FILE_FORMATS if (path / f"{name}.{fmt}").exists()]
    return found[0] if len(found) == 1 and found[0].suffix == ".parquet" else None


def _read_directory(path: Path, tables: tuple[str, ...]) -> RawTables:
    if not path.exists():
        raise DataSourceError(f"data source {path} does not exist")
    if not path.is_dir():
        raise DataSourceError(f"data source {path} is not a directory of table files or a database URL")
    frames, origins, text = {}, {}, set()
    issues: list[Issue] = []
    for name in tables:
        found = [path / f"{name}.{fmt}" for fmt in FILE_FORMATS if (path / f"{name}.{fmt}").exists()]
        if len(found) > 1:
            issues.append(Issue(name, None, f"found both {found[0].name} and {found[1].name}; keep one"))
            continue
        if not found:
            continue
        file = found[0]
        try:
            if file.suffix == ".csv":
                frames[name] = _read_csv(file, name)
                text.add(name)
            else:
                frames[name] = _read_parquet(file)
        except DataValidationError as exc:
            issues.extend(exc.issues)
            continue
        except (OSError, ValueError) as exc:
            issues.append(Issue(name, None, f"cannot read {file.name}: {exc}"))
            continue
        origins[name] = str(file)
    if issues:
        raise DataValidationError(issues)
    return RawTables(frames, origins, frozenset(text))


def _read_parquet(file: Path) -> pd.DataFrame:
    """A Parquet file as pandas, each Arrow column freed as soon as it is converted (a large table
    is never held twice), and the memory Arrow's pool kept back returned to the system."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pq.read_table(file)
    frame = table.to_pandas(self_destruct=True, split_blocks=True)
    del table
    pa.default_memory_pool().release_unused()
    return frame


def _read_csv(file: Path, table: str) -> pd.DataFrame:
    data = file.read_bytes()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise DataValidationError(
            [
                Issue(
                    table,
                    None,
                    f"{file.name} is not UTF-8: byte 0x{data[exc.start]:02x} at offset {exc.start} (line {line}); "
                    "save the file as UTF-8",
                )
            ]
        ) from None
    del data
    if not text.strip():
        raise DataValidationError([Issue(table, None, f"{file.name} is empty (no header row)")])
    # Contract columns are read as text and typed by validation; other columns are inferred.
    contract = {c.name: str for c in K.SPECS[table].columns} if table in K.SPECS else str
    try:
        frame = pd.read_csv(io.StringIO(text), dtype=contract, keep_default_na=False, na_values=[""])
    except pd.errors.ParserError as exc:
        raise DataValidationError([Issue(table, None, f"{file.name} is not valid CSV: {exc}")]) from None
    frame.attrs["separator_hint"] = _separator_hint(text, file.name)
    return frame


def _separator_hint(text: str, name: str) -> str:
    """A note for a CSV file that looks separated by something other than commas, else ''."""
    header = text.split("\n", 1)[0]
    if "," in header:
        return ""
    for sep, label in ((";", "semicolon"), ("\t", "tab"), ("|", "pipe")):
        if header.count(sep) >= 1:
            return f"{name} looks {label}-separated (its header has no comma); save it with commas"
    return ""


def _read_sql(url: str, tables: tuple[str, ...]) -> RawTables:
    import sqlalchemy as sa

    try:
        engine = sa.create_engine(url)
    except (sa.exc.ArgumentError, ImportError) as exc:
        raise DataSourceError(f"cannot use database URL {describe_source(url)}: {exc}") from None
    _check_sqlite_file(engine)
    frames, origins = {}, {}
    try:
        with engine.connect() as conn:
            present = set(sa.inspect(conn).get_table_names())
            for name in tables:
                if name in present:
                    frames[name] = pd.read_sql_table(name, conn)
                    origins[name] = f"{describe_source(url)}#{name}"
    except (sa.exc.OperationalError, sa.exc.DatabaseError) as exc:
        raise DataSourceError(f"cannot read database {describe_source(url)}: {exc.orig}") from None
    finally:
        engine.dispose()
    return RawTables(frames, origins, frozenset())


def _check_sqlite_file(engine) -> None:
    """Reading never creates a database: a SQLite file must exist, and be SQLite."""
    if engine.dialect.name != "sqlite":
        return
    database = engine.url.database
    if not database or database == ":memory:" or database.startswith("file:"):
        return
    path = Path(database)
    if not path.is_file():
        engine.dispose()
        raise DataSourceError(f"SQLite database {path} does not exist")
    with path.open("rb") as fh:
        header = fh.read(16)
    if header and header != b"SQLite format 3\x00":
        engine.dispose()
        raise DataSourceError(f"{path} is not a SQLite database (its first bytes are not SQLite's header)")


def _list_to_text(value) -> str | None:
    if value is None or (not isinstance(value, (list, tuple, np.ndarray)) and pd.isna(value)):
        return None
    return json.dumps([v.item() if isinstance(v, np.generic) else v for v in value])


def _for_text_store(df: pd.DataFrame) -> pd.DataFrame:
    """List columns become JSON arrays so that CSV and SQL can hold them."""
    out = df.copy()
    for col in out.columns:
        spec_kind = next((c.kind for s in K.SPECS.values() for c in s.columns if c.name == col), None)
        if spec_kind in (K.ID_LIST, K.TEXT_LIST) or (
            out[col].dtype == object and out[col].map(lambda v: isinstance(v, (list, np.ndarray))).any()
        ):
            out[col] = out[col].map(_list_to_text)
    return out


def write_tables(
    frames: Mapping[str, pd.DataFrame],
    dest: str | os.PathLike,
    *,
    fmt: str = "parquet",
    overwrite: bool = False,
    extras: Mapping[str, Mapping[str, pd.DataFrame]] | None = None,
) -> None:
    """Write tables all or nothing: a directory is filled aside and renamed into place;
    a database gets its tables in one transaction.

    ``extras`` maps a sub-directory name to further Parquet tables written inside a
    directory destination (the synthetic generator's ground truth).
    """
    if is_sql_url(dest):
        if extras:
            raise DataSourceError("extra tables can only be written to a directory")
        _write_sql(frames, str(dest), overwrite=overwrite)
    else:
        _write_directory(frames, Path(dest), fmt=fmt, overwrite=overwrite, extras=extras or {})


def _write_directory(
    frames: Mapping[str, pd.DataFrame],
    dest: Path,
    *,
    fmt: str,
    overwrite: bool,
    extras: Mapping[str, Mapping[str, pd.DataFrame]],
) -> None:
    if fmt not in FILE_FORMATS:
        raise DataSourceError(f"unknown file format {fmt!r}; use one of {', '.join(FILE_FORMATS)}")
    if dest.exists() and not overwrite and any(dest.iterdir()):
        raise DataSourceError(f"{dest} exists and is not empty; pass overwrite to replace it")
    with atomic_directory(dest) as staging:
        for name, df in frames.items():
            target = staging / f"{name}.{fmt}"
            if fmt == "parquet":
                df.to_parquet(target, index=False)
            else:
                _for_text_store(df).to_csv(target, index=False, date_format="%Y-%m-%dT%H:%M:%S")
        for sub, tables in extras.items():
            (staging / sub).mkdir()
            for name, df in tables.items():
                df.to_parquet(staging / sub / f"{name}.parquet", index=False)


def transactional_engine(url: str):
    """An engine whose transactions also cover DDL, SQLite included.

    pysqlite commits before CREATE/DROP on its own; SQLAlchemy's documented recipe hands
    transaction control back to SQLAlchemy so that a failed write leaves no table behind.
    """
    import sqlalchemy as sa

    engine = sa.create_engine(url)
    if engine.dialect.name == "sqlite":

        @sa.event.listens_for(engine, "connect")
        def _no_implicit_transactions(dbapi_connection, _record):
            dbapi_connection.isolation_level = None

        @sa.event.listens_for(engine, "begin")
        def _begin(conn):
            conn.exec_driver_sql("BEGIN")

    return engine


def _write_sql(frames: Mapping[str, pd.DataFrame], url: str, *, overwrite: bool) -> None:
    import sqlalchemy as sa

    engine = transactional_engine(url)
    try:
        with engine.begin() as conn:
            present = set(sa.inspect(conn).get_table_names())
            clash = sorted(present & set(frames))
            if clash and not overwrite:
                raise DataSourceError(
                    f"tables {', '.join(clash)} exist in {describe_source(url)}; pass overwrite to replace them"
                )
            for name, df in frames.items():
                _for_text_store(df).to_sql(name, conn, if_exists="replace", index=False, chunksize=50_000)
    finally:
        engine.dispose()
