"""Offer ranking: features by brute force, no future data, planted affinity, eligibility rules,
objective, diversity, cold start, and the campaign benchmark's protocol."""

import numpy as np
import pandas as pd
import pytest
from scipy.stats import spearmanr

from recsys import constants as C
from recsys.data.dataset import Dataset
from recsys.data.validate import validate_tables
from recsys.offers import (
    OFFER_FEATURES,
    REASON_HISTORY,
    REASON_RETENTION,
    EligibilityRules,
    EventArrays,
    InvalidRequestError,
    OfferRanker,
    affinity_features,
    prepare_catalog,
    snapshot,
)
from recsys.offers.campaigns import HeldOutCampaignError, evaluate_campaign
from recsys.offers.diversity import diverse_top
from recsys.offers.examples import past_campaigns, redemption_examples
from recsys.offers.redemption import RedemptionModel

ALS_SMALL = {"factors": 16, "iterations": 10}


@pytest.fixture(scope="module")
def ds(synth):
    return Dataset(**validate_tables(synth[0])[0])


@pytest.fixture(scope="module")
def last_start(ds):
    return ds.offers[C.START_DATE].max()


@pytest.fixture(scope="module")
def ranker(ds, last_start):
    return OfferRanker(als_params=ALS_SMALL).fit(ds, as_of=last_start)


def _offer(offer_id, products, start="2024-01-01", end="2030-12-31", **extra):
    row = {
        C.OFFER_ID: offer_id,
        C.NAME: f"offer {offer_id}",
        C.OFFER_TYPE: "amount_off",
        C.VALUE: 1.0,
        C.PRODUCT_IDS: list(products),
        C.START_DATE: pd.Timestamp(start),
        C.END_DATE: pd.Timestamp(end),
    }
    row.update(extra)
    return row


def test_affinity_counts_match_brute_force(ds, last_start):
    snap = snapshot(ds.transactions, last_start, products=ds.products, offer_events=ds.offer_events)
    offers = ds.offers.head(6).reset_index(drop=True)
    catalog = prepare_catalog(snap, offers, ds.products)
    customers = snap.customer_map.ids[:25]
    feats = affinity_features(snap, catalog, snap.customer_map.positions(customers))
    many = affinity_features(snap, catalog, snap.customer_map.positions(customers[:3].tolist()))  # dense path
    np.testing.assert_allclose(many["hist_count"], feats["hist_count"][:3])
    np.testing.assert_allclose(many["hist_spend"], feats["hist_spend"][:3], rtol=1e-5)
    tx = ds.transactions[ds.transactions[C.TIMESTAMP] < last_start]
    cats = ds.products.set_index(C.PRODUCT_ID)[C.CATEGORY]
    for j, offer in offers.iterrows():
        products = (
            offer[C.PRODUCT_IDS]
            if isinstance(offer[C.PRODUCT_IDS], list)
            else cats[cats == offer[C.CATEGORY]].index.tolist()
        )
        for i, cid in enumerate(customers[:8]):
            mine = tx[(tx[C.CUSTOMER_ID] == cid) & tx[C.PRODUCT_ID].isin(products) & (tx[C.QUANTITY] > 0)]
            expected = mine.drop_duplicates([C.PRODUCT_ID, C.BASKET_ID]).shape[0]
            assert feats["hist_count"][i, j] == expected
            spend = mine.groupby([C.PRODUCT_ID, C.BASKET_ID])[C.AMOUNT].sum().clip(lower=0).sum()
            assert feats["hist_spend"][i, j] == pytest.approx(spend, rel=1e-5, abs=1e-4)


def test_features_never_see_the_future(ds, last_start):
    offers = ds.offers.head(4).reset_index(drop=True)
    cid = ds.transactions[C.CUSTOMER_ID].iloc[0]
    product = offers[C.PRODUCT_IDS].dropna().iloc[0][0]
    future = pd.DataFrame(
        {
            C.CUSTOMER_ID: [cid] * 5,
            C.PRODUCT_ID: [product] * 5,
            C.TIMESTAMP: [last_start + pd.Timedelta(hours=h) for h in range(5)],
            C.QUANTITY: 1,
            C.AMOUNT: 2.0,
            C.BASKET_ID: [f"future{h}" for h in range(5)],
        }
    )
    tx = pd.concat([ds.transactions, future], ignore_index=True)

    def feats(transactions):
        snap = snapshot(transactions, last_start, products=ds.products, offer_events=ds.offer_events)
        cat = prepare_catalog(snap, offers, ds.products)
        return affinity_features(snap, cat, snap.customer_map.positions(snap.customer_map.ids))

    a, b = feats(ds.transactions), feats(tx)
    for name in a:
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)


def test_training_examples_only_from_finished_campaigns(ds, last_start):
    camps = past_campaigns(ds.offer_events, ds.offers, last_start)
    assert len(camps) >= 3
    assert (camps["ended_at"] <= last_start).all()
    ex = redemption_examples(ds.transactions, ds.offers, ds.offer_events, last_start, products=ds.products)
    sent = ds.offer_events[
        (ds.offer_events[C.EVENT] == "sent") & ds.offer_events[C.CAMPAIGN_ID].astype("string").isin(camps["campaign"])
    ]
    assert len(ex) == len(sent.drop_duplicates([C.CUSTOMER_ID, C.OFFER_ID]))
    assert 0 < ex["redeemed"].mean() < 1


def test_p_redeem_recovers_planted_affinity(synth, ds, ranker, last_start):
    current = ds.offers[ds.offers[C.START_DATE] == last_start]
    customers = ranker.snapshot_.customer_map.ids[:200]
    _, p, cold = ranker.score(customers, ranker.prepare(current))
    truth = synth[1]["offer_affinity"].set_index([C.CUSTOMER_ID, C.OFFER_ID])["p_redeem"]
    true_p = np.array([[truth[(c, o)] for o in current[C.OFFER_ID]] for c in customers])
    assert ranker.redemption_model_.learned_
    rho = np.nanmean([spearmanr(p[i], true_p[i]).statistic for i in range(len(customers)) if not cold[i]])
    assert rho > 0.6
    # the learned model is at least as good as the heuristic it replaces
    feats, _, _ = ranker.score(customers, ranker.prepare(current))
    from recsys.offers import feature_matrix
    from recsys.offers.redemption import heuristic_p_redeem

    h = heuristic_p_redeem(feature_matrix(feats)).reshape(p.shape)
    rho_h = np.nanmean([spearmanr(h[i], true_p[i]).statistic for i in range(len(customers))])
    assert rho >= rho_h - 0.05


def test_campaign_benchmark_beats_naive_rankers(ds):
    r = evaluate_campaign(ds, 5, k=3, als_params=ALS_SMALL).metrics
    assert r.loc["engine", "recall_at_3"] > r.loc["random", "recall_at_3"] + 0.15
    assert r.loc["engine", "recall_at_3"] > r.loc["popularity", "recall_at_3"] + 0.15
    assert r.loc["personal_history", "recall_at_3"] > r.loc["random", "recall_at_3"]


def test_campaign_gain_interval_is_a_paired_bootstrap(ds):
    r = evaluate_campaign(ds, 5, k=3, als_params=ALS_SMALL)
    # per-household recall averages to the reported recall, ranker by ranker
    assert r.per_household.mean().to_numpy() == pytest.approx(r.metrics["recall_at_3"].to_numpy())
    gain, lo, hi = r.gain_interval("engine", "random", n_boot=300)
    assert gain == pytest.approx(r.metrics.loc["engine", "recall_at_3"] / r.metrics.loc["random", "recall_at_3"] - 1)
    assert lo <= gain <= hi and lo > 0  # the engine is clearly better than random
    assert r.gain_interval("engine", "engine", n_boot=50) == (0.0, 0.0, 0.0)  # same sample for both
    with pytest.raises(ValueError, match="unknown ranker 'oracle'"):
        r.gain_interval("oracle")
    with pytest.raises(ValueError, match="level must be between 0 and 1, got 95"):
        r.gain_interval(level=95)


def test_heuristic_p_redeem_rises_with_spend_and_cf_score():
    from recsys.offers.redemption import heuristic_p_redeem

    X = pd.DataFrame(0.0, index=range(4), columns=list(OFFER_FEATURES))
    X["hist_spend"] = [0.0, 10.0, 0.0, 10.0]
    X["cf_score"] = [0.0, 0.0, 0.8, 0.8]
    X["category_count"] = [50.0, 0.0, 0.0, 0.0]  # category purchases alone do not raise it
    p = heuristic_p_redeem(X)
    assert p[0] == pytest.approx(1 / (1 + np.exp(3.9)))  # about 2% with no affinity at all
    assert p[0] < p[2] < p[1] < p[3]


def test_held_out_campaign_is_refused(ds):
    with pytest.raises(HeldOutCampaignError, match="campaign 18 is held out"):
        evaluate_campaign(ds, 18)


def test_without_history_the_heuristic_is_used():
    model = RedemptionModel().fit(pd.DataFrame({"redeemed": [0, 1, 0]}))
    assert not model.learned_


def test_ranking_shape_reasons_and_bad_requests(ranker, ds, last_start):
    current = ds.offers[ds.offers[C.START_DATE] == last_start]
    cid = ranker.snapshot_.customer_map.ids[0]
    out = ranker.rank(cid, current, k=5)
    assert 1 <= len(out) <= 5
    assert [o["rank"] for o in out] == list(range(1, len(out) + 1))
    for o in out:
        assert 0 < o["p_redeem"] < 1 and o["reason"] and not o["cold_start"]
        assert o["expected_value"] == pytest.approx(o["score"])
    with pytest.raises(InvalidRequestError, match="k must be a positive integer, not 0"):
        ranker.rank(cid, current, k=0)
    with pytest.raises(InvalidRequestError, match="unknown channel 'fax'"):
        ranker.rank(cid, current, channel="fax")


def test_expected_value_orders_the_list(ranker, ds, last_start):
    current = ds.offers[ds.offers[C.START_DATE] == last_start]
    frame = ranker.rank_many(ranker.snapshot_.customer_map.ids[:30], current, k=3)
    prepared = ranker.prepare(current)
    ranker_no_div = OfferRanker(max_per_department=99, max_per_type=99)
    ranker_no_div.__dict__.update({k: v for k, v in ranker.__dict__.items() if k.endswith("_")})
    plain = ranker_no_div.rank_many(ranker.snapshot_.customer_map.ids[:30], prepared, k=3)
    for _, g in plain.groupby(C.CUSTOMER_ID):
        assert g["expected_value"].is_monotonic_decreasing
    assert set(frame.columns) == set(plain.columns)


@pytest.fixture(scope="module")
def december_state(ds):
    """Fitted attributes of a ranker as of 2024-12-01, to build rankers with other settings."""
    fitted = OfferRanker(als_params=ALS_SMALL).fit(ds, as_of=pd.Timestamp("2024-12-01"))
    return {k: v for k, v in fitted.__dict__.items() if k.endswith("_")}


def test_eligibility_rules(ranker, december_state):
    products = ranker.snapshot_.product_map.ids[:12].tolist()
    cust = ranker.snapshot_.customer_map.ids[:2].tolist()
    today = pd.Timestamp("2024-12-01")
    offers = pd.DataFrame(
        [
            _offer("ok", products[:2]),
            _offer("expired", products[:2], end="2024-11-30"),
            _offer("not_yet", products[:2], start="2024-12-02"),
            _offer("sms_only", products[:2], **{C.CHANNELS: ["sms"]}),
            _offer("segment", products[:2], **{C.SEGMENTS: ["gold"]}),
            _offer("at_risk_only", products[:2], **{C.MIN_CHURN_RISK: 0.5}),
            _offer("once", products[:2], **{C.MAX_REDEMPTIONS: 1}),
            _offer("capped", products[:2]),
            _offer("excluded", products[:2]),
        ]
    )
    ranker = OfferRanker(rules=EligibilityRules(frequency_cap=2, frequency_days=30))
    ranker.__dict__.update(december_state)
    ranker.segments_ = pd.Series({cust[0]: "gold", cust[1]: "silver"}, dtype=object)
    ranker.churn_ = pd.Series({cust[0]: 0.9, cust[1]: 0.1})
    events = pd.DataFrame(
        {
            C.CUSTOMER_ID: [cust[0], cust[0], cust[0], cust[1]],
            C.OFFER_ID: ["capped", "capped", "once", "capped"],
            C.EVENT: ["sent", "sent", "redeemed", "sent"],
            C.TIMESTAMP: [today - pd.Timedelta(days=d) for d in (1, 2, 3, 40)],
        }
    )
    prepared = ranker.prepare(offers)
    m = ranker.eligibility(pd.Index(cust), prepared, today, "email", events, exclude=["excluded"])
    got = {c: set(offers[C.OFFER_ID][m[i]]) for i, c in enumerate(cust)}
    assert got[cust[0]] == {"ok", "segment", "at_risk_only"}
    assert got[cust[1]] == {"ok", "once", "capped"}
    # the same events as arrays give the same answer
    m2 = ranker.eligibility(pd.Index(cust), prepared, today, "email", EventArrays.from_frame(events), ["excluded"])
    np.testing.assert_array_equal(m, m2)
    # the at-risk customer gets the retention offer first, with the retention reason
    top = ranker.rank(cust[0], prepared, as_of=today, channel="email", k=3, events=events)[0]
    assert top[C.OFFER_ID] == "at_risk_only" and top["reason"] == REASON_RETENTION


def test_diversity_caps_departments_unless_nothing_else_is_left(ranker, ds):
    by_dept = ds.products.groupby(C.DEPARTMENT)[C.PRODUCT_ID].agg(list)
    cid = ranker.snapshot_.customer_map.ids[0]
    rows = [
        _offer(f"d{i}", by_dept.iloc[0][i : i + 1], **{C.OFFER_TYPE: t})
        for i, t in enumerate(["amount_off", "percent_off", "bogo", "gift", "points_multiplier"])
    ]
    rows.append(_offer("other", by_dept.iloc[1][:1]))
    offers = pd.DataFrame(rows)
    r = OfferRanker(max_per_department=2, max_per_type=5)
    r.__dict__.update({k: v for k, v in ranker.__dict__.items() if k.endswith("_")})
    top3 = [o[C.OFFER_ID] for o in r.rank(cid, offers, as_of="2025-01-01", k=3)]
    assert "other" in top3  # two of the first department, then the other one
    top6 = [o[C.OFFER_ID] for o in r.rank(cid, offers, as_of="2025-01-01", k=6)]
    assert len(top6) == 6  # too few departments: filled up anyway


def test_cold_start_history_and_new_offers(ranker, ds, last_start):
    current = ds.offers[ds.offers[C.START_DATE] == last_start]
    cold = ranker.rank("someone-new", current, k=3)
    assert cold and all(o["cold_start"] for o in cold)
    # a new customer whose purchases arrived after training: features from that history
    known = ranker.snapshot_.customer_map.ids[5]
    hist = ds.transactions[ds.transactions[C.CUSTOMER_ID] == known].assign(**{C.CUSTOMER_ID: "late-joiner"})
    warm = ranker.rank("late-joiner", current, k=3, history=hist)
    assert warm and not any(o["cold_start"] for o in warm)
    # an offer on products the customer buys most, never seen in training: scored, history reason
    top_products = hist[C.PRODUCT_ID].value_counts().index[:3].tolist()
    fresh = pd.DataFrame([_offer("brand-new", top_products, start="2024-01-01", end="2030-01-01")])
    out = ranker.rank(known, pd.concat([current, fresh], ignore_index=True), k=3)
    assert out[0][C.OFFER_ID] == "brand-new" and out[0]["reason"] == REASON_HISTORY


def _greedy_reference(key, dept, blank, types, k, max_dept, max_type):
    """The diversity rule as documented, spelled out without shortcuts."""
    order = [j for j in np.argsort(-key, kind="stable") if np.isfinite(key[j])]
    per_dept, per_type, chosen, skipped = {}, {}, [], []
    for j in order:
        if (not blank[j] and per_dept.get(dept[j], 0) >= max_dept) or per_type.get(types[j], 0) >= max_type:
            skipped.append(j)
            continue
        chosen.append(j)
        per_dept[dept[j]] = per_dept.get(dept[j], 0) + 1
        per_type[types[j]] = per_type.get(types[j], 0) + 1
        if len(chosen) == k:
            break
    return chosen + skipped[: k - len(chosen)]


@pytest.mark.parametrize("n_types,n_depts", [(1, 1), (1, 4), (3, 2), (5, 8)])
def test_diversity_rule_matches_its_plain_statement(ranker, n_types, n_depts):
    rng = np.random.default_rng(n_types * 10 + n_depts)
    n = 40
    depts = np.array([f"dept{i}" for i in rng.integers(0, n_depts, n)], dtype=object)
    depts[rng.random(n) < 0.1] = ""  # no department: never capped by department
    offers = pd.DataFrame(
        [_offer(f"o{i}", [], **{C.OFFER_TYPE: f"type{t}"}) for i, t in enumerate(rng.integers(0, n_types, n))]
    )
    prepared = ranker.prepare(offers)
    prepared.department[:] = depts
    prepared.__post_init__()
    for max_dept, max_type in ((1, 1), (2, 3), (3, 4), (99, 99)):
        for _ in range(20):
            key = rng.random(n)
            key[rng.random(n) < 0.2] = -np.inf  # ineligible
            for k in (1, 5, 12, 50):
                want = _greedy_reference(
                    key, prepared.department_code, prepared.department_blank, prepared.type_code, k, max_dept, max_type
                )
                order = np.argsort(np.where(np.isfinite(key), -key, np.inf), kind="stable")
                chosen, filled = diverse_top(
                    order[: int(np.isfinite(key).sum())].tolist(), prepared, k, max_dept, max_type
                )
                assert chosen + filled == want


def test_batch_scores_equal_one_customer_at_a_time(ranker, ds, last_start):
    """Features and P(redeem) of many customers at once (the batch code paths) are those of each
    customer alone (the request code paths)."""
    from recsys.cf import cf_max_scores

    current = ds.offers[ds.offers[C.START_DATE] == last_start]
    prepared = ranker.prepare(current)
    ids = pd.Index(ranker.snapshot_.customer_map.ids[:60])
    feats, p, _cold = ranker.score(ids, prepared)
    for i in (0, 17, 59):
        f1, p1, _ = ranker.score(ids[i : i + 1], prepared)
        np.testing.assert_allclose(p1[0], p[i], rtol=1e-5)
        np.testing.assert_allclose(f1["cf_score"][0], feats["cf_score"][i], rtol=1e-5, atol=1e-5)
    vectors = ranker.cf_model_.user_factors_[:60]
    chunked = cf_max_scores(None, None, None, vectors, index=prepared.catalog.cf, chunk_cells=50)
    whole = cf_max_scores(None, None, None, vectors, index=prepared.catalog.cf)
    np.testing.assert_allclose(chunked, whole, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("kind", ["logistic", "gbm", "heuristic"])
def test_p_redeem_of_all_pairs_equals_row_by_row(ranker, ds, last_start, kind):
    from recsys.offers import OFFER_FEATURES, feature_matrix

    examples = redemption_examples(ds.transactions, ds.offers, ds.offer_events, before=last_start, products=ds.products)
    model = RedemptionModel(
        kind="logistic" if kind == "heuristic" else kind, min_positives=10**9 if kind == "heuristic" else 5, max_iter=30
    ).fit(examples)
    assert model.learned_ == (kind != "heuristic")
    current = ds.offers[ds.offers[C.START_DATE] == last_start]
    feats, _, _ = ranker.score(pd.Index(ranker.snapshot_.customer_map.ids[:25]), ranker.prepare(current))
    assert any(0 in np.asarray(feats[n]).strides for n in OFFER_FEATURES)  # broadcast features present
    want = model.predict_proba(feature_matrix(feats)).reshape(feats["hist_count"].shape)
    np.testing.assert_allclose(model.predict_pairs(feats), want, rtol=1e-9, atol=1e-12)


def test_offers_of_the_same_name_or_products_are_one_offer():
    from types import SimpleNamespace

    from recsys.offers.diversity import diverse_top
    from recsys.offers.prepared import same_offer_groups

    offers = pd.DataFrame(
        {
            "offer_id": ["a", "b", "c", "d", "e"],
            "name": ["$1 off Milk", "$1  off milk", "2x points", "20% off cheese", None],
            "product_ids": [[1, 2], None, None, [3], [3]],
        }
    )
    g = same_offer_groups(offers)
    assert g[0] == g[1]  # the same name, case and spacing aside
    assert g[3] == g[4]  # the same products
    assert len({g[0], g[2], g[3]}) == 3
    prepared = SimpleNamespace(
        department_code=[0] * 5,
        department_blank=[True] * 5,
        type_code=[0, 0, 1, 2, 2],
        group_code=g,
        n_departments=1,
        n_types=3,
        any_blank_department=True,
    )
    chosen, fill = diverse_top([0, 1, 2, 3, 4], prepared, k=5, max_per_department=5, max_per_type=5)
    assert chosen + fill == [0, 2, 3]  # one of each group, best first
    chosen, fill = diverse_top([1, 0, 4, 3, 2], prepared, k=5, max_per_department=5, max_per_type=1)
    assert sorted(g[j] for j in chosen + fill) == sorted({g[1], g[4], g[2]})
