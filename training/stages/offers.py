"""Stages cf, offers and evaluate: collaborative filtering against its baselines, the offer
ranker, and the ranker on the latest finished campaigns."""

from __future__ import annotations

import dataclasses
import logging
import time
from dataclasses import dataclass

import mlflow
import pandas as pd

from recsys import constants as C
from recsys.cf import (
    ALSRecommender,
    PopularityRecommender,
    RepeatPurchaseRecommender,
    evaluate_next_period,
    next_period_cut,
)
from recsys.constants import at_k
from recsys.incrementality import has_control_groups
from recsys.offers import OfferRanker, evaluate_campaign, evaluation_campaigns
from recsys.offers.campaigns import CAMPAIGN_METRICS
from recsys.reporting import plots
from recsys.reporting.lift import lift_report
from training.config import TrainConfig
from training.stages.churn import Churn
from training.stages.customers import Loaded
from training.tracking import Tracker

logger = logging.getLogger(__name__)

CF_METRICS = ("precision", "recall", "ndcg", "map", "coverage")  # logged per model and task, @k


@dataclass(frozen=True)
class CF:
    als: ALSRecommender  # fitted on everything before as_of
    next_period: pd.DataFrame  # the next-period evaluation table


@dataclass(frozen=True)
class Offers:
    ranker: OfferRanker


@dataclass(frozen=True)
class Evaluation:
    campaigns: list  # the campaigns evaluated (none: no finished campaign with enough redemptions)
    table: pd.DataFrame | None  # per campaign and ranker: recall, NDCG, hit @k
    lift: pd.DataFrame | None = None  # measured lift per offer and campaign with a control group


def cf(cfg: TrainConfig, track: Tracker, load: Loaded) -> CF:
    ds = load.ds
    # the run's basket lines seen before as_of; every model before the test period fits on a
    # view of them, and the test period is a view too
    lines = load.lines.before(load.as_of)
    cut = next_period_cut(lines, cfg.cf_test_days)
    train = lines.before(cut)
    models = {
        "popularity": PopularityRecommender().fit(train),
        "repeat_purchase": RepeatPurchaseRecommender().fit(train),
        "als": ALSRecommender(**cfg.als, random_state=cfg.seed).fit(train),
    }
    table = evaluate_next_period(models, train, lines.since(cut), k=C.DEFAULT_K)
    t = time.perf_counter()
    als = ALSRecommender(**cfg.als, random_state=cfg.seed).fit(lines)
    final_fit = time.perf_counter() - t
    lines.release()
    del models
    track.log_params({"cf_test_from": cut.date(), **{f"als_{k}": v for k, v in cfg.als.items()}}, parent=False)
    track.log_metrics(
        {
            f"cf_{row.model}_{row.task}_{at_k(m)}": getattr(row, at_k(m))
            for row in table.itertuples(index=False)
            for m in CF_METRICS
        }
    )
    track.log_table(table.set_index(["model", "task"]), "cf/next_period.csv")
    bars = table.pivot(index="task", columns="model", values=at_k("ndcg"))
    note = f"{ds.source}; trained before {cut:%Y-%m-%d}, tested on the {cfg.cf_test_days} days from then"
    track.log_figures(
        {
            "ndcg_vs_baselines": plots.metric_bars(
                bars, f"Next-period NDCG@{C.DEFAULT_K}", f"NDCG@{C.DEFAULT_K}", note=note
            )
        },
        "cf",
    )
    track.log_metrics({"cf_final_fit_seconds": final_fit})
    return CF(als, table)


def offers(cfg: TrainConfig, track: Tracker, load: Loaded, churn: Churn, cf: CF) -> Offers:
    customers = churn.customers
    ranker = OfferRanker(als_params=cfg.als, max_examples=cfg.max_examples, random_state=cfg.seed).fit(
        load.ds,
        load.as_of,
        cf_model=cf.als,
        churn=customers["churn_probability"],
        segments=customers["segment"],
        lines=load.lines,
    )
    track.log_params(
        {
            "redemption_model": "learned" if ranker.redemption_model_.learned_ else "heuristic",
            "redemption_kind": ranker.redemption_kind,
        },
        parent=False,
    )
    track.log_metrics(
        {
            "offers_training_examples": ranker.training_examples_,
            "offers_training_redemptions": ranker.redemption_model_.n_positives_,
            "offers_training_negative_rate": ranker.redemption_model_.negative_rate_,
        }
    )
    return Offers(ranker)


def evaluate(cfg: TrainConfig, track: Tracker, load: Loaded) -> Evaluation:
    """The campaign benchmark of the ranker and, where the data hold control groups, the lift."""
    campaigns, table = _campaign_benchmark(cfg, track, load)
    return Evaluation(campaigns, table, _lift(cfg, track, load))


def _lift(cfg: TrainConfig, track: Tracker, load: Loaded) -> pd.DataFrame | None:
    """Lift against the randomised control groups (held_out events), logged as a table, a figure
    and per group its incremental profit; None without control groups."""
    if not has_control_groups(load.ds.offer_events):
        track.log_params({"lift": "no control groups in the data: lift not measured"}, parent=False)
        return None
    experiment = dataclasses.replace(load.ds, transactions=load.experiment)  # the experiments' customers
    rep = lift_report(experiment, window_days=cfg.lift_window_days, last=load.last)
    table = rep.tables["lift"].reset_index()
    measured = table[table["control"] > 0]
    track.log_metrics(
        {
            f"lift_{lvl}_{g}_incremental_profit{part}": r[f"incremental_profit{part}"]
            for lvl, g, (_, r) in zip(measured["level"], measured["group"], measured.iterrows())
            for part in ("", "_low", "_high")
        }
    )
    track.log_table(rep.tables["lift"], "lift/lift.csv")
    track.log_figures(rep.figures, "lift")
    return table


def _campaign_benchmark(cfg: TrainConfig, track: Tracker, load: Loaded) -> tuple[list, pd.DataFrame | None]:
    ds, recall = load.ds, at_k("recall")
    campaigns = evaluation_campaigns(
        ds,
        load.as_of,
        configured=cfg.eval_campaigns,
        held_out=load.held_out,
        min_redeemers=cfg.min_campaign_redeemers,
        min_offers=cfg.min_campaign_offers,
    )
    mlflow.log_params({"offers_eval_campaigns": ",".join(map(str, campaigns)) or "none"})
    rows, low, high = [], {}, {}
    for c in campaigns:
        r = evaluate_campaign(
            ds,
            c,
            als_params=cfg.als,
            held_out=tuple(load.held_out),
            seed=cfg.seed,
            lines=load.lines,
            max_examples=cfg.max_examples,
        )
        rows.append(r.metrics.assign(campaign=str(c)))
        for name in r.metrics.index:
            low.setdefault(name, {})[str(c)], high.setdefault(name, {})[str(c)] = r.recall_interval(name)
        track.log_metrics({f"offers_c{c}_{name}_{recall}": v for name, v in r.metrics[recall].items()})
        if r.metrics.loc["personal_history", recall] > 0:
            gain, lo, hi = r.gain_interval("engine", "personal_history")
            key = f"offers_c{c}_engine_gain_vs_personal_history"
            track.log_metrics({key: gain, f"{key}_low": lo, f"{key}_high": hi})
    if not rows:
        logger.warning(
            "offer evaluation skipped: no finished campaign before %s with %d redeemers and %d offers (held out: %s)",
            f"{load.as_of:%Y-%m-%d}",
            cfg.min_campaign_redeemers,
            cfg.min_campaign_offers,
            ",".join(map(str, load.held_out)) or "none",
        )
        return campaigns, None
    allc = pd.concat(rows)
    mean = allc.groupby(level=0)[[at_k(m) for m in CAMPAIGN_METRICS]].mean()
    track.log_metrics({f"offers_{name}_{m}": v for name, row in mean.iterrows() for m, v in row.items()})
    track.log_table(allc, "offers/campaign_benchmark.csv")
    bars = allc.reset_index().pivot(index="campaign", columns="ranker", values=recall)
    track.log_figures(
        {
            "campaign_recall": plots.metric_bars(
                bars,
                f"Campaign benchmark: recall@{C.DEFAULT_K} of the redeemed coupons",
                f"recall@{C.DEFAULT_K}",
                errors={name: (low[name], high[name]) for name in bars.columns},
                note=f"{load.ds.source}; each campaign ranked as of its first send",
            )
        },
        "offers",
    )
    return campaigns, allc
