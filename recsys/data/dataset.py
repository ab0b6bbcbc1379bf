"""A validated dataset: the contract's tables with canonical dtypes."""

from __future__ import annotations

import hashlib
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from recsys import constants as C
from recsys.data.batches import parquet_batches
from recsys.data.line_file import LineFile, LineFileWriter, row_hashes, time_span
from recsys.data.sources import describe_source, is_sql_url, parquet_table, read_tables, write_tables
from recsys.data.validate import validate_tables
from recsys.errors import Issue

logger = logging.getLogger(__name__)


@dataclass
class Dataset:
    """Validated tables. Optional tables are None when the source has none."""

    transactions: pd.DataFrame | LineFile  # a LineFile: validated in batches and kept on disk
    products: pd.DataFrame | None = None
    customers: pd.DataFrame | None = None
    offers: pd.DataFrame | None = None
    offer_events: pd.DataFrame | None = None
    source: str = ""
    warnings: list[Issue] = field(default_factory=list)

    def tables(self) -> dict[str, pd.DataFrame]:
        return {name: df for name in C.TABLES if (df := getattr(self, name)) is not None}

    def customer_ids(self) -> pd.Index:
        """Every customer the dataset knows: from customers and from transactions."""
        tx = self.transactions
        ids = pd.Index(tx.customers if isinstance(tx, LineFile) else tx[C.CUSTOMER_ID].unique())
        if self.customers is not None:
            ids = pd.Index(self.customers[C.CUSTOMER_ID].unique()).union(ids)
        return ids

    def summary(self) -> dict:
        tx = self.transactions
        on_disk = isinstance(tx, LineFile)
        first, last = time_span(tx)
        out = {
            "source": self.source,
            "rows": {name: len(df) for name, df in self.tables().items()},
            "customers": len(self.customer_ids()),
            "customers_with_transactions": len(tx.customers) if on_disk else int(tx[C.CUSTOMER_ID].nunique()),
            "products": int(
                len(self.products)
                if self.products is not None
                else (tx.products if on_disk else tx[C.PRODUCT_ID].nunique())
            ),
            "offers": len(self.offers) if self.offers is not None else 0,
            "events": (
                {str(k): int(v) for k, v in self.offer_events[C.EVENT].value_counts().sort_index().items()}
                if self.offer_events is not None
                else {}
            ),
            "first_transaction": first.isoformat(),
            "last_transaction": last.isoformat(),
            "warnings": [str(w) for w in self.warnings],
        }
        if C.BASKET_ID in tx:
            out["baskets"] = tx.baskets() if on_disk else int(tx[C.BASKET_ID].nunique())
        return out

    def fingerprint(self) -> str:
        """A digest of the tables' contents: the same data gives the same digest."""
        digest = hashlib.sha256()
        for name, df in self.tables().items():
            if isinstance(df, LineFile):  # digested batch by batch as it was written: the same bytes
                assert name == C.TABLES[0], "the transactions are digested first"
                digest = df.digest.copy()
                continue
            digest.update(name.encode())
            digest.update(",".join(map(str, df.columns)).encode())
            digest.update(row_hashes(df))
        return digest.hexdigest()[:16]

    def save(
        self, dest: str | os.PathLike, *, fmt: str = "parquet", overwrite: bool = False, extras: dict | None = None
    ) -> None:
        write_tables(self.tables(), dest, fmt=fmt, overwrite=overwrite, extras=extras)


def load_dataset(
    source: str | os.PathLike, *, strict: bool = False, now: pd.Timestamp | None = None, stage: str | None = None
) -> Dataset:
    """Read and validate a dataset from a directory of Parquet/CSV files or a SQLAlchemy URL.

    Raises DataValidationError naming every problem (table, column, rows, first values) and
    DataSourceError when the source cannot be read at all. With ``strict`` warnings
    (unknown products, customers) are errors too.

    ``stage``: a directory where the transactions of a Parquet source are validated in batches
    and kept (``transactions`` is then a LineFile: recsys.data.line_file) instead of held in
    memory. Other sources (CSV files, databases) load in memory.
    """
    parquet = None if stage is None or is_sql_url(source) else parquet_table(Path(source), C.TRANSACTIONS)
    if parquet is not None:
        return _load_staged(source, parquet, stage, strict=strict, now=now)
    raw = read_tables(source)
    frames, warnings = validate_tables(raw.frames, text_tables=raw.text_tables, strict=strict, now=now)
    logger.info("loaded %s: %s", describe_source(source), ", ".join(f"{n}={len(df)}" for n, df in frames.items()))
    return Dataset(**frames, source=describe_source(source), warnings=warnings)


def _load_staged(source, parquet: Path, stage: str, *, strict: bool, now) -> Dataset:
    raw = read_tables(source, tables=tuple(t for t in C.TABLES if t != C.TRANSACTIONS))
    writer = LineFileWriter(stage)
    try:
        frames, warnings = validate_tables(
            raw.frames,
            text_tables=raw.text_tables,
            strict=strict,
            now=now,
            batches=parquet_batches(parquet),
            sink=writer.write,
        )
        lines = writer.close()
    except BaseException:
        writer.abort()  # nothing half-written is left
        raise
    logger.info(
        "loaded %s: transactions=%d (on disk), %s",
        describe_source(source),
        len(lines),
        ", ".join(f"{n}={len(df)}" for n, df in frames.items()),
    )
    return Dataset(transactions=lines, **frames, source=describe_source(source), warnings=warnings)


def load_offer_tables(
    source: str | os.PathLike, tables: tuple[str, ...] = (C.OFFERS, C.OFFER_EVENTS)
) -> dict[str, pd.DataFrame]:
    """The offer catalog and offer events of a source, validated on their own (no transactions
    needed): for ranking against a newer catalog than the model's."""
    raw = read_tables(source, tables=tables)
    frames, _ = validate_tables(raw.frames, text_tables=raw.text_tables, partial=True)
    return frames
