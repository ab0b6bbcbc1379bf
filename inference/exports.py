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
from recsys.incrementality import ControlGroups
from recsys.io import atomic_file, json_safe
from registry.loader import load_bundle


def load_model(model_uri: str) -> tuple[ModelBundle, str | None]:
    """(bundle, version) from a registry URI or a bundle directory."""
    resolved = load_bundle(model_uri)
    return resolved.bundle, resolved.version


def load_resolved(model_uri: str):
    """The registry's :class:`registry.loader.ResolvedModel`: bundle, version and directory."""
    return load_bundle(model_uri)


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


def export_offers(bundle: ModelBundle, **kwargs) -> pd.DataFrame:
    """:func:`export_decisions`' offers alone (nothing held back unless ``control`` is given)."""
    return export_decisions(bundle, **kwargs)[0]


def export_decisions(
    bundle: ModelBundle,
    *,
    k: int = 5,
    channel: str | None = None,
    as_of=None,
    catalog: pd.DataFrame | None = None,
    events: pd.DataFrame | None = None,
    control: ControlGroups | None = None,
    chunk: int = 500,
    progress: Callable[[int], None] | None = None,
    decided_at=None,
    customers: pd.Index | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """One row per customer and rank for every customer of the model (or of ``customers``) with an
    eligible offer, and
    the offers held back as control (``customer_id, offer_id, propensity, event_id``): the same
    decisions the service makes for the same day, events and control groups. Decided now
    (``decided_at``: the frequency cap's window ends then), as the service decides."""
    as_of, decided_at = decision_dates(as_of, decided_at)
    catalog = bundle.catalog if catalog is None else catalog
    valid = valid_offers(catalog, as_of)
    prepared = bundle.ranker.prepare(valid)
    customers = bundle.customers.index if customers is None else customers
    frames, held = [], []
    for start in range(0, len(customers), chunk):
        ids = customers[start : start + chunk]
        mine = events[events[C.CUSTOMER_ID].isin(ids)] if events is not None else None
        ranked, kept = decide_chunk(bundle, prepared, valid, ids, mine, k, channel, as_of, control, decided_at)
        frames.append(ranked)
        held.append(kept)
        if progress is not None:
            progress(len(ids))
    return pd.concat(frames, ignore_index=True), pd.concat(held, ignore_index=True)


def decision_dates(as_of=None, decided_at=None) -> tuple[pd.Timestamp, pd.Timestamp]:
    """(the day offers must be valid on, the moment of the decision): today and now by default."""
    as_of = pd.Timestamp(as_of) if as_of is not None else pd.Timestamp.now().normalize()
    decided_at = pd.Timestamp.now("UTC").tz_localize(None) if decided_at is None else pd.Timestamp(decided_at)
    return as_of, decided_at


def valid_offers(catalog: pd.DataFrame, as_of: pd.Timestamp) -> pd.DataFrame:
    day = as_of.normalize()
    return catalog[(catalog[C.START_DATE] <= day) & (catalog[C.END_DATE] >= day)]


def decide_chunk(bundle, prepared, valid, ids, events, k, channel, as_of, control, decided_at):
    """The export's rows (ranked offers with the offer's fields) and held-back offers for ``ids``:
    the one implementation behind the local export and the Spark one (inference.spark)."""
    ranked, kept = bundle.ranker.decide(
        ids, prepared, k=k, channel=channel, as_of=as_of, events=events, control=control, decided_at=decided_at
    )
    ranked = pd.DataFrame(ranked, columns=list(C.RANKED_OFFER_COLUMNS))
    fields = [c for c in valid.columns if c not in ranked.columns and c not in (C.PRODUCT_IDS,)]
    out = ranked.merge(valid[[C.OFFER_ID, *fields]], on=C.OFFER_ID, how="left")
    for col in out.columns:  # lists as "a|b" text, so CSV and Parquet hold the same thing
        if out[col].dtype == object and out[col].map(lambda v: isinstance(v, (list, tuple))).any():
            out[col] = out[col].map(lambda v: "|".join(map(str, v)) if isinstance(v, (list, tuple)) else v)
    kept = pd.DataFrame(kept)
    if control is not None:
        kept[C.EVENT_ID] = [control.event_id(c, o) for c, o in zip(kept[C.CUSTOMER_ID], kept[C.OFFER_ID])]
    else:
        kept[C.EVENT_ID] = pd.Series(dtype=object)
    return out, kept


def held_out_path(out: str | os.PathLike) -> Path:
    """Where the offers held back as control are written beside an export: ``NAME.held_out.EXT``."""
    out = Path(out)
    return out.with_name(f"{out.stem}.held_out{out.suffix}")


def held_out_events(held: pd.DataFrame, catalog: pd.DataFrame, when: pd.Timestamp | None = None) -> list[dict]:
    """The held_out events of an export, as the service records them."""
    when = when if when is not None else pd.Timestamp.now("UTC").tz_localize(None).floor("s")
    campaigns = catalog.set_index(C.OFFER_ID)[C.CAMPAIGN_ID] if C.CAMPAIGN_ID in catalog else pd.Series(dtype=object)
    return [
        {
            C.EVENT_ID: e,
            C.CUSTOMER_ID: c,
            C.OFFER_ID: o,
            C.EVENT: C.HELD_OUT,
            C.TIMESTAMP: when,
            C.CAMPAIGN_ID: json_safe(campaigns.get(o)),
            C.PROPENSITY: float(p),
        }
        for e, c, o, p in zip(held[C.EVENT_ID], held[C.CUSTOMER_ID], held[C.OFFER_ID], held[C.PROPENSITY])
    ]


def export_at_risk(
    bundle: ModelBundle, *, min_risk: float = C.HIGH_RISK, segment: str | None = None, customers=None
) -> pd.DataFrame:
    """Customers at or above ``min_risk`` (``constants.AT_RISK_COLUMNS``), sorted by risk x value;
    only those of ``customers`` when given (the Spark export's share of them)."""
    rows = bundle.at_risk(min_risk=min_risk, segment=segment)
    if customers is not None:
        rows = rows[rows.index.isin(pd.Index(customers))]
    rows = rows.reset_index()
    rows["reasons"] = rows["reasons"].map(lambda r: "; ".join(r))
    return rows[list(C.AT_RISK_COLUMNS)]
