"""Everything serving needs from one training run, in one directory.

A bundle holds the offer ranker (with its ALS model saved as factors and id maps), the churn
model, the customer snapshot (churn probability, risk band, reasons, segment, P(alive),
expected purchases, total spend), the offer catalog seen at training time and the run's
configuration and key metrics. The training pipeline packages it into the MLflow model; the
Flask service and the exports load it through :meth:`ModelBundle.load`.

Layout: ``bundle.json`` (format, config, metrics), ``customers.parquet``, ``catalog.parquet``,
``lift.parquet`` (when the training data held control groups), ``history.parquet`` (weekly
spend per customer),
``als/`` (recsys.cf), ``snapshot/`` (the ranker's customer x product state as arrays,
recsys.offers.snapshot_files), ``ranker.joblib`` and ``churn.joblib`` (scikit-learn estimators, the
way MLflow's sklearn flavour stores them).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

import joblib
import numpy as np
import pandas as pd

from recsys import constants as C
from recsys.cf import ALSRecommender
from recsys.errors import RecsysError, UnknownValueError
from recsys.io import atomic_directory, json_safe
from recsys.offers import OfferRanker, PreparedOffers
from recsys.offers.snapshot_files import load_snapshot, save_snapshot
from recsys.transforms import rankable

# 2: offer features gained hist_spend (the snapshot keeps spend per product).
# 3: the library's modules moved into domain packages (the pickled estimators name their modules),
#    and ranked offers carry a tier.
# 4: the ranker's customer x product snapshot is stored as arrays (recsys.offers.snapshot_files),
#    not inside its pickle.
BUNDLE_FORMAT = 4
logger = logging.getLogger(__name__)
CUSTOMER_COLUMNS = list(C.CUSTOMER_COLUMNS)


class BundleError(RecsysError):
    """A bundle directory is incomplete or of another format."""


def file_checksums(path: Path) -> dict[str, str]:
    """SHA-256 of every file under ``path`` but bundle.json, by relative path."""
    out = {}
    for file in sorted(p for p in path.rglob("*") if p.is_file() and p.name != "bundle.json"):
        digest = hashlib.sha256()
        with file.open("rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                digest.update(chunk)
        out[file.relative_to(path).as_posix()] = digest.hexdigest()
    return out


def verify_checksums(path: Path, expected: dict | None) -> None:
    """Every file the bundle lists, present and unchanged; BundleError naming the first that is not."""
    if expected is None:
        logger.warning("%s: the bundle lists no checksums (packaged by an earlier version); not verified", path)
        return
    found = file_checksums(path)
    for name, digest in expected.items():
        if name not in found:
            raise BundleError(f"{path}: {name} is missing")
        if found[name] != digest:
            raise BundleError(f"{path}: {name} does not match its checksum (damaged or changed after packaging)")


@dataclass
class ModelBundle:
    ranker: OfferRanker
    churn_model: object
    customers: pd.DataFrame  # indexed by customer_id, CUSTOMER_COLUMNS
    catalog: pd.DataFrame
    config: dict = field(default_factory=dict)
    metrics: dict = field(default_factory=dict)
    lift: pd.DataFrame | None = None  # measured lift per offer and campaign (recsys.reporting.lift); None: none
    history: pd.DataFrame | None = None  # weekly spend and baskets per customer (customers.weekly_history)
    profile: pd.DataFrame | None = None  # a sample of the training features and scores (evaluation.drift)
    # the churn model of the backtest, fitted only on labels before config["churn_eval_at"]: the
    # quality gate scores it on the next training's evaluation (the served one saw those labels)
    churn_backtest: object = None

    def __post_init__(self):
        self._prepared: PreparedOffers | None = None
        self._order = None

    # ------------------------------------------------------------- persistence

    def save(self, path: str | os.PathLike) -> Path:
        """Write the bundle to ``path`` atomically (a staging directory, then a rename)."""
        path = Path(path)
        with atomic_directory(path) as stage:
            shared = _same_counts(self.ranker.cf_model_, self.ranker.snapshot_)
            self.ranker.cf_model_.save(stage / "als", counts=not shared)
            save_snapshot(self.ranker.snapshot_, stage / "snapshot")
            # The pickle keeps the ranker's small parts: its parameters, the redemption model, the
            # products; the ALS model and the snapshot are arrays beside it.
            cf, snap = self.ranker.cf_model_, self.ranker.snapshot_
            try:
                self.ranker.cf_model_ = self.ranker.snapshot_ = None
                joblib.dump(self.ranker, stage / "ranker.joblib", compress=3)
            finally:
                self.ranker.cf_model_, self.ranker.snapshot_ = cf, snap
            # compressed: the calibrated churn models and the products table shrink fivefold
            joblib.dump(self.churn_model, stage / "churn.joblib", compress=3)
            if self.churn_backtest is not None:
                joblib.dump(self.churn_backtest, stage / "churn_backtest.joblib", compress=3)
            customers = self.customers.reset_index()
            customers["reasons"] = customers["reasons"].map(list)
            customers.to_parquet(stage / "customers.parquet", index=False)
            self.catalog.to_parquet(stage / "catalog.parquet", index=False)
            for name in ("lift", "history", "profile"):
                if getattr(self, name) is not None:
                    getattr(self, name).to_parquet(stage / f"{name}.parquet", index=False)
            meta = {
                "format": BUNDLE_FORMAT,
                "config": json_safe(self.config),
                "metrics": json_safe(self.metrics),
                "als_counts": "snapshot" if shared else "als",  # where the ALS purchase counts are kept
                "files": file_checksums(stage),
            }
            (stage / "bundle.json").write_text(json.dumps(meta, indent=2))
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> ModelBundle:
        path = Path(path)
        needed = [
            "bundle.json",
            "customers.parquet",
            "catalog.parquet",
            "ranker.joblib",
            "churn.joblib",
            "als",
            "snapshot",
        ]
        missing = [n for n in needed if not (path / n).exists()]
        if missing:
            raise BundleError(f"{path}: not a model bundle (missing {', '.join(missing)})")
        meta = json.loads((path / "bundle.json").read_text())
        if meta.get("format") != BUNDLE_FORMAT:
            raise BundleError(
                f"{path}: bundle format {meta.get('format')} is not {BUNDLE_FORMAT}, the one this "
                "version reads; retrain the model (recsys train) to get a bundle it can load"
            )
        verify_checksums(path, meta.get("files"))
        ranker = joblib.load(path / "ranker.joblib")
        ranker.snapshot_ = load_snapshot(path / "snapshot")
        shared = meta.get("als_counts") == "snapshot"
        ranker.cf_model_ = ALSRecommender.load(path / "als", counts=ranker.snapshot_.counts if shared else None)
        customers = pd.read_parquet(path / "customers.parquet").set_index(C.CUSTOMER_ID)
        customers["reasons"] = customers["reasons"].map(lambda v: [] if v is None else list(v))
        return cls(
            ranker,
            joblib.load(path / "churn.joblib"),
            customers,
            pd.read_parquet(path / "catalog.parquet"),
            meta.get("config", {}),
            meta.get("metrics", {}),
            *(
                pd.read_parquet(path / f"{n}.parquet") if (path / f"{n}.parquet").exists() else None
                for n in ("lift", "history", "profile")
            ),
            joblib.load(path / "churn_backtest.joblib") if (path / "churn_backtest.joblib").exists() else None,
        )

    # ------------------------------------------------------------- offers

    def prepared(self, catalog: pd.DataFrame | None = None) -> PreparedOffers:
        """The catalog prepared for ranking (the training-time one unless another is given)."""
        if catalog is not None:
            return self.ranker.prepare(catalog)
        if self._prepared is None:
            self._prepared = self.ranker.prepare(self.catalog)
        return self._prepared

    def offers(
        self,
        customer_ids,
        *,
        k: int = C.DEFAULT_K,
        channel: str | None = None,
        as_of=None,
        catalog: PreparedOffers | pd.DataFrame | None = None,
        events=None,
    ) -> pd.DataFrame:
        """Ranked offers per customer (``constants.RANKED_OFFER_COLUMNS``)."""
        prepared = catalog if isinstance(catalog, PreparedOffers) else self.prepared(catalog)
        return self.ranker.rank_many(customer_ids, prepared, k=k, channel=channel, as_of=as_of, events=events)

    # ------------------------------------------------------------- churn

    def churn_risk(self, customer_id) -> dict | None:
        """Probability, band, reasons, segment, P(alive)... of one customer; None if unknown."""
        try:
            row = self.customers.loc[customer_id]
        except KeyError:
            return None
        if isinstance(row, pd.DataFrame):
            row = row.iloc[0]
        out = {c: json_safe(row[c]) for c in CUSTOMER_COLUMNS}
        out["reasons"] = list(row["reasons"])
        return out

    def at_risk(
        self,
        *,
        min_risk: float = 0.0,
        band: str | None = None,
        segment: str | None = None,
        cluster=None,
        min_value: float | None = None,
        sort: str = "value",
        descending: bool = True,
    ) -> pd.DataFrame:
        """Customers at or above ``min_risk`` (and in ``band``, ``segment``, ``cluster``, with risk x
        value at least ``min_value``), with their ``value`` (churn probability x total spend).

        Sorted by ``sort`` (``value``, or a column of AT_RISK_COLUMNS), highest first unless
        ``descending`` is False; ties by churn probability, then customer id.
        """
        if not 0.0 <= min_risk <= 1.0:
            raise ValueError(f"min_risk must be within [0, 1], not {min_risk}")
        if band is not None and band not in C.RISK_BAND_NAMES:
            raise ValueError(f"band must be one of {', '.join(C.RISK_BAND_NAMES)}, not {band!r}")
        sortable = ("value", *C.AT_RISK_COLUMNS)
        if sort not in sortable or sort == "reasons":
            raise ValueError(f"sort must be one of {', '.join(c for c in sortable if c != 'reasons')}, not {sort!r}")
        if self._order is None:
            c = self.customers
            self._order = (
                c.assign(value=c["churn_probability"] * c["total_spend"].clip(lower=0))
                .rename_axis(C.CUSTOMER_ID)
                .sort_values(["value", "churn_probability"], ascending=False, kind="stable")
            )
        out = self._order[self._order["churn_probability"] >= min_risk]
        if band is not None:
            out = out[out["risk_band"] == band]
        if segment is not None:
            out = out[out["segment"].astype("string").str.casefold() == self._known("segment", segment).casefold()]
        if cluster is not None:
            out = out[out["cluster"].astype(str) == self._known("cluster", cluster)]
        if min_value is not None:
            out = out[out["value"] >= min_value]
        if sort != "value" or not descending:
            key = rankable(out.index.to_series(index=out.index) if sort == C.CUSTOMER_ID else out[sort])
            out = out.iloc[np.argsort(-key if descending else key, kind="stable")]
        return out

    def _known(self, column: str, value) -> str:
        """``value`` as one of the column's values (case aside); ValueError naming them otherwise."""
        names = sorted({str(v) for v in self.customers[column].dropna().unique()})
        found = next((n for n in names if n.casefold() == str(value).casefold()), None)
        if found is None:
            raise UnknownValueError(f"{column} {value!r} is not one of the model's: {', '.join(names)}")
        return found

    def customer_history(self, customer_id) -> pd.DataFrame:
        """The customer's weekly spend and baskets (empty when the bundle keeps no history)."""
        if self.history is None:
            return pd.DataFrame(columns=["week", "spend", "baskets"])
        h = self.history
        return h[h[C.CUSTOMER_ID] == customer_id][["week", "spend", "baskets"]].reset_index(drop=True)

    def segments(self, by: str = "segment") -> pd.DataFrame:
        """Customers, mean churn probability, churn rate of the high band and mean spend per
        ``segment`` (RFM) or ``cluster`` (behavioural), largest first."""
        if by not in ("segment", "cluster"):
            raise ValueError(f"by must be 'segment' or 'cluster', not {by!r}")
        g = self.customers.groupby(by, observed=True)
        return pd.DataFrame(
            {
                "customers": g.size(),
                "mean_churn_probability": g["churn_probability"].mean(),
                "high_risk_share": g["risk_band"].agg(lambda b: float((b == "high").mean())),
                "mean_total_spend": g["total_spend"].mean(),
            }
        ).sort_values("customers", ascending=False)


def _same_counts(als: ALSRecommender, snap) -> bool:
    """Whether the ALS model's purchase counts are the offer snapshot's (same customers, products
    and baskets per pair, as training makes them): then the bundle keeps them once."""
    a, b = als.user_counts_, snap.counts
    return (
        a.shape == b.shape
        and als.customer_map_.ids.equals(snap.customer_map.ids)
        and als.product_map_.ids.equals(snap.product_map.ids)
        and (a != b).nnz == 0
    )
