"""Churn model on The Complete Journey, development split: quality beside baselines and speed.

Train on snapshots every 7 days from 2017-02-01 whose 90-day label windows end by the
evaluation date; evaluate at 2017-10-01 with the 90-day horizon. Targets (issue): ROC-AUC >= 0.88
and average precision >= 0.40, beating every baseline; training with backtest under 60 s;
scoring every customer under 1 s.

    python benchmarks/churn.py [--data DIR]
"""

from __future__ import annotations

import argparse
import time

import pandas as pd

from recsys.churn import ChurnModel, evaluate, score_customers, snapshot_dates, training_set
from recsys.customers.segments import rfm_segments
from recsys.data import load_dataset
from recsys.data.completejourney import build_tables
from recsys.data.dataset import Dataset
from recsys.data.validate import validate_tables

EVAL_AT = pd.Timestamp("2017-10-01")
HORIZON = 90


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", help="an imported Complete Journey directory (built in memory if absent)")
    parser.add_argument("--every", type=int, default=7, help="days between training snapshots")
    parser.add_argument("--bootstrap", type=int, default=500, help="resamples for the intervals of the differences")
    args = parser.parse_args()
    ds = load_dataset(args.data) if args.data else Dataset(**validate_tables(build_tables())[0])
    t0 = time.perf_counter()
    last_train = EVAL_AT - pd.Timedelta(days=HORIZON)
    train = training_set(ds, snapshot_dates("2017-02-01", last_train, args.every), HORIZON)
    evaluation = training_set(ds, [EVAL_AT], HORIZON)
    t1 = time.perf_counter()
    model = ChurnModel(horizon_days=HORIZON).fit(train)
    t2 = time.perf_counter()
    segments = rfm_segments(evaluation.set_index("customer_id"))["segment"]
    result = evaluate(model, evaluation, train, segments)
    features = evaluation.set_index("customer_id")
    t3 = time.perf_counter()
    scored = score_customers(model, features)
    t4 = time.perf_counter()
    print(
        f"training snapshots: {train['snapshot'].nunique()} ({train['snapshot'].min():%Y-%m-%d} .. "
        f"{train['snapshot'].max():%Y-%m-%d}), {len(train):,} rows; evaluation {EVAL_AT:%Y-%m-%d}, "
        f"{len(evaluation):,} customers, churn rate {evaluation['churned'].mean():.3f}"
    )
    print(f"chosen: {model.best_params_}")
    print(f"{'model':<14}{'ROC-AUC':>9}{'AP':>8}{'Brier':>8}{'lift@10':>9}{'cap@10':>8}{'lift@20':>9}{'cap@20':>8}")
    for name, m in result.metrics.items():
        print(
            f"{name:<14}{m['roc_auc']:>9.4f}{m['average_precision']:>8.4f}{m.get('brier', float('nan')):>8.4f}"
            f"{m['lift_top10']:>9.2f}{m['capture_top10']:>8.3f}{m['lift_top20']:>9.2f}{m['capture_top20']:>8.3f}"
        )
    print(f"beats every baseline on ROC-AUC and AP: {result.beats_baselines()}")
    t5 = time.perf_counter()
    ci = result.intervals(n_boot=args.bootstrap)
    for metric in ("roc_auc", "average_precision"):
        print(
            f"model {metric}: {result.metrics['model'][metric]:.4f}, 95% bootstrap interval "
            f"[{ci[f'model_{metric}_low']:.4f}, {ci[f'model_{metric}_high']:.4f}]"
        )
    print(f"model minus baseline, paired bootstrap ({args.bootstrap} resamples of the customers), 95% interval:")
    for name in result.metrics:
        for metric in ("roc_auc", "average_precision"):
            key = f"model_minus_{name}_{metric}"
            if key in ci:
                print(f"  {name:<13}{metric:<18}{ci[key]:+.4f}  [{ci[key + '_low']:+.4f}, {ci[key + '_high']:+.4f}]")
    print(f"bootstrap intervals ({args.bootstrap} resamples, every scorer): {time.perf_counter() - t5:.2f} s")
    print(
        f"time: training sets {t1 - t0:.1f} s, fit {t2 - t1:.1f} s (training with backtest {t3 - t0:.1f} s, "
        f"target < 60 s); scoring {len(scored):,} customers {t4 - t3:.3f} s (target < 1 s)"
    )


if __name__ == "__main__":
    main()
