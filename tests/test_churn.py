"""Churn labels, temporal protocol, reasons and metrics; the model finds planted churners."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import average_precision_score, roc_auc_score

from recsys.churn import (
    ChurnEvaluation,
    ChurnModel,
    churn_labels,
    evaluate,
    reasons,
    risk_band,
    rolling_backtest,
    snapshot_dates,
    training_set,
)
from recsys.churn.history import InsufficientHistoryError, required_days
from recsys.churn.model import DEFAULT_PARAMS, LOGISTIC
from recsys.customers import customer_profile as churn_features
from recsys.data.dataset import Dataset
from recsys.evaluation import (
    bootstrap_differences,
    bootstrap_interval,
    classification_metrics,
    lift_and_capture,
    weighted_ranking_metrics,
)


def tx(rows):
    return pd.DataFrame(rows, columns=["customer_id", "timestamp"]).assign(
        timestamp=lambda d: pd.to_datetime(d["timestamp"], format="ISO8601"), amount=1.0, product_id=1, quantity=1
    )


def test_labels():
    t = tx(
        [
            ("A", "2024-01-10"),
            ("A", "2024-02-10"),  # buys inside the horizon: stays
            ("B", "2024-01-05"),  # silent: churns
            ("C", "2024-01-20"),
            ("C", "2024-04-01"),  # buys only after the horizon: churns
            ("D", "2024-02-05"),
        ]
    )  # first purchase after as_of: not scored
    labels = churn_labels(t, "2024-02-01", horizon_days=30)
    assert labels.to_dict() == {"A": 0, "B": 1, "C": 1}


def test_horizon_end_is_inclusive():
    t = tx([("A", "2024-01-10"), ("A", "2024-03-02")])
    assert churn_labels(t, "2024-02-01", 30)["A"] == 0  # Mar 2 00:00 is Feb 1 + 30 days
    assert churn_labels(t, "2024-02-01", 29)["A"] == 1


def test_features_never_see_the_future(synth):
    tables, _ = synth
    t = tables["transactions"]
    as_of = pd.Timestamp("2024-07-01")
    past = t[t["timestamp"] < as_of]
    a = churn_features(t, as_of, products=tables["products"])
    b = churn_features(past, as_of, products=tables["products"])
    pd.testing.assert_frame_equal(a, b)


def test_snapshot_label_windows_must_fit_in_the_data(synth):
    tables, _ = synth
    ds = Dataset(**tables)
    with pytest.raises(ValueError, match="label window ends after the data"):
        training_set(ds, [pd.Timestamp("2024-11-01")], horizon_days=90)


def test_validation_is_later_than_training(synth):
    tables, _ = synth
    ds = Dataset(**tables)
    data = training_set(ds, snapshot_dates("2024-03-01", "2024-07-01", 14), horizon_days=60)
    model = ChurnModel(
        horizon_days=60, param_grid={"learning_rate": (0.1,), "max_leaf_nodes": (2, 7), "min_samples_leaf": (20,)}
    ).fit(data)
    assert model.validation_snapshot_ == max(data["snapshot"])
    assert all(s + pd.Timedelta(days=60) <= model.validation_snapshot_ for s in model.train_snapshots_)
    assert len(model.validation_scores_) == 2


def test_one_grid_point_sets_no_snapshot_aside(synth):
    tables, _ = synth
    data = training_set(Dataset(**tables), snapshot_dates("2024-03-01", "2024-07-01", 14), horizon_days=60)
    model = ChurnModel(
        horizon_days=60, param_grid={"learning_rate": (0.1,), "max_leaf_nodes": (7,), "min_samples_leaf": (20,)}
    ).fit(data)
    assert model.validation_snapshot_ is None and model.validation_scores_ == []
    assert model.train_snapshots_ == sorted(data["snapshot"].unique())


@pytest.mark.parametrize(
    ("as_of", "mode"),
    [("2024-12-31", "full"), ("2024-04-20", "default_parameters"), ("2024-03-20", "not_evaluated")],
)
def test_short_histories_degrade_and_say_so(synth, as_of, mode):
    """30-day horizon: full needs 28 + 3×30 = 118 days, an evaluation 28 + 2×30 = 88, a model 58."""
    tables, _ = synth
    ds = Dataset(**tables)
    as_of = pd.Timestamp(as_of)
    bt = rolling_backtest(ds, as_of, horizon_days=30)
    assert bt.mode == mode
    assert max(bt.snapshots) + pd.Timedelta(days=30) <= as_of  # no label from after as_of
    if mode == "full":
        assert bt.notes == () and (len(bt.final.best_params_) == 3 or bt.final.best_params_ == LOGISTIC)
    else:
        assert bt.final.best_params_ == DEFAULT_PARAMS
        assert any(("not tuned" if mode == "default_parameters" else "evaluation skipped") in n for n in bt.notes)
    if mode == "not_evaluated":
        assert bt.evaluation is None and bt.model is None
    else:  # the model still beats chance at finding who churned after the evaluation snapshot
        assert bt.evaluation.metrics["model"]["roc_auc"] > 0.6
    risk = bt.final.predict_risk(bt.data[bt.data["snapshot"] == max(bt.snapshots)])
    assert risk.between(0, 1).all() and risk.nunique() > 1


def test_too_short_a_history_is_refused_with_the_minimum(synth):
    tables, _ = synth
    with pytest.raises(InsufficientHistoryError, match="needs at least 118 days") as info:
        rolling_backtest(Dataset(**tables), pd.Timestamp("2024-04-01"), horizon_days=90)
    assert "--horizon-days" in str(info.value)
    assert required_days(90) == {"full": 298, "default_parameters": 208, "not_evaluated": 118}


def test_model_finds_planted_churners(synth):
    """Against the ground truth: customers planted to stop buying before the horizon ends."""
    tables, truth = synth
    ds = Dataset(**tables)
    horizon = 60
    train = training_set(ds, snapshot_dates("2024-03-01", "2024-07-15", 7), horizon_days=horizon)
    model = ChurnModel(horizon_days=horizon).fit(train)
    as_of = pd.Timestamp("2024-09-15")
    ev = training_set(ds, [as_of], horizon_days=horizon)
    result = evaluate(model, ev, train)
    # Planted churners who had stopped by as_of against customers planted never to churn.
    planted = truth["customers"].set_index("customer_id").reindex(ev["customer_id"])
    gone = (planted["churned"] & (planted["churn_date"] <= as_of)).to_numpy()
    keep = gone | ~planted["churned"].to_numpy()
    auc_truth = roc_auc_score(gone[keep], result.scores["model"].to_numpy()[keep])
    assert auc_truth > 0.9, f"AUC against planted churners {auc_truth:.3f}"
    assert result.metrics["model"]["roc_auc"] > 0.85
    assert {"roc_auc", "average_precision", "brier", "lift_top10", "capture_top20"} <= set(result.metrics["model"])
    assert len(result.calibration) > 0


def test_lift_and_capture():
    y = np.array([1, 1, 0, 0, 0, 0, 0, 0, 0, 1])
    score = np.arange(10, 0, -1, dtype=float)  # first is the riskiest
    lift, capture = lift_and_capture(y, score, 0.2)
    assert lift == pytest.approx(1.0 / 0.3)  # top 2 all churners; base rate 0.3
    assert capture == pytest.approx(2 / 3)
    m = classification_metrics(y, score / 10)
    assert m["lift_top20"] == pytest.approx(lift) and "brier" in m


def test_bootstrap_differences_tell_a_real_gap_from_none():
    rng = np.random.default_rng(3)
    y = (rng.random(600) < 0.15).astype(int)
    good = y + rng.normal(0, 0.5, 600)  # separates churners well
    noise = rng.random(600)
    d = bootstrap_differences(y, {"model": good, "same": good.copy(), "noise": noise}, n_boot=200).set_index(
        ["baseline", "metric"]
    )
    same, vs_noise = d.loc["same"], d.loc["noise"]
    assert (same[["difference", "low", "high"]].to_numpy() == 0).all()
    assert (vs_noise["low"] > 0).all()  # the whole interval above zero
    assert vs_noise.loc["roc_auc", "difference"] == pytest.approx(roc_auc_score(y, good) - roc_auc_score(y, noise))
    assert (vs_noise["low"] <= vs_noise["difference"]).all() and (vs_noise["difference"] <= vs_noise["high"]).all()
    with pytest.raises(ValueError, match="reference 'gbm' is not among the scores"):
        bootstrap_differences(y, {"model": good}, reference="gbm")
    lo, hi = bootstrap_interval(y, good, "roc_auc", n_boot=200)
    assert lo < roc_auc_score(y, good) < hi and hi - lo < 0.2
    lo, hi = bootstrap_interval(y, noise, "roc_auc", n_boot=200)
    assert lo < 0.5 < hi  # chance
    with pytest.raises(ValueError, match="metric must be one of roc_auc, average_precision"):
        bootstrap_interval(y, good, "brier")
    with pytest.raises(ValueError, match="both churners and stayers"):
        bootstrap_interval(np.zeros(50, int), good[:50], n_boot=20)


def test_evaluation_intervals_are_the_bootstrap_functions_on_one_set_of_resamples():
    rng = np.random.default_rng(4)
    y = (rng.random(500) < 0.1).astype(int)
    scores = {"model": y + rng.normal(0, 0.7, 500), "recency_rule": y + rng.normal(0, 1.5, 500)}
    result = ChurnEvaluation(
        pd.Timestamp("2024-01-01"),
        {n: classification_metrics(y, s) for n, s in scores.items()},
        pd.DataFrame(),
        pd.DataFrame(),
        pd.DataFrame({"churned": y, **scores}),
    )
    ci = result.intervals(n_boot=200)
    d = bootstrap_differences(y, scores, n_boot=200).set_index(["baseline", "metric"])
    for metric in ("roc_auc", "average_precision"):
        assert (ci[f"model_{metric}_low"], ci[f"model_{metric}_high"]) == pytest.approx(
            bootstrap_interval(y, scores["model"], metric, n_boot=200)
        )
        key = f"model_minus_recency_rule_{metric}"
        assert [ci[key], ci[f"{key}_low"], ci[f"{key}_high"]] == pytest.approx(
            d.loc[("recency_rule", metric), ["difference", "low", "high"]].tolist()
        )
        assert ci[f"{key}_low"] > 0  # the model separates churners far better


def test_weighted_ranking_metrics_equal_scikit_learn_on_each_resample():
    rng = np.random.default_rng(5)
    y = (rng.random(300) < 0.2).astype(int)
    scores = {
        "continuous": y + rng.normal(0, 1, 300),
        "tied": np.round(y + rng.normal(0, 1, 300)),
        "days": rng.integers(0, 5, 300).astype(float),
    }  # few distinct values: ties everywhere
    draws = rng.integers(0, 300, size=(20, 300))
    counts = np.stack([np.bincount(d, minlength=300) for d in draws])
    for score in scores.values():
        got = weighted_ranking_metrics(y, score, counts)
        for i, d in enumerate(draws):
            assert got["roc_auc"][i] == pytest.approx(roc_auc_score(y[d], score[d]), abs=1e-12)
            assert got["average_precision"][i] == pytest.approx(average_precision_score(y[d], score[d]), abs=1e-12)


def test_risk_bands():
    assert risk_band([0.1, 0.2, 0.39, 0.4, 0.95]).tolist() == ["low", "medium", "medium", "high", "high"]
    assert risk_band([0.5], bands={"low": 0.0, "medium": 0.2, "high": 0.4}).tolist() == ["high"]
    assert risk_band([0.5, 0.05], bands={"low": 0.0, "high": 0.1}).tolist() == ["high", "low"]
    with pytest.raises(ValueError, match="start at 0 and rise"):
        risk_band([0.5], bands={"low": 0.0, "medium": 0.6, "high": 0.3})


def customer(**over):
    base = {
        "recency_days": 3.0,
        "gap_mean_days": 7.0,
        "overdue_ratio": 3 / 7,
        "trend_90d": 0.0,
        "frequency": 30,
        "spend_30d": 120.0,
        "tenure_days": 300.0,
        "monetary_total": 1200.0,
        "p_alive": 0.98,
    }
    base.update(over)
    return base


def test_reasons_on_constructed_customers():
    f = pd.DataFrame(
        [
            customer(recency_days=45.0, overdue_ratio=45 / 7, spend_30d=0.0, p_alive=0.2),  # lapsed regular
            customer(trend_90d=-0.6),  # fading
            customer(
                recency_days=80.0,
                gap_mean_days=np.nan,
                overdue_ratio=np.nan,
                frequency=1,
                tenure_days=80.0,
                monetary_total=20.0,
                spend_30d=0.0,
            ),  # one-off
            customer(),  # healthy
        ],
        index=["lapsed", "fading", "oneoff", "healthy"],
    )
    r = reasons(f)
    assert r["lapsed"][0] == "no purchase for 45 days; usually buys every 7 days"
    assert any("P(alive) 0.20" in s for s in r["lapsed"]) and len(r["lapsed"]) == 3
    assert r["fading"][0] == "visits down 60% in the last 90 days vs the 90 before"
    assert r["oneoff"][0] == "one visit only, 80 days ago"
    assert r["healthy"] == ["buys regularly: last purchase 3 days ago, usually every 7 days"]


def test_too_few_churners_is_a_clear_error(synth):
    tables, _ = synth
    ds = Dataset(**tables)
    # early snapshots of the synthetic year: almost nobody has churned yet
    data = training_set(ds, snapshot_dates("2024-02-01", "2024-03-15", 7), horizon_days=14)
    data["churned"] = 0
    data.loc[data.index[:2], "churned"] = 1
    with pytest.raises(ValueError, match=r"hold \d+ churners among \d+ customers; a churn model needs at least 5"):
        ChurnModel(horizon_days=14).fit(data)
