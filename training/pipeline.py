"""One command trains, evaluates, packages and registers: the stages and their MLflow tracking.

``train(TrainConfig(...))`` runs the stages in order under one parent MLflow run, each stage in
a nested run with its parameters, metrics, timing, tables and plots:

load -> features -> segmentation -> churn -> cf -> offers -> evaluate -> package -> register

Everything is computed as of ``as_of`` (default: the day after the last transaction) from data
strictly before it. The evaluations are temporal backtests that refit their models on earlier
data (docs/training.md). ``until`` stops after a stage (MLproject entry points use it).
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import tempfile
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd

from recsys import constants as C
from recsys import plots
from recsys.bgnbd import BGNBD, rfm_summary
from recsys.bundle import CUSTOMER_COLUMNS, ModelBundle
from recsys.campaign_eval import evaluate_campaign
from recsys.cf import (ALSRecommender, PopularityRecommender, RepeatPurchaseRecommender, evaluate_next_period,
                       next_period_split)
from recsys.churn import DEFAULT_BANDS, ChurnModel, evaluate, reasons, risk_band, snapshot_dates, training_set
from recsys.data import load_dataset
from recsys.features import build_features, department_shares
from recsys.offers import OfferRanker
from recsys.segments import BehaviourSegmenter, rfm_segments, segment_summary

logger = logging.getLogger(__name__)

STAGES = ("load", "features", "segmentation", "churn", "cf", "offers", "evaluate", "package", "register")
MODEL_NAME = "loyalty-offers"
DEFAULT_TRACKING_URI = "sqlite:///mlflow.db"
DEFAULT_ALS = {"factors": 64, "regularization": 0.5, "iterations": 15}


@dataclass
class TrainConfig:
    data: str
    as_of: str | None = None
    experiment: str = MODEL_NAME
    seed: int = C.SEED
    horizon_days: int = 90
    snapshot_every_days: int = 14
    churn_snapshots: int = 18  # rolling-origin snapshots at most; the last one's label window ends by the data
    als: dict = field(default_factory=lambda: dict(DEFAULT_ALS))
    cf_test_days: int = 28
    eval_campaigns: tuple | None = None  # None: the two latest finished campaigns (held-out ones never)
    min_campaign_redeemers: int = 20
    min_campaign_offers: int = 20
    # The Complete Journey's campaign 18: its events are dropped before anything is fitted and it is
    # never evaluated on. Pass () for data without held-out campaigns.
    held_out_campaigns: tuple = C.CJ_HELD_OUT_CAMPAIGNS
    model_name: str = MODEL_NAME
    until: str | None = None
    register: bool = True
    tolerance: float = 0.01


@dataclass
class TrainResult:
    run_id: str
    metrics: dict
    timings: dict
    model_uri: str | None = None
    version: str | None = None
    gate: object | None = None
    bundle: ModelBundle | None = None


def tracking_uri() -> str:
    return os.environ.get("MLFLOW_TRACKING_URI") or DEFAULT_TRACKING_URI


def _git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(__file__).resolve().parent, capture_output=True,
                             text=True, timeout=5)
        return out.stdout.strip() or None if out.returncode == 0 else None
    except (OSError, subprocess.SubprocessError):
        return None


def _log_figures(figures: dict, folder: str) -> None:
    import matplotlib.pyplot as plt

    for name, fig in figures.items():
        mlflow.log_figure(fig, f"{folder}/{name}.png")
        plt.close(fig)


def _log_table(frame: pd.DataFrame, path: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        file = Path(tmp) / Path(path).name
        frame.to_csv(file)
        mlflow.log_artifact(str(file), str(Path(path).parent) if Path(path).parent != Path(".") else None)


class _Context:
    """State passed between stages."""

    def __init__(self, config: TrainConfig):
        self.config = config
        self.metrics: dict[str, float] = {}
        self.timings: dict[str, float] = {}

    def log_metrics(self, metrics: dict) -> None:
        """To the stage's run and to the parent run (where the registry's quality gate reads them)."""
        clean = {k: float(v) for k, v in metrics.items() if v is not None and np.isfinite(float(v))}
        mlflow.log_metrics(clean)
        mlflow.log_metrics(clean, run_id=self.run_id)
        self.metrics.update(clean)

    def log_params(self, params: dict) -> None:
        mlflow.log_params(params)
        mlflow.log_params(params, run_id=self.run_id)


# ------------------------------------------------------------------ stages


def hold_out_events(ds, campaigns) -> tuple[object, int]:
    """The dataset without the offer events of held-out campaigns, and how many were dropped:
    nothing is learned from their outcomes, so they stay fit for an independent evaluation."""
    ev = ds.offer_events
    if not campaigns or ev is None or C.CAMPAIGN_ID not in ev:
        return ds, 0
    keep = ~ev[C.CAMPAIGN_ID].isin(list(campaigns))
    return replace(ds, offer_events=ev[keep].reset_index(drop=True)), int((~keep).sum())


def stage_load(ctx: _Context) -> None:
    cfg = ctx.config
    ds, dropped = hold_out_events(load_dataset(cfg.data), cfg.held_out_campaigns)
    ctx.ds = ds
    ctx.as_of = (pd.Timestamp(cfg.as_of) if cfg.as_of
                 else ds.transactions[C.TIMESTAMP].max().normalize() + pd.Timedelta(days=1))
    ctx.fingerprint = ds.fingerprint()
    from mlflow.data.meta_dataset import MetaDataset
    from mlflow.data.http_dataset_source import HTTPDatasetSource

    mlflow.log_input(MetaDataset(HTTPDatasetSource(ds.source), name=Path(str(cfg.data)).name or "dataset",
                                 digest=ctx.fingerprint), context="training")
    summary = ds.summary()
    ctx.log_params({"data_source": ds.source, "data_fingerprint": ctx.fingerprint, "as_of": ctx.as_of.date()})
    mlflow.log_dict(summary, "data_summary.json")
    ctx.log_metrics({"data_transactions": summary["rows"]["transactions"], "data_customers": summary["customers"],
                     "data_held_out_events_dropped": dropped})
    ctx.log_params({"held_out_campaigns": ",".join(map(str, cfg.held_out_campaigns)) or "none"})


def stage_features(ctx: _Context) -> None:
    ds, as_of = ctx.ds, ctx.as_of
    f = build_features(ds.transactions, as_of, products=ds.products, customers=ds.customers,
                       offer_events=ds.offer_events)
    summary = rfm_summary(ds.transactions, as_of)
    bg = BGNBD(penalizer=0.001).fit(summary)
    f["p_alive"] = bg.p_alive(summary).reindex(f.index)
    f["expected_purchases"] = bg.expected_purchases(summary, ctx.config.horizon_days).reindex(f.index)
    ctx.features = f
    mlflow.log_params({f"bgnbd_{k}": round(v, 6) for k, v in bg.params_.items()})
    ctx.log_metrics({"features_customers": len(f), "features_mean_p_alive": float(f["p_alive"].mean())})
    _log_table(f.describe().T, "features/describe.csv")


def stage_segmentation(ctx: _Context) -> None:
    ds, f = ctx.ds, ctx.features
    rfm = rfm_segments(f)
    X = f
    if ds.products is not None and C.DEPARTMENT in ds.products:
        shares = department_shares(ds.transactions, ds.products, ctx.as_of)
        X = f.join(shares, how="left").fillna({c: 0.0 for c in shares.columns})
    seg = BehaviourSegmenter(random_state=ctx.config.seed).fit(X)
    ctx.segments = rfm["segment"].astype("string")
    ctx.clusters = seg.labels_
    summary = segment_summary(f, rfm)
    mlflow.log_params({"clusters_k": seg.k_})
    ctx.log_metrics({"clusters_silhouette": seg.silhouette_[seg.k_], "segments": summary.shape[0]})
    _log_table(summary, "segments/summary.csv")
    _log_table(seg.profiles_, "segments/cluster_profiles.csv")
    cols = [c for c in seg.columns_ if c in seg.profiles_]
    _log_figures({"segment_sizes": plots.segment_sizes(summary),
                  "cluster_profiles": plots.cluster_profiles(seg.profiles_, cols)}, "segments")


def churn_snapshots(ds, as_of: pd.Timestamp, cfg: TrainConfig) -> list[pd.Timestamp]:
    """Snapshots every ``snapshot_every_days``, ending with the latest whose label window closes by
    the last transaction."""
    last = min(as_of, ds.transactions[C.TIMESTAMP].max()).normalize() - pd.Timedelta(days=cfg.horizon_days)
    first_possible = ds.transactions[C.TIMESTAMP].min().normalize() + pd.Timedelta(days=28)
    first = max(first_possible, last - pd.Timedelta(days=cfg.snapshot_every_days * (cfg.churn_snapshots - 1)))
    snaps = snapshot_dates(first, last, cfg.snapshot_every_days)
    if not snaps or snaps[-1] != last:
        snaps = [s for s in snaps if s < last] + [last]
    return snaps


def stage_churn(ctx: _Context) -> None:
    cfg, ds, as_of = ctx.config, ctx.ds, ctx.as_of
    snaps = churn_snapshots(ds, as_of, cfg)
    data = training_set(ds, snaps, cfg.horizon_days)
    eval_at = snaps[-1]
    backtest = data[data["snapshot"] + pd.Timedelta(days=cfg.horizon_days) <= eval_at]
    if backtest["snapshot"].nunique() < 2:
        raise ValueError(f"too little history for a churn backtest: {len(snaps)} snapshots before "
                         f"{as_of:%Y-%m-%d} with a {cfg.horizon_days}-day horizon")
    evaluation = data[data["snapshot"] == eval_at]
    model = ChurnModel(horizon_days=cfg.horizon_days, random_state=cfg.seed).fit(backtest)
    seg = rfm_segments(evaluation.set_index(C.CUSTOMER_ID))["segment"]
    result = evaluate(model, evaluation, backtest, seg)
    mlflow.log_params({"churn_eval_at": eval_at.date(), "churn_train_snapshots": backtest["snapshot"].nunique(),
                       **{f"churn_{k}": v for k, v in model.best_params_.items()}})
    ctx.log_metrics({f"churn_{k}": v for k, v in result.flat_metrics().items()})
    ctx.log_metrics({"churn_eval_rate": float(evaluation["churned"].mean())})
    ctx.log_metrics({f"churn_{k}": v for k, v in result.intervals().items()})  # 95%, 500 resamples
    ctx.churn_eval = result
    _log_table(result.segment_auc, "churn/segment_auc.csv")
    _log_table(pd.DataFrame(result.metrics).T, "churn/metrics.csv")
    _log_figures({"calibration": plots.calibration(result.calibration),
                  "capture": plots.lift_curve(result.scores, "churned", ["model", "recency_rule", "bgnbd", "logistic"])},
                 "churn")
    # The served model learns from every snapshot, the evaluation one included, and scores as_of.
    chosen = {k: (v,) for k, v in model.best_params_.items()}  # selected on the backtest; not re-tuned
    final = ChurnModel(horizon_days=cfg.horizon_days, param_grid=chosen, random_state=cfg.seed).fit(data)
    features = ctx.features
    p = final.predict_risk(features)
    ctx.churn_model = final
    spend = features["monetary_total"]
    ctx.customers = pd.DataFrame({
        "churn_probability": p, "risk_band": risk_band(p), "reasons": reasons(features),
        "segment": ctx.segments.reindex(features.index), "cluster": ctx.clusters.reindex(features.index),
        "p_alive": features["p_alive"], "expected_purchases": features["expected_purchases"], "total_spend": spend,
    })[CUSTOMER_COLUMNS]
    ctx.log_metrics({"churn_scored_customers": len(p), "churn_high_band_share": float((p >= DEFAULT_BANDS[1]).mean())})


def stage_cf(ctx: _Context) -> None:
    cfg, ds = ctx.config, ctx.ds
    tx = ds.transactions[ds.transactions[C.TIMESTAMP] < ctx.as_of]
    train, test, cut = next_period_split(tx, cfg.cf_test_days)
    models = {"popularity": PopularityRecommender().fit(train), "repeat_purchase": RepeatPurchaseRecommender().fit(train),
              "als": ALSRecommender(**cfg.als, random_state=cfg.seed).fit(train)}
    table = evaluate_next_period(models, train, test, k=C.DEFAULT_K)
    mlflow.log_params({"cf_test_from": cut.date(), **{f"als_{k}": v for k, v in cfg.als.items()}})
    metrics = {}
    for row in table.itertuples(index=False):
        for m in ("precision_at_10", "recall_at_10", "ndcg_at_10", "map_at_10", "coverage_at_10"):
            metrics[f"cf_{row.model}_{row.task}_{m}"] = getattr(row, m)
    ctx.log_metrics(metrics)
    _log_table(table.set_index(["model", "task"]), "cf/next_period.csv")
    bars = table.pivot(index="task", columns="model", values="ndcg_at_10")
    _log_figures({"ndcg_vs_baselines": plots.metric_bars(bars, "Next-period NDCG@10", "NDCG@10")}, "cf")
    t = time.perf_counter()
    ctx.als = ALSRecommender(**cfg.als, random_state=cfg.seed).fit(tx)
    ctx.log_metrics({"cf_final_fit_seconds": time.perf_counter() - t})


def stage_offers(ctx: _Context) -> None:
    cfg, ds = ctx.config, ctx.ds
    ranker = OfferRanker(als_params=cfg.als, random_state=cfg.seed).fit(
        ds, ctx.as_of, cf_model=ctx.als, churn=ctx.customers["churn_probability"], segments=ctx.customers["segment"])
    ctx.ranker = ranker
    mlflow.log_params({"redemption_model": "learned" if ranker.redemption_model_.learned_ else "heuristic",
                       "redemption_kind": ranker.redemption_kind})
    ctx.log_metrics({"offers_training_examples": ranker.training_examples_,
                     "offers_training_redemptions": ranker.redemption_model_.n_positives_})


def evaluation_campaigns(ds, as_of: pd.Timestamp, cfg: TrainConfig) -> list:
    """The campaigns the offer benchmark uses: configured, or the two latest finished campaigns
    with at least ``min_campaign_redeemers`` redeeming customers and ``min_campaign_offers``
    offers (on The Complete Journey: 8 and 13). Held-out campaigns never."""
    if ds.offer_events is None or C.CAMPAIGN_ID not in ds.offer_events:
        return []
    held = set(cfg.held_out_campaigns)
    if cfg.eval_campaigns:
        bad = held.intersection(cfg.eval_campaigns)
        if bad:
            raise ValueError(f"campaign {sorted(bad)[0]} is held out for independent evaluation")
        return list(cfg.eval_campaigns)
    ev = ds.offer_events[ds.offer_events[C.TIMESTAMP] < as_of]
    ends = ds.offers.set_index(C.OFFER_ID)[C.END_DATE]
    sent = ev[ev[C.EVENT] == "sent"]
    camp = sent.assign(_end=sent[C.OFFER_ID].map(ends)).groupby(C.CAMPAIGN_ID).agg(
        start=(C.TIMESTAMP, "min"), end=("_end", "median"))
    redeemers = ev[ev[C.EVENT] == "redeemed"].groupby(C.CAMPAIGN_ID)[C.CUSTOMER_ID].nunique()
    camp["redeemers"] = redeemers.reindex(camp.index, fill_value=0)
    camp["offers"] = sent.groupby(C.CAMPAIGN_ID)[C.OFFER_ID].nunique()
    ok = camp[(camp["end"] < as_of) & (camp["redeemers"] >= cfg.min_campaign_redeemers)
              & (camp["offers"] >= cfg.min_campaign_offers) & ~camp.index.isin(held)]
    return ok.sort_values("start").index[-2:].tolist()


def stage_evaluate(ctx: _Context) -> None:
    cfg, ds = ctx.config, ctx.ds
    campaigns = evaluation_campaigns(ds, ctx.as_of, cfg)
    mlflow.log_params({"offers_eval_campaigns": ",".join(map(str, campaigns)) or "none"})
    rows = []
    for c in campaigns:
        r = evaluate_campaign(ds, c, als_params=cfg.als, held_out=tuple(cfg.held_out_campaigns), seed=cfg.seed)
        table = r.metrics.assign(campaign=str(c))
        rows.append(table)
        ctx.log_metrics({f"offers_c{c}_{name}_recall_at_10": v for name, v in r.metrics["recall_at_10"].items()})
        if r.metrics.loc["personal_history", "recall_at_10"] > 0:
            gain, lo, hi = r.gain_interval("engine", "personal_history")
            ctx.log_metrics({f"offers_c{c}_engine_gain_vs_personal_history": gain,
                             f"offers_c{c}_engine_gain_vs_personal_history_low": lo,
                             f"offers_c{c}_engine_gain_vs_personal_history_high": hi})
    if rows:
        allc = pd.concat(rows)
        mean = allc.groupby(level=0)[["recall_at_10", "ndcg_at_10", "hit_at_10"]].mean()
        ctx.log_metrics({f"offers_{name}_{m}": v for name, row in mean.iterrows() for m, v in row.items()})
        _log_table(allc, "offers/campaign_benchmark.csv")
        bars = allc.reset_index().pivot(index="campaign", columns="ranker", values="recall_at_10")
        _log_figures({"campaign_recall": plots.metric_bars(bars, "Campaign benchmark: recall@10", "recall@10")},
                     "offers")


def stage_package(ctx: _Context) -> None:
    from mlflow.models import infer_signature

    from training.pyfunc import LoyaltyOffersModel

    cfg = ctx.config
    config = {"as_of": str(ctx.as_of.date()), "horizon_days": cfg.horizon_days, "data_source": ctx.ds.source,
              "data_fingerprint": ctx.fingerprint, "seed": cfg.seed, "trained_at": pd.Timestamp.now("UTC").isoformat(),
              "run_id": mlflow.active_run().info.run_id, "train_config": _jsonable(asdict(cfg))}
    bundle = ModelBundle(ctx.ranker, ctx.churn_model, ctx.customers, ctx.ds.offers, config,
                         {k: v for k, v in ctx.metrics.items() if k in GATE_METRICS or k.endswith("_seconds")})
    ctx.bundle = bundle
    with tempfile.TemporaryDirectory() as tmp:
        path = bundle.save(Path(tmp) / "bundle")
        example = pd.DataFrame({C.CUSTOMER_ID: ctx.customers.index[:3].tolist()})
        model = LoyaltyOffersModel()
        model.bundle = bundle
        output = model.predict(None, example, {"k": 3})
        signature = infer_signature(example, output, params={"k": C.DEFAULT_K, "channel": "", "as_of": ""})
        info = mlflow.pyfunc.log_model(name="model", python_model=LoyaltyOffersModel(), artifacts={"bundle": str(path)},
                                       signature=signature, input_example=example,
                                       pip_requirements=_requirements())
    ctx.model_uri = info.model_uri
    mlflow.log_dict(config, "bundle_config.json")


def _requirements() -> list[str]:
    from importlib.metadata import version

    return [f"{p}=={version(p)}" for p in ("mlflow", "pandas", "numpy", "scipy", "scikit-learn", "implicit",
                                           "pyarrow", "threadpoolctl")]


def _jsonable(d: dict) -> dict:
    return json.loads(json.dumps(d, default=str))


def stage_register(ctx: _Context) -> None:
    from training.registry import quality_gate, register_candidate

    version = register_candidate(ctx.model_uri, ctx.config.model_name, ctx.run_id)
    ctx.version = version
    ctx.gate = quality_gate(ctx.config.model_name, version, tolerance=ctx.config.tolerance, promote=True)
    mlflow.log_dict(ctx.gate.as_dict(), "quality_gate.json")
    status = "passed" if ctx.gate.passed else "failed"
    mlflow.set_tag("quality_gate", status)
    mlflow.tracking.MlflowClient().set_tag(ctx.run_id, "quality_gate", status)


STAGE_FUNCTIONS = {"load": stage_load, "features": stage_features, "segmentation": stage_segmentation,
                   "churn": stage_churn, "cf": stage_cf, "offers": stage_offers, "evaluate": stage_evaluate,
                   "package": stage_package, "register": stage_register}
GATE_METRICS = ("churn_model_roc_auc", "churn_model_average_precision", "offers_engine_recall_at_10",
                "cf_als_all_ndcg_at_10")


def stages_to_run(config: TrainConfig) -> list[str]:
    if config.until is not None and config.until not in STAGES:
        raise ValueError(f"unknown stage {config.until!r}; stages: {', '.join(STAGES)}")
    stages = list(STAGES[:STAGES.index(config.until) + 1]) if config.until else list(STAGES)
    if not config.register and "register" in stages:
        stages.remove("register")
    return stages


def train(config: TrainConfig, progress=None) -> TrainResult:
    """Run the stages under one parent MLflow run; ``progress(stage)`` is called as each starts."""
    stages = stages_to_run(config)
    mlflow.set_tracking_uri(tracking_uri())
    # `mlflow run` made the parent run already; forget its id once resumed, or MLflow would hand
    # the same run back to the first nested stage.
    inside_project = os.environ.pop("MLFLOW_RUN_ID", None)
    if not inside_project:
        mlflow.set_experiment(config.experiment)
    np.random.seed(config.seed)
    ctx = _Context(config)
    with (mlflow.start_run(run_id=inside_project) if inside_project else mlflow.start_run(run_name="train")) as parent:
        ctx.run_id = parent.info.run_id
        commit = _git_commit()
        mlflow.set_tags({"stages": ",".join(stages), **({"git_commit": commit} if commit else {})})
        mlflow.log_params({"seed": config.seed, "horizon_days": config.horizon_days, "data": config.data})
        for stage in stages:
            if progress is not None:
                progress(stage)
            t = time.perf_counter()
            with mlflow.start_run(run_name=stage, nested=True):
                STAGE_FUNCTIONS[stage](ctx)
                elapsed = time.perf_counter() - t
                mlflow.log_metric("seconds", elapsed)
            ctx.timings[stage] = elapsed
            mlflow.log_metric(f"stage_{stage}_seconds", elapsed)
            logger.info("stage %s: %.1f s", stage, elapsed)
        mlflow.log_metric("total_seconds", sum(ctx.timings.values()))
    return TrainResult(ctx.run_id, ctx.metrics, ctx.timings, getattr(ctx, "model_uri", None),
                       getattr(ctx, "version", None), getattr(ctx, "gate", None), getattr(ctx, "bundle", None))
