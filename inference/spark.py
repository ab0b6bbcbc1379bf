"""The exports on Spark: the same decisions as inference.exports, computed on a cluster.

The model bundle (a directory, as the registry's loader downloads it) is shipped to every
executor with ``SparkContext.addFile``, under a name of its content (:func:`ship_bundle`), and
loaded once per Python worker; customers and their
offer events are split into buckets by a hash of the customer id and cogrouped, so each task
ranks its customers with only their events, through :func:`inference.exports.decide_chunk`,
the function the local export calls. Rows are the local export's, in another order; the result
is written by Spark as a Parquet dataset (a directory of part files), or collected for a test.

Where it runs: ``RECSYS_SPARK_MASTER`` (default ``local[2]``: this machine, two cores), or the
master ``spark-submit`` was given (docs/scale.md). The executors need this package and its
dependencies installed (or shipped with ``--py-files``/an environment archive).
"""

from __future__ import annotations

import atexit
import hashlib
import os
import shutil
import tempfile
from pathlib import Path

import joblib
import numpy as np
import pandas as pd

from recsys import constants as C
from recsys.spark import spark_session

BUCKET = "_bucket"
_LOADED: dict = {}  # per executor process: shipped bundle name -> ModelBundle (and its prepared catalogs)
_STAGED: dict[str, Path] = {}  # on the driver: shipped bundle name -> the directory shipped under it


def ship_bundle(spark, bundle_dir: Path) -> str:
    """Ship ``bundle_dir`` to every executor under ``recsys-bundle-<digest of its bundle.json>``
    (which lists every file's SHA-256): the name an executor loads it by. A bundle shipped by
    its directory's name would collide with another of the same name (a registry download, a
    retrained bundle written to the same folder) in a session that lives on: Spark keeps the
    first file of a name, and a worker the bundle it loaded. The copy is made of hard links
    where the file system allows (copies otherwise), once per bundle and driver process, and
    removed when the process ends."""
    digest = hashlib.sha256((bundle_dir / "bundle.json").read_bytes()).hexdigest()[:24]
    name = f"recsys-bundle-{digest}"
    staged = _STAGED.get(name)
    if staged is None or not staged.is_dir():
        root = Path(tempfile.mkdtemp(prefix="recsys-spark-"))
        atexit.register(shutil.rmtree, root, ignore_errors=True)
        staged = root / name
        shutil.copytree(bundle_dir, staged, copy_function=_link_or_copy)
        _STAGED[name] = staged
    spark.sparkContext.addFile(str(staged), recursive=True)  # the same path again is no new file
    return name


def _link_or_copy(src: str, dst: str) -> None:
    try:
        os.link(src, dst)
    except OSError:  # another file system, or links not allowed
        shutil.copy2(src, dst)


def _bundle(name: str):
    """The bundle shipped as ``name``, loaded once in this executor process."""
    if name not in _LOADED:
        from pyspark import SparkFiles

        from recsys.bundle import ModelBundle

        _LOADED[name] = ModelBundle.load(Path(SparkFiles.get(name)))
    return _LOADED[name]


def _buckets(frame: pd.DataFrame, buckets: int) -> pd.Series:
    """A customer's bucket: the same on the driver and every executor, whatever the id's type."""
    hashed = pd.util.hash_pandas_object(frame[C.CUSTOMER_ID].astype(str), index=False)
    return (hashed % buckets).astype("int64")


def spark_schema(frame: pd.DataFrame):
    """The Spark schema of a pandas frame, by dtype; object columns by their first value's type
    (text when they hold none)."""
    from pyspark.sql import types as T

    fields = []
    for name, dtype in frame.dtypes.items():
        if pd.api.types.is_bool_dtype(dtype):
            kind = T.BooleanType()
        elif pd.api.types.is_integer_dtype(dtype):
            kind = T.LongType()
        elif pd.api.types.is_float_dtype(dtype):
            kind = T.DoubleType()
        elif pd.api.types.is_datetime64_any_dtype(dtype):
            kind = T.TimestampNTZType()
        else:
            first = next((v for v in frame[name] if v is not None and v == v), None)
            kind = (
                T.BooleanType()
                if isinstance(first, bool)
                else T.LongType()
                if isinstance(first, (int, np.integer))
                else T.DoubleType()
                if isinstance(first, (float, np.floating))
                else T.StringType()
            )
        fields.append(T.StructField(str(name), kind, True))
    return T.StructType(fields)


def _plain(frame: pd.DataFrame) -> pd.DataFrame:
    """Text columns as plain objects: pandas' Arrow-backed strings come out of pyarrow in chunks,
    which Spark's conversion does not take."""
    text = [c for c, d in frame.dtypes.items() if isinstance(d, pd.StringDtype)]
    if not text:
        return frame
    out = frame.copy()
    for c in text:
        out[c] = out[c].astype(object).where(out[c].notna(), None)
    return out


def _spark_frame(spark, frame: pd.DataFrame):
    frame = _plain(frame)
    return spark.createDataFrame(frame, schema=spark_schema(frame))


def export_offers_spark(
    bundle_dir: str | Path,
    *,
    customers: pd.DataFrame | None = None,
    events: pd.DataFrame | None = None,
    catalog: pd.DataFrame | None = None,
    k: int = 5,
    channel: str | None = None,
    as_of=None,
    control=None,
    decided_at=None,
    buckets: int | None = None,
    chunk: int = 500,
    spark=None,
):
    """(offers, held back) as Spark DataFrames: :func:`inference.exports.export_decisions` for
    ``customers`` (a frame with ``customer_id``; default: every customer of the model)."""
    from inference.exports import decide_chunk, decision_dates, valid_offers
    from recsys.bundle import ModelBundle

    spark = spark or spark_session()
    bundle_dir = Path(bundle_dir).resolve()
    local = ModelBundle.load(bundle_dir)  # on the driver: the schema, and the defaults
    as_of, decided_at = decision_dates(as_of, decided_at)
    valid = valid_offers(local.catalog if catalog is None else catalog, as_of)
    ids = customers[[C.CUSTOMER_ID]] if customers is not None else local.customers.index.to_frame(index=False)
    buckets = buckets or max(2, spark.sparkContext.defaultParallelism * 4)
    name = ship_bundle(spark, bundle_dir)
    catalog_key = joblib.hash(valid)  # another catalog of the same day is prepared anew

    def decide(ids_part: pd.DataFrame, events_part: pd.DataFrame) -> pd.DataFrame:
        if ids_part.empty:  # a bucket of events only
            return sample.iloc[:0]
        bundle = _bundle(name)
        key = ("prepared", name, as_of, catalog_key)
        if key not in _LOADED:
            _LOADED[key] = bundle.ranker.prepare(valid)
        part = pd.Index(ids_part[C.CUSTOMER_ID])
        ev_part = events_part.drop(columns=[BUCKET]) if events is not None else None
        out = []
        for start in range(0, len(part), chunk):  # as the local export: a bounded customers x offers matrix
            few = part[start : start + chunk]
            mine = ev_part[ev_part[C.CUSTOMER_ID].isin(few)] if ev_part is not None else None
            ranked, kept = decide_chunk(bundle, _LOADED[key], valid, few, mine, k, channel, as_of, control, decided_at)
            out.append(_plain(_one_frame(ranked, kept)[list(sample.columns)]))
        return pd.concat(out, ignore_index=True)

    sample = _sample_rows(local, valid, ids, events, k, channel, as_of, control, decided_at, decide_chunk)
    schema = spark_schema(sample)
    left = _spark_frame(spark, ids.assign(**{BUCKET: _buckets(ids, buckets)}))
    ev = events if events is not None else pd.DataFrame({C.CUSTOMER_ID: ids[C.CUSTOMER_ID].iloc[:0]})
    right = _spark_frame(spark, ev.assign(**{BUCKET: _buckets(ev, buckets)}))
    spark.conf.set("spark.sql.shuffle.partitions", str(buckets))
    both = left.groupby(BUCKET).cogroup(right.groupby(BUCKET)).applyInPandas(decide, schema=schema)
    both = both.cache()
    offers = both.filter(~both["_held"]).drop("_held", C.PROPENSITY, "_event_id")
    held = both.filter(both["_held"]).select(
        C.CUSTOMER_ID, C.OFFER_ID, C.PROPENSITY, both["_event_id"].alias(C.EVENT_ID)
    )
    return offers, held


def _one_frame(ranked: pd.DataFrame, kept: pd.DataFrame) -> pd.DataFrame:
    """Ranked and held-back rows in one frame (``_held`` tells them apart): one Spark schema."""
    kept = kept.rename(columns={C.EVENT_ID: "_event_id"})
    out = pd.concat([ranked.assign(_held=False), kept.assign(_held=True)], ignore_index=True, sort=False)
    for name, dtype in ranked.dtypes.items():  # the held rows' empty cells must not turn integers to floats
        if name not in kept and (pd.api.types.is_integer_dtype(dtype) or pd.api.types.is_bool_dtype(dtype)):
            out[name] = out[name].fillna(0).astype(dtype)
    if C.PROPENSITY not in out:
        out[C.PROPENSITY] = float("nan")
    if "_event_id" not in out:
        out["_event_id"] = None
    out["_event_id"] = out["_event_id"].astype(object).where(out["_event_id"].notna(), None)
    return out


def _sample_rows(bundle, valid, ids, events, k, channel, as_of, control, decided_at, decide_chunk) -> pd.DataFrame:
    """A few customers' rows, decided on the driver: the Spark schema of the result."""
    prepared = bundle.ranker.prepare(valid)  # once for every try below
    for n in (20, 200, len(ids)):
        few = pd.Index(ids[C.CUSTOMER_ID].iloc[:n])
        mine = events[events[C.CUSTOMER_ID].isin(few)] if events is not None else None
        ranked, kept = decide_chunk(bundle, prepared, valid, few, mine, k, channel, as_of, control, decided_at)
        out = _one_frame(ranked, kept)
        if len(out) and out.notna().any().all():
            return out
    return out


def export_at_risk_spark(bundle_dir: str | Path, *, min_risk: float = C.HIGH_RISK, segment=None, spark=None):
    """:func:`inference.exports.export_at_risk` as a Spark DataFrame, in the same order (risk x
    value, then churn probability, then the model's order of customers)."""
    from inference.exports import export_at_risk
    from recsys.bundle import ModelBundle

    spark = spark or spark_session()
    bundle_dir = Path(bundle_dir).resolve()
    local = ModelBundle.load(bundle_dir)
    local.at_risk(min_risk=min_risk, segment=segment)  # a bad segment fails here, on the driver, by name
    name = ship_bundle(spark, bundle_dir)
    sample = _plain(export_at_risk(local, min_risk=0.0).head(50))
    ordered = ["_value", "_position"]
    schema = spark_schema(sample.assign(_value=0.0, _position=0))

    def rows(parts):
        bundle = _bundle(name)
        position = pd.Series(range(len(bundle.customers)), index=bundle.customers.index)
        for part in parts:
            mine = export_at_risk(bundle, min_risk=min_risk, segment=segment, customers=part[C.CUSTOMER_ID])
            value = bundle.customers["churn_probability"] * bundle.customers["total_spend"].clip(lower=0)
            ids = mine[C.CUSTOMER_ID]
            yield _plain(mine.assign(_value=value.reindex(ids).to_numpy(), _position=position.reindex(ids).to_numpy()))

    ids = local.customers.index.to_frame(index=False)
    out = _spark_frame(spark, ids).repartition(max(2, spark.sparkContext.defaultParallelism * 2))
    out = out.mapInPandas(rows, schema=schema)
    out = out.orderBy(out["_value"].desc(), out["churn_probability"].desc(), out["_position"].asc())
    return out.drop(*ordered)
