"""Batch exports of the champion's answers for email and retention teams.

Files are CSV or Parquet by extension and written atomically: a temporary file beside the
target, renamed over it at the end, so an interrupted export leaves no half-written file.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from recsys import constants as C
from recsys.bundle import ModelBundle
from recsys.data import load_offer_tables
from recsys.io import atomic_file
from registry.loader import load_bundle


def load_model(model_uri: str) -> tuple[ModelBundle, str | None]:
    """(bundle, version) from a registry URI or a bundle directory."""
    resolved = load_bundle(model_uri)
    return resolved.bundle, resolved.version


def read_offer_tables(source: str) -> tuple[pd.DataFrame | None, pd.DataFrame | None]:
    """The catalog and the offer events of a source, validated on their own (no transactions)."""
    frames = load_offer_tables(source)
    return frames.get(C.OFFERS), frames.get(C.OFFER_EVENTS)


def write_atomic(frame: pd.DataFrame, out: str | os.PathLike) -> Path:
    """``frame`` as CSV or Parquet (by the file's extension), written whole or not at all."""
    out = Path(out)
    kind = out.suffix.lower()
    if kind not in (".csv", ".parquet"):
        raise ValueError(f"{out}: the file name must end in .csv or .parquet")
    with atomic_file(out, suffix=kind) as tmp:
        if kind == ".csv":
            frame.to_csv(tmp, index=False)
        else:
            frame.to_parquet(tmp, index=False)
    return out


def export_offers(
    bundle: ModelBundle,
    *,
    k: int = 5,
    channel: str | None = None,
    as_of=None,
    catalog: pd.DataFrame | None = None,
    events: pd.DataFrame | None = None,
    chunk: int = 500,
    progress: Callable[[int], None] | None = None,
) -> pd.DataFrame:
    """One row per customer and rank for every customer of the model with an eligible offer."""
    as_of = pd.Timestamp(as_of) if as_of is not None else pd.Timestamp.now().normalize()
    catalog = bundle.catalog if catalog is None else catalog
    day = as_of.normalize()
    valid = catalog[(catalog[C.START_DATE] <= day) & (catalog[C.END_DATE] >= day)]
    prepared = bundle.ranker.prepare(valid)
    customers = bundle.customers.index
    frames = []
    for start in range(0, len(customers), chunk):
        ids = customers[start : start + chunk]
        mine = events[events[C.CUSTOMER_ID].isin(ids)] if events is not None else None
        frames.append(bundle.ranker.rank_many(ids, prepared, k=k, channel=channel, as_of=as_of, events=mine))
        if progress is not None:
            progress(len(ids))
    ranked = pd.concat(frames, ignore_index=True)[list(C.RANKED_OFFER_COLUMNS)]
    fields = [c for c in valid.columns if c not in ranked.columns and c not in (C.PRODUCT_IDS,)]
    out = ranked.merge(valid[[C.OFFER_ID, *fields]], on=C.OFFER_ID, how="left")
    for col in out.columns:  # lists as "a|b" text, so CSV and Parquet hold the same thing
        if out[col].dtype == object and out[col].map(lambda v: isinstance(v, (list, tuple))).any():
            out[col] = out[col].map(lambda v: "|".join(map(str, v)) if isinstance(v, (list, tuple)) else v)
    return out


def export_at_risk(bundle: ModelBundle, *, min_risk: float = C.HIGH_RISK, segment: str | None = None) -> pd.DataFrame:
    """Customers at or above ``min_risk`` (``constants.AT_RISK_COLUMNS``), sorted by risk x value."""
    rows = bundle.at_risk(min_risk=min_risk, segment=segment).reset_index()
    rows["reasons"] = rows["reasons"].map(lambda r: "; ".join(r))
    return rows[list(C.AT_RISK_COLUMNS)]
