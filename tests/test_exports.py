"""Batch exports: columns, ordering, atomic writes."""

from __future__ import annotations

import pandas as pd
import pytest
from click.testing import CliRunner

from commands import main as cli
from inference.exports import export_offers, write_atomic
from recsys.bundle import ModelBundle


@pytest.fixture(scope="module")
def bundle(synth_bundle_dir):
    return ModelBundle.load(synth_bundle_dir)


def _during(bundle) -> str:
    return str((bundle.catalog["start_date"].max() + pd.Timedelta(days=1)).date())


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_export_offers_cli(synth_bundle_dir, synth_dir, bundle, tmp_path, suffix):
    out = tmp_path / f"offers{suffix}"
    store = tmp_path.parent / f"events-{suffix[1:]}.db"
    r = CliRunner().invoke(
        cli,
        [
            "export",
            "offers",
            "--events",
            f"sqlite:///{store}",
            "--k",
            "3",
            "--as-of",
            _during(bundle),
            "--model",
            str(synth_bundle_dir),
            "--data",
            str(synth_dir),
            "--out",
            str(out),
        ],
    )
    assert r.exit_code == 0, r.output
    frame = pd.read_csv(out) if suffix == ".csv" else pd.read_parquet(out)
    assert list(frame.columns[:10]) == [
        "customer_id",
        "rank",
        "offer_id",
        "tier",
        "score",
        "p_redeem",
        "expected_value",
        "reason",
        "reason_code",
        "cold_start",
    ]
    assert {"name", "offer_type", "value", "start_date", "end_date"} <= set(frame.columns)
    assert frame.groupby("customer_id")["rank"].apply(lambda r: list(r) == list(range(1, len(r) + 1))).all()
    assert frame["rank"].max() <= 3 and frame["customer_id"].nunique() > 0.9 * len(bundle.customers)
    held = (
        pd.read_csv(tmp_path / f"offers.held_out{suffix}")
        if suffix == ".csv"
        else pd.read_parquet(tmp_path / f"offers.held_out{suffix}")
    )
    # nothing else is left beside the two files (no temporary file)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([out.name, f"offers.held_out{suffix}"])
    # the default control share (0.1) of the would-be offers is held back, and none of them is sent
    assert list(held.columns) == ["customer_id", "offer_id", "propensity", "event_id"]
    share = len(held) / (len(held) + len(frame))
    assert 0.05 < share < 0.16 and (held["propensity"] == 0.1).all()
    sent = set(zip(frame["customer_id"].astype(str), frame["offer_id"].astype(str)))
    assert not sent & set(zip(held["customer_id"].astype(str), held["offer_id"].astype(str)))
    from recsys.data.store_events import read_event_store

    recorded = read_event_store(f"sqlite:///{store}")
    assert sorted(recorded["event_id"]) == sorted(held["event_id"]) and (recorded["event"] == "held_out").all()


def test_export_at_risk_cli(synth_bundle_dir, bundle, tmp_path):
    out = tmp_path / "risk.csv"
    r = CliRunner().invoke(
        cli, ["export", "at-risk", "--min-risk", "0.5", "--model", str(synth_bundle_dir), "--out", str(out)]
    )
    assert r.exit_code == 0, r.output
    frame = pd.read_csv(out)
    # the same columns as the API's at-risk CSV (serving.blueprints.churn)
    assert list(frame.columns) == [
        "customer_id",
        "churn_probability",
        "risk_band",
        "reasons",
        "segment",
        "cluster",
        "p_alive",
        "expected_purchases",
        "total_spend",
    ]
    assert (frame["churn_probability"] >= 0.5).all()
    value = frame["churn_probability"] * frame["total_spend"].clip(lower=0)
    assert value.is_monotonic_decreasing
    assert len(frame) == (bundle.customers["churn_probability"] >= 0.5).sum()


def test_bad_output_name_is_refused(synth_bundle_dir, tmp_path):
    r = CliRunner().invoke(
        cli, ["export", "at-risk", "--model", str(synth_bundle_dir), "--out", str(tmp_path / "x.xlsx")]
    )
    assert r.exit_code == 2 and "must end in .csv or .parquet" in r.output
    assert not list(tmp_path.iterdir())


def test_interrupted_write_leaves_the_old_file(tmp_path, monkeypatch, bundle):
    out = tmp_path / "offers.parquet"
    out.write_bytes(b"old")

    def fail(self, *a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(pd.DataFrame, "to_parquet", fail)
    with pytest.raises(KeyboardInterrupt):
        write_atomic(pd.DataFrame({"a": [1]}), out)
    assert out.read_bytes() == b"old" and [p.name for p in tmp_path.iterdir()] == ["offers.parquet"]


def test_frequency_caps_apply_to_exports(bundle):
    day = _during(bundle)
    plain = export_offers(bundle, k=1, as_of=day)
    first = plain.iloc[0]
    now = pd.Timestamp.now("UTC").tz_localize(None)

    def sent(*days_ago):
        return pd.DataFrame(
            {
                "customer_id": [first["customer_id"]] * len(days_ago),
                "offer_id": [first["offer_id"]] * len(days_ago),
                "event": "sent",
                "timestamp": [now - pd.Timedelta(days=d) for d in days_ago],
            }
        )

    def top(events, **kw):
        out = export_offers(bundle, k=1, as_of=day, events=events, **kw)
        mine = out[out["customer_id"] == first["customer_id"]]
        return None if mine.empty else mine.iloc[0]["offer_id"]

    # the cap counts the sends of the 30 days before the decision (now), whatever day the offers
    # are for: three sends this week cap a decision about a past day
    assert top(sent(1, 2, 3)) != first["offer_id"]
    assert top(sent(31, 32, 33)) == first["offer_id"]  # more than 30 days ago: no longer counted
    # a backtest decides on its own day: then the sends before that day count
    old = sent(1, 2, 3).assign(timestamp=[pd.Timestamp(day) - pd.Timedelta(days=d) for d in (1, 2, 3)])
    assert top(old) == first["offer_id"]
    assert top(old, decided_at=day) != first["offer_id"]


def test_a_redeemed_offer_is_not_offered_again_unless_the_catalog_allows(bundle):
    day = _during(bundle)
    first = export_offers(bundle, k=1, as_of=day).iloc[0]
    redeemed = pd.DataFrame(
        {
            "customer_id": [first["customer_id"]],
            "offer_id": [first["offer_id"]],
            "event": "redeemed",
            "timestamp": [pd.Timestamp(day)],
        }
    )

    def top(catalog=None):
        out = export_offers(bundle, k=1, as_of=day, events=redeemed, catalog=catalog)
        mine = out[out["customer_id"] == first["customer_id"]]
        return None if mine.empty else mine.iloc[0]["offer_id"]

    assert top() != first["offer_id"]  # single use by default
    repeatable = bundle.catalog.assign(max_redemptions_per_customer=5)
    assert top(repeatable) == first["offer_id"]
    viewed = redeemed.assign(event="viewed")  # seen once: still offered
    assert top_of(export_offers(bundle, k=1, as_of=day, events=viewed), first) == first["offer_id"]
    now = pd.Timestamp.now("UTC").tz_localize(None)
    ignored = pd.concat([viewed.assign(event_id=None, timestamp=now - pd.Timedelta(hours=h)) for h in range(5)])
    assert top_of(export_offers(bundle, k=1, as_of=day, events=ignored), first) != first["offer_id"]  # seen 5 times


def top_of(out: pd.DataFrame, first) -> object:
    mine = out[out["customer_id"] == first["customer_id"]]
    return None if mine.empty else mine.iloc[0]["offer_id"]


def test_a_bundle_of_an_earlier_format_is_refused_with_a_way_forward(synth_bundle_dir, tmp_path):
    """Bundles pickle the estimators with their module paths, which moved in format 3: an older
    bundle is refused by name, saying to retrain, rather than failing somewhere in unpickling."""
    import json
    import shutil

    from recsys.bundle import BUNDLE_FORMAT, BundleError

    old = tmp_path / "old"
    shutil.copytree(synth_bundle_dir, old)
    meta = json.loads((old / "bundle.json").read_text())
    (old / "bundle.json").write_text(json.dumps({**meta, "format": BUNDLE_FORMAT - 1}))
    with pytest.raises(BundleError, match=rf"bundle format {BUNDLE_FORMAT - 1} is not {BUNDLE_FORMAT}.*retrain"):
        ModelBundle.load(old)
    assert ModelBundle.load(synth_bundle_dir).config == meta["config"]
