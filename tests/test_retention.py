"""Retention analytics on hand-computed examples; the report commands write their files."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from commands import main
from recsys.customers.retention import active_customers, cohort_matrix, period_retention, repeat_purchase_rate


def tx(rows):
    return pd.DataFrame(rows, columns=["customer_id", "timestamp"]).assign(
        timestamp=lambda d: pd.to_datetime(d["timestamp"], format="ISO8601"), amount=1.0, product_id=1
    )


@pytest.fixture
def example():
    # Activity window 30 days; period (Mar 1, Apr 1].
    return tx(
        [
            ("A", "2024-02-15"),
            ("A", "2024-03-20"),  # active at start and end: retained
            ("B", "2024-02-20"),  # active at start only: churned
            ("C", "2024-02-25"),
            ("C", "2024-03-28"),  # retained
            ("D", "2024-03-15"),
            ("D", "2024-03-16"),  # new in the period, active at end
            ("E", "2024-01-01"),
            ("E", "2024-03-25"),  # reactivated: active at end, not new, not active at start
            ("F", "2024-03-31"),  # new in the period; the data now covers all of March
        ]
    )


def test_retention_rate_formula(example):
    p = period_retention(example, "2024-03-01", "2024-04-01", activity_days=30)
    assert (p.active_at_start, p.active_at_end, p.new_customers, p.retained) == (3, 5, 2, 2)
    assert p.retention_rate == pytest.approx((5 - 2) / 3 * 100)
    assert p.churn_rate == pytest.approx(1 / 3 * 100)


def test_active_window_is_open_at_its_start_and_closed_at_its_end(example):
    # (Feb 15, Feb 20]: A bought at Feb 15 00:00, on the open end
    assert set(active_customers(example, pd.Timestamp("2024-02-20"), 5)) == {"B"}
    assert set(active_customers(example, pd.Timestamp("2024-02-20"), 6)) == {"A", "B"}


def test_repeat_purchase_rate(example):
    # in (Mar 1, Apr 1]: A 1 day, C 1, D 2, E 1, F 1 -> 1 of 5
    assert repeat_purchase_rate(example, "2024-03-01", "2024-04-01") == pytest.approx(20.0)


def test_bad_period_is_refused(example):
    with pytest.raises(ValueError, match="must be after its start"):
        period_retention(example, "2024-04-01", "2024-03-01")


def test_cohort_matrix(example):
    m = cohort_matrix(example)
    assert m.loc["2024-02", "customers"] == 3  # A, B, C
    assert m.loc["2024-02", 1] == pytest.approx(2 / 3)  # A and C bought in March
    assert m.loc["2024-01", 2] == pytest.approx(1.0)  # E in March
    assert np.isnan(m.loc["2024-03", 1])  # April is not in the data yet
    # a month the data stops in the middle of is left out rather than read as churn
    partial = cohort_matrix(example[example["timestamp"] < "2024-03-30"])
    assert list(partial.index) == ["2024-01", "2024-02"] and np.isnan(partial.loc["2024-02", 1])


@pytest.fixture(scope="module")
def runner():
    return CliRunner()


def test_segment_report_command(runner, synth_dir, tmp_path):
    out = tmp_path / "seg"
    result = runner.invoke(main, ["report", "segments", "--data", str(synth_dir), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "Champions" in result.output and "Behavioural clusters" in result.output
    for name in (
        "segments.csv",
        "clusters.csv",
        "customers.csv",
        "segment_sizes.png",
        "cluster_profiles.png",
        "p_alive.png",
        "metrics.json",
    ):
        assert (out / name).stat().st_size > 0, name
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["customers"] == 300 and 2 <= metrics["clusters_k"] <= 8
    customers = pd.read_csv(out / "customers.csv")
    assert {"segment", "cluster", "p_alive", "expected_purchases_90d"} <= set(customers.columns)
    assert (out / "segment_sizes.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_retention_report_command(runner, synth_dir, tmp_path):
    out = tmp_path / "ret"
    result = runner.invoke(
        main, ["report", "retention", "--data", str(synth_dir), "--out", str(out), "--as-of", "2024-10-01"]
    )
    assert result.exit_code == 0, result.output
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["as_of"] == "2024-10-01"
    assert metrics["retention_rate"] == pytest.approx(
        (metrics["active_at_end"] - metrics["new_customers"]) / metrics["active_at_start"] * 100
    )
    assert 0 < metrics["churn_rate"] < 100
    assert (out / "cohorts.csv").exists() and (out / "cohort_retention.png").exists()


def test_report_on_invalid_data_exits_2(runner, tmp_path):
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "transactions.csv").write_text("customer_id,product_id\n1,2\n")
    result = runner.invoke(main, ["report", "retention", "--data", str(bad), "--out", str(tmp_path / "o")])
    assert result.exit_code == 2
    assert "transactions.timestamp: required column is missing" in result.output
    assert not (tmp_path / "o").exists()
