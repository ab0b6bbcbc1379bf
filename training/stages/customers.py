"""Stages load, features and segmentation: the dataset, every customer's profile and segments."""

from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass
from pathlib import Path

import mlflow
import pandas as pd
from mlflow.data.http_dataset_source import HTTPDatasetSource
from mlflow.data.meta_dataset import MetaDataset

from recsys import constants as C
from recsys.churn.history import check_history
from recsys.customers import (
    BehaviourSegmenter,
    customer_profile_and_bgnbd,
    default_as_of,
    rfm_segments,
    segment_summary,
    segmentation_inputs,
)
from recsys.customers.features import weekly_history
from recsys.customers.history import PurchaseHistory
from recsys.data import Dataset, load_dataset
from recsys.data.duck import DuckSettings, scratch_directory
from recsys.data.line_file import LineFile, time_span
from recsys.data.lines import BasketLines
from recsys.data.store_events import with_store_events
from recsys.errors import DataValidationError, Issue
from recsys.incrementality.experiment import experiment_transactions
from recsys.offers import held_out_for, hold_out_events
from recsys.reporting import plots
from training.config import TrainConfig
from training.memory import release_free_memory
from training.tracking import Tracker

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Loaded:
    # without the events of held-out campaigns; its transactions are released after the churn
    # stage, their last reader (training.pipeline.RELEASED_AFTER): None from then on
    ds: Dataset
    as_of: pd.Timestamp
    fingerprint: str
    held_out: tuple = ()  # campaigns whose events were dropped and that are never evaluated on
    # the transactions' basket lines, built once (on disk beyond a few rows): cf, offers and
    # evaluate read them instead of the transactions; removed by close()
    lines: BasketLines | None = None
    last: pd.Timestamp | None = None  # the last transaction's moment
    experiment: pd.DataFrame | None = None  # the transactions the lift reads (None: no control group)
    # where a Parquet source's transactions were validated in batches and kept (ds.transactions
    # is then their LineFile, recsys.data.line_file); removed by close()
    stage: str | None = None

    def close(self) -> None:
        if self.lines is not None:
            self.lines.close()
        if self.stage is not None:
            shutil.rmtree(self.stage, ignore_errors=True)


@dataclass(frozen=True)
class Features:
    features: pd.DataFrame  # per customer: recsys.customers features, p_alive, expected_purchases
    # the lines reduced once: the churn snapshots and segmentation cut it; released after the
    # churn stage (training.pipeline.RELEASED_AFTER): None from then on
    history: PurchaseHistory | None
    weekly: pd.DataFrame  # each customer's spend and baskets per week before as_of, for the bundle


@dataclass(frozen=True)
class Segmentation:
    segments: pd.Series  # RFM segment per customer
    clusters: pd.Series  # behavioural cluster per customer


def training_data(cfg: TrainConfig, stage: str | None = None) -> tuple[Dataset, int, int, int]:
    """The dataset a run trains on: the data with the events store's events, less the held-out
    campaigns' events; (dataset, store events added, store events of unknown offers, dropped).
    ``stage``: where a Parquet source's transactions are validated in batches and kept on disk
    (recsys.data.load_dataset)."""
    ds, added, unknown = with_store_events(load_dataset(cfg.data, stage=stage), cfg.events_url)
    ds, dropped = hold_out_events(ds, held_out_for(ds, cfg.held_out_campaigns))
    return ds, added, unknown, dropped


def load(cfg: TrainConfig, track: Tracker) -> Loaded:
    # A Parquet source's lines are validated a batch at a time into a file here, never held
    # whole: at a hundred times The Complete Journey they are 8 GiB as a frame (docs/scale.md).
    stage = scratch_directory("recsys-lines-", DuckSettings.from_env())
    try:
        return _load(cfg, track, stage)
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise


def _load(cfg: TrainConfig, track: Tracker, stage: str) -> Loaded:
    ds, added, unknown, dropped = training_data(cfg, stage)
    held_out = held_out_for(ds, cfg.held_out_campaigns)
    as_of = pd.Timestamp(cfg.as_of) if cfg.as_of else default_as_of(ds.transactions)
    check_trainable(ds, as_of, cfg.horizon_days)  # before any work: exit 2 naming what is missing
    fingerprint = ds.fingerprint()
    mlflow.log_input(
        MetaDataset(HTTPDatasetSource(ds.source), name=Path(str(cfg.data)).name or "dataset", digest=fingerprint),
        context="training",
    )
    summary = ds.summary()
    track.log_params({"data_source": ds.source, "data_fingerprint": fingerprint, "as_of": as_of.date()})
    mlflow.log_dict(summary, "data_summary.json")
    track.log_metrics(
        {
            "data_transactions": summary["rows"]["transactions"],
            "data_customers": summary["customers"],
            "data_held_out_events_dropped": dropped,
            "data_store_events_added": added,
            "data_store_events_unknown_offer": unknown,
        }
    )
    track.log_params({"held_out_campaigns": ",".join(map(str, held_out)) or "none"})
    if held_out:
        logger.warning("held out for independent evaluation: campaign(s) %s (%d events dropped)", held_out, dropped)
    ds = _read_columns(ds)
    release_free_memory()  # what reading the tables left, before DuckDB builds the lines
    lines = BasketLines.of(ds.transactions)
    lines.release()  # its connection reopens when the cf stage reads the lines
    tx = ds.transactions
    last = time_span(tx)[1]
    experiment = experiment_transactions(tx, ds.offer_events)
    on_disk = stage if isinstance(tx, LineFile) else None
    if on_disk is None:
        shutil.rmtree(stage, ignore_errors=True)
    return Loaded(ds, as_of, fingerprint, held_out, lines, last, experiment, on_disk)


UNREAD = {C.TRANSACTIONS: (C.STORE_ID,), C.OFFER_EVENTS: (C.EVENT_ID,)}  # by no stage after load


def _read_columns(ds: Dataset) -> Dataset:
    """The dataset less the columns no stage reads once it is fingerprinted and the store's
    events merged (ids of stores and events: 0.18 GiB at ten times The Complete Journey)."""
    for table, columns in UNREAD.items():
        frame = getattr(ds, table)
        if frame is not None and not isinstance(frame, LineFile):  # on disk: unread columns cost no memory
            setattr(ds, table, frame.drop(columns=[c for c in columns if c in frame]))
    return ds


MIN_CUSTOMERS = 20  # with purchases before as_of: segments, churn folds and ALS need a few of each


def check_trainable(ds: Dataset, as_of: pd.Timestamp, horizon_days: int) -> None:
    """Refuse, as a data problem, what no stage could train on: too short a history for the
    horizon, too few customers, no offer catalog."""
    check_history(ds.transactions, as_of, horizon_days)
    issues = []
    tx = ds.transactions
    buyers = (
        tx.buyers_before(as_of)
        if isinstance(tx, LineFile)
        else tx.loc[tx[C.TIMESTAMP] < as_of, C.CUSTOMER_ID].nunique()
    )
    if buyers < MIN_CUSTOMERS:
        issues.append(
            Issue(
                C.TRANSACTIONS,
                C.CUSTOMER_ID,
                f"names {buyers} customer(s) with purchases before {as_of:%Y-%m-%d}; training needs at least "
                f"{MIN_CUSTOMERS}",
            )
        )
    if ds.offers is None or ds.offers.empty:
        issues.append(Issue(C.OFFERS, None, "is missing or empty; training needs the offer catalog to rank offers"))
    if issues:
        raise DataValidationError(issues)


def features(cfg: TrainConfig, track: Tracker, load: Loaded) -> Features:
    ds = load.ds
    if cfg.engine == "spark":
        from training.spark import history_on_spark

        history = history_on_spark(cfg, ds, track)
    else:
        history = PurchaseHistory.of(ds.transactions, ds.products, ds.customers, ds.offer_events)
    f, bg = customer_profile_and_bgnbd(history, load.as_of, horizon_days=cfg.horizon_days)
    track.log_params({f"bgnbd_{k}": round(v, 6) for k, v in bg.params_.items()}, parent=False)
    track.log_metrics({"features_customers": len(f), "features_mean_p_alive": float(f["p_alive"].mean())})
    track.log_table(f.describe().T, "features/describe.csv")
    return Features(f, history, weekly_history(history, load.as_of))


def segmentation(cfg: TrainConfig, track: Tracker, load: Loaded, features: Features) -> Segmentation:
    f = features.features
    rfm = rfm_segments(f)
    seg = BehaviourSegmenter(random_state=cfg.seed).fit(
        segmentation_inputs(f, features.history, load.ds.products, load.as_of)
    )
    summary = segment_summary(f, rfm)
    track.log_params({"clusters_k": seg.k_}, parent=False)
    track.log_metrics({"clusters_silhouette": seg.silhouette_[seg.k_], "segments": summary.shape[0]})
    track.log_table(summary, "segments/summary.csv")
    track.log_table(seg.profiles_, "segments/cluster_profiles.csv")
    cols = [c for c in seg.columns_ if c in seg.profiles_]
    track.log_figures(
        {
            "segment_sizes": plots.segment_sizes(summary, note=f"{load.ds.source}, as of {load.as_of:%Y-%m-%d}"),
            "cluster_profiles": plots.cluster_profiles(
                seg.profiles_, cols, note=f"{load.ds.source}, as of {load.as_of:%Y-%m-%d}"
            ),
        },
        "segments",
    )
    return Segmentation(rfm["segment"].astype("string"), seg.labels_)
