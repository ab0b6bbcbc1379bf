"""RFM segments follow the rule table; behavioural clusters recover the planted segments."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import adjusted_rand_score

from recsys.customers.features import build_features, department_shares
from recsys.customers.segments import SEGMENT_NAMES, BehaviourSegmenter, quintile_score, rfm_segments, segment_summary

ARI_BOUND = 0.8


def test_quintile_scores():
    scores = quintile_score(pd.Series(range(1, 11)))
    assert scores.tolist() == [1, 1, 2, 2, 3, 3, 4, 4, 5, 5]
    assert quintile_score(pd.Series(range(1, 11)), higher_is_better=False).tolist() == [5, 5, 4, 4, 3, 3, 2, 2, 1, 1]


@pytest.mark.parametrize(
    "r, f, m, segment",
    [
        (5, 5, 5, "Champions"),
        (5, 4, 4, "Champions"),
        (3, 5, 4, "Loyal"),
        (4, 2, 3, "Potential loyalists"),
        (5, 1, 1, "New"),
        (4, 1, 1, "Promising"),
        (3, 3, 3, "Need attention"),
        (3, 1, 2, "About to sleep"),
        (2, 5, 5, "Can't lose them"),
        (1, 4, 3, "At risk"),
        (2, 1, 1, "Hibernating"),
        (1, 2, 2, "Hibernating"),
        (1, 1, 1, "Lost"),
    ],
)
def test_rule_table(r, f, m, segment):
    # Build 5 customers per score level so quintiles are exact, then read the one we want.
    n = 5
    rec = np.repeat([50, 40, 30, 20, 10], n)  # score 1..5 (lower recency is better)
    freq = np.repeat([1, 2, 3, 4, 5], n)
    mon = np.repeat([10, 20, 30, 40, 50], n)
    features = pd.DataFrame({"recency_days": rec, "frequency": freq, "monetary_total": mon})
    probe = pd.DataFrame(
        {"recency_days": [rec[(r - 1) * n]], "frequency": [freq[(f - 1) * n]], "monetary_total": [mon[(m - 1) * n]]},
        index=["probe"],
    )
    scored = rfm_segments(pd.concat([features, probe]))
    row = scored.loc["probe"]
    assert (row["r_score"], row["f_score"], row["m_score"]) == (r, f, m)
    assert row["segment"] == segment


def test_every_customer_gets_a_named_segment(synth):
    tables, _ = synth
    f = build_features(tables["transactions"], "2024-12-31")
    seg = rfm_segments(f)
    assert seg["segment"].isin(SEGMENT_NAMES).all()
    summary = segment_summary(f, seg)
    assert summary["customers"].sum() == len(f)
    assert summary["share"].sum() == pytest.approx(1.0)


@pytest.fixture(scope="module")
def cluster_data():
    from recsys.data.synthetic import generate

    tables, truth = generate(customers=800, products=120, seed=11)
    f = build_features(tables["transactions"], "2024-12-31", products=tables["products"])
    X = f.join(department_shares(tables["transactions"], tables["products"], "2024-12-31"))
    planted = truth["customers"].set_index("customer_id")["segment"].reindex(X.index)
    return X, planted


def test_clusters_recover_planted_segments(cluster_data):
    X, planted = cluster_data
    seg = BehaviourSegmenter(k_range=(2, 7), random_state=1).fit(X)
    ari = adjusted_rand_score(planted, seg.labels_)
    assert seg.k_ == 4
    assert ari > ARI_BOUND, f"adjusted Rand index {ari:.3f}"
    assert set(seg.silhouette_) == set(range(2, 8))
    # each profile names the department its cluster prefers
    assert seg.profiles_["description"].str.contains("high share_").all()


def test_clusters_are_stable_with_the_same_seed(cluster_data):
    X, _ = cluster_data
    a = BehaviourSegmenter(k_range=(2, 5), random_state=3).fit(X)
    b = BehaviourSegmenter(k_range=(2, 5), random_state=3).fit(X)
    assert (a.labels_ == b.labels_).all()
    pd.testing.assert_frame_equal(a.profiles_, b.profiles_)


def test_new_customers_are_assigned(cluster_data):
    X, planted = cluster_data
    train, new = X.iloc[:600], X.iloc[600:]
    seg = BehaviourSegmenter(k_range=(4, 4), random_state=0).fit(train)
    assigned = seg.predict(new)
    assert adjusted_rand_score(planted.iloc[600:], assigned) > ARI_BOUND
    # predicting training customers gives their fitted labels
    assert (seg.predict(train) == seg.labels_).all()


def test_fit_errors_name_the_problem(cluster_data):
    X, _ = cluster_data
    with pytest.raises(ValueError, match="features missing for segmentation: recency_days"):
        BehaviourSegmenter().fit(X.drop(columns=["recency_days"]))
    with pytest.raises(ValueError, match="k_range"):
        BehaviourSegmenter(k_range=(1, 3)).fit(X)
