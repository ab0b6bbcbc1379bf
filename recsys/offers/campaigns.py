"""Offline evaluation of offer ranking on a real campaign's redemptions.

For one campaign: everything is fitted on data before the campaign's first send; then, for each
recipient who redeemed at least one of the campaign's offers, the campaign's offers are ranked
and the redeemed ones are the relevant items. Rankers compared: random, offer popularity (share
of customers buying the offer's products), personal history (own purchases of the offer's
products, ties by popularity), ALS alone (mean CF score of the offer's products) and the engine
(the learned P(redeem)).

Held-out campaigns (``recsys.constants.CJ_HELD_OUT_CAMPAIGNS`` for The Complete Journey) are
refused unless the caller passes ``held_out_ok=True``, which no tuning code does.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from recsys import constants as C
from recsys.cf import ALSRecommender
from recsys.constants import at_k
from recsys.data.lines import BasketLines
from recsys.data.windows import before
from recsys.evaluation.bootstrap import paired_ratio_interval, percentile_interval, resample_counts
from recsys.evaluation.ranking import user_metrics
from recsys.offers.catalog import prepare_catalog
from recsys.offers.examples import MAX_EXAMPLES, redemption_examples
from recsys.offers.features import affinity_features, feature_matrix
from recsys.offers.redemption import RedemptionModel
from recsys.offers.snapshot import basket_lines, snapshot

logger = logging.getLogger(__name__)


CAMPAIGN_METRICS = ("recall", "ndcg", "hit")  # per ranker, @k
RANKERS = ("random", "popularity", "personal_history", "als", "engine")


class HeldOutCampaignError(ValueError):
    """Raised when a held-out campaign is asked for in development."""


@dataclass
class CampaignResult:
    campaign: object
    start: pd.Timestamp
    metrics: pd.DataFrame  # one row per ranker
    households: int
    offers: int
    training_examples: int
    training_redemptions: int
    per_household: pd.DataFrame | None = None  # recall@k per redeeming household (rows), per ranker (columns)

    def recall_interval(
        self, ranker: str, n_boot: int = 1000, level: float = 0.95, seed: int = C.SEED
    ) -> tuple[float, float]:
        """The 95% bootstrap interval of ``ranker``'s recall@k, households resampled."""
        if self.per_household is None or ranker not in self.per_household:
            raise ValueError(f"unknown ranker {ranker!r}")
        return _recall_interval(self.per_household[ranker], n_boot, level, seed)

    def gain_interval(
        self,
        ranker: str = "engine",
        baseline: str = "personal_history",
        n_boot: int = 1000,
        level: float = 0.95,
        seed: int = C.SEED,
    ) -> tuple[float, float, float]:
        """Relative recall@k gain of ``ranker`` over ``baseline`` and its paired bootstrap interval.

        Households are resampled with replacement, the same sample for both rankers. A campaign
        has one or two hundred redeeming households, so a few points of gain are within noise.
        """
        if self.per_household is None:
            raise ValueError("this result holds no per-household recall; evaluate_campaign keeps it")
        for name in (ranker, baseline):
            if name not in self.per_household:
                raise ValueError(f"unknown ranker {name!r}; known: {', '.join(self.per_household.columns)}")
        if self.per_household[baseline].sum() == 0:
            raise ValueError(f"{baseline!r} has recall 0: a relative gain over it is undefined")
        return paired_ratio_interval(
            self.per_household[ranker].to_numpy(), self.per_household[baseline].to_numpy(), n_boot, level, seed
        )


def _recall_interval(
    per_household: pd.Series, n_boot: int = 1000, level: float = 0.95, seed: int = C.SEED
) -> tuple[float, float]:
    """The percentile bootstrap interval of a ranker's mean recall over households."""
    x = per_household.to_numpy(dtype=np.float64)
    means = np.concatenate([counts @ x / len(x) for counts in resample_counts(len(x), n_boot, seed)])
    return percentile_interval(means, level)


def campaign_frame(offer_events: pd.DataFrame, campaign) -> tuple[pd.Timestamp, list, pd.DataFrame]:
    """(first send time, offer ids, redeemed (customer, offer) pairs) of a campaign."""
    ev = offer_events[offer_events[C.CAMPAIGN_ID] == campaign]
    sent = ev[ev[C.EVENT] == "sent"]
    if sent.empty:
        raise ValueError(f"campaign {campaign!r}: no offers sent in offer_events")
    redeemed = ev[ev[C.EVENT] == "redeemed"][[C.CUSTOMER_ID, C.OFFER_ID]].drop_duplicates()
    return sent[C.TIMESTAMP].min(), sorted(sent[C.OFFER_ID].unique()), redeemed


def evaluate_campaign(
    ds,
    campaign,
    *,
    k: int = C.DEFAULT_K,
    als_params: dict | None = None,
    held_out: tuple = C.CJ_HELD_OUT_CAMPAIGNS,
    held_out_ok: bool = False,
    seed: int = C.SEED,
    lines: BasketLines | None = None,
    max_examples: int | None = MAX_EXAMPLES,
) -> CampaignResult:
    """Every ranker on one campaign's redeeming households (see the module's docstring);
    ``lines``: ``ds.transactions``' basket lines if held (the transactions are then not read);
    ``max_examples``: the redemption model's, as ``OfferRanker``'s."""
    if campaign in held_out and not held_out_ok:
        raise HeldOutCampaignError(
            f"campaign {campaign} is held out for independent evaluation; "
            f"develop on {', '.join(map(str, C.CJ_DEV_CAMPAIGNS))}"
        )
    if lines is None:
        options = {"k": k, "als_params": als_params, "held_out_ok": True, "seed": seed, "max_examples": max_examples}
        with basket_lines(ds.transactions) as own:
            return evaluate_campaign(ds, campaign, lines=own, **options)
    start, offer_ids, redeemed = campaign_frame(ds.offer_events, campaign)
    # the lines through a view ending at the campaign's first send
    events, lines = before(ds.offer_events, start), lines.before(start)
    cf = ALSRecommender(**(als_params or {})).fit(lines)
    sampling = {"max_examples": max_examples, "random_state": seed}
    examples = redemption_examples(
        None, ds.offers, events, start, products=ds.products, cf_model=cf, lines=lines, **sampling
    )
    households = pd.Index(sorted(redeemed[C.CUSTOMER_ID].unique()))
    known = {"products": ds.products, "offer_events": events, "product_map": cf.product_map_, "lines": lines}
    snap = snapshot(None, start, customers=households, **known)  # the redeeming households' rows alone
    lines.release()
    model = RedemptionModel(random_state=seed).fit(examples)
    offers = ds.offers.set_index(C.OFFER_ID).loc[offer_ids].reset_index()
    catalog = prepare_catalog(snap, offers, ds.products, cf)
    feats = affinity_features(snap, catalog, snap.customer_map.positions(households), cf_model=cf)
    scores = _ranker_scores(feats, model, (len(households), len(offers)), seed)
    relevant = redeemed.groupby(C.CUSTOMER_ID)[C.OFFER_ID].agg(set).reindex(households)
    table, per_household = _campaign_metrics(scores, np.asarray(offer_ids, dtype=object), households, relevant, k)
    return CampaignResult(
        campaign,
        start,
        table,
        len(households),
        len(offers),
        len(examples),
        int(examples["redeemed"].sum()) if len(examples) else 0,
        per_household,
    )


def _campaign_metrics(scores: dict, ids: np.ndarray, households: pd.Index, relevant: pd.Series, k: int):
    """Each ranker's metrics@k (a table by ranker) and each household's recall per ranker."""
    rows, per_household = [], {}
    for name, s in scores.items():
        order = np.argsort(-np.asarray(s), axis=1, kind="stable")[:, :k]
        rec = [ids[o].tolist() for o in order]
        # One row per household (all NaN when it redeemed none of these offers), averaged as
        # ranking_metrics does: over households with a relevant offer.
        per = pd.DataFrame(
            [user_metrics(r, rel, k) or {} for r, rel in zip(rec, relevant)],
            columns=["recall", "ndcg", "hit"],
            index=households,
        )
        m = per.mean()
        rows.append({"ranker": name, **{at_k(metric, k): m[metric] for metric in CAMPAIGN_METRICS}})
        per_household[name] = per["recall"]
    return pd.DataFrame(rows).set_index("ranker"), pd.DataFrame(per_household, index=households).dropna()


def _ranker_scores(feats: dict, model: RedemptionModel, shape: tuple[int, int], seed: int) -> dict[str, np.ndarray]:
    """Each ranker's households x offers scores (RANKERS): the baselines from the features, the
    engine from P(redeem)."""
    rng = np.random.default_rng(seed)
    pop = feats["product_popularity"] + 1e-3 * feats["offer_products"]
    return {
        "random": rng.random(shape),
        "popularity": pop,
        "personal_history": feats["hist_count"] + pop / (pop.max() + 1.0),
        "als": feats["cf_score"],
        "engine": model.predict_proba(feature_matrix(feats)).reshape(shape),
    }


def hold_out_events(ds, campaigns) -> tuple[object, int]:
    """The dataset without the offer events of held-out campaigns, and how many were dropped:
    nothing is learned from their outcomes, so they stay fit for an independent evaluation."""
    ev = ds.offer_events
    if not campaigns or ev is None or C.CAMPAIGN_ID not in ev:
        return ds, 0
    keep = ~ev[C.CAMPAIGN_ID].isin(list(campaigns))
    return replace(ds, offer_events=ev[keep].reset_index(drop=True)), int((~keep).sum())


def evaluation_campaigns(
    ds,
    as_of: pd.Timestamp,
    *,
    configured: tuple | None = None,
    held_out: tuple = C.CJ_HELD_OUT_CAMPAIGNS,
    min_redeemers: int = 20,
    min_offers: int = 20,
) -> list:
    """The campaigns the offer benchmark uses: configured, or the two latest finished campaigns
    with at least ``min_redeemers`` redeeming customers and ``min_offers``
    offers (on The Complete Journey: 8 and 13). Held-out campaigns never."""
    if ds.offer_events is None or C.CAMPAIGN_ID not in ds.offer_events:
        return []
    held = set(held_out)
    if configured:
        bad = held.intersection(configured)
        if bad:
            raise HeldOutCampaignError(f"campaign {sorted(bad)[0]} is held out for independent evaluation")
        return list(configured)
    ev = ds.offer_events[ds.offer_events[C.TIMESTAMP] < as_of]
    ends = ds.offers.set_index(C.OFFER_ID)[C.END_DATE]
    sent = ev[ev[C.EVENT] == "sent"]
    camp = (
        sent.assign(_end=sent[C.OFFER_ID].map(ends))
        .groupby(C.CAMPAIGN_ID)
        .agg(start=(C.TIMESTAMP, "min"), end=("_end", "median"))
    )
    redeemers = ev[ev[C.EVENT] == "redeemed"].groupby(C.CAMPAIGN_ID)[C.CUSTOMER_ID].nunique()
    camp["redeemers"] = redeemers.reindex(camp.index, fill_value=0)
    camp["offers"] = sent.groupby(C.CAMPAIGN_ID)[C.OFFER_ID].nunique()
    ok = camp[
        (camp["end"] < as_of)
        & (camp["redeemers"] >= min_redeemers)
        & (camp["offers"] >= min_offers)
        & ~camp.index.isin(held)
    ]
    return ok.sort_values("start").index[-2:].tolist()


def held_out_for(ds, asked: tuple | None) -> tuple:
    """The campaigns held back: those asked for, or by default The Complete Journey's (recognised
    by its importer's marker) and none of any other dataset."""
    from recsys.data.completejourney import is_completejourney

    if asked is not None:
        return tuple(asked)
    return C.CJ_HELD_OUT_CAMPAIGNS if is_completejourney(ds) else ()
