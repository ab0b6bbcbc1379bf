"""Control groups and measured lift: reproducible assignment, hold-backs only among customers
who would get the offer, an experiment table that reads nothing after its windows, Welch
intervals that cover planted effects at their stated rate, and Hillstrom's randomised e-mails."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from recsys import constants as C
from recsys.data.dataset import Dataset
from recsys.data.store_events import combine_offer_events
from recsys.data.validate import validate_tables
from recsys.incrementality import (
    ControlGroups,
    assignments,
    campaign_experiment,
    experiment_table,
    lift_table,
    load_hillstrom,
    welch_interval,
)

HILLSTROM = Path(__file__).resolve().parents[2] / "shared" / "data" / "hillstrom" / "hillstrom.csv"


def test_assignment_is_reproducible_keyed_and_holds_the_share():
    control = ControlGroups(share=0.1, salt="spring")
    ids = [f"c{i}" for i in range(10_000)]
    held = np.array([control.held_out(c, "OF1") for c in ids])
    assert held.tolist() == [ControlGroups(share=0.1, salt="spring").held_out(c, "OF1") for c in ids]
    sd = np.sqrt(0.1 * 0.9 / len(ids))
    assert abs(held.mean() - 0.1) < 4 * sd  # the measured share within sampling error
    other_offer = np.array([control.held_out(c, "OF2") for c in ids])
    new_salt = np.array([ControlGroups(share=0.1, salt="summer").held_out(c, "OF1") for c in ids])
    for other in (other_offer, new_salt):  # independent draws: overlap near 0.1 x 0.1
        assert abs((held & other).mean() - 0.01) < 4 * np.sqrt(0.01 * 0.99 / len(ids))
    assert not any(ControlGroups(share=0.0).held_out(c, "OF1") for c in ids[:100])
    assert np.mean([control.held_out(c, "OF1", share=0.5) for c in ids]) == pytest.approx(0.5, abs=0.03)
    assert control.event_id("c1", "OF1") == ControlGroups(share=0.3, salt="spring").event_id("c1", "OF1")
    assert control.event_id("c1", "OF1") != ControlGroups(salt="summer").event_id("c1", "OF1")


def test_global_control_and_settings_from_the_environment():
    g = ControlGroups(share=0.0, global_share=0.05)
    assert np.mean([g.in_global_control(f"c{i}") for i in range(10_000)]) == pytest.approx(0.05, abs=0.01)
    assert g.control_probability() == pytest.approx(0.05)
    assert ControlGroups(share=0.1, global_share=0.05).control_probability() == pytest.approx(0.05 + 0.95 * 0.1)
    env = ControlGroups.from_env({"RECSYS_CONTROL_SHARE": "0.2", "RECSYS_CONTROL_BACKFILL": "false"})
    assert env.share == 0.2 and env.backfill is False and env.salt == ControlGroups().salt
    with pytest.raises(ValueError, match="RECSYS_CONTROL_SHARE: 'ten' is not a number"):
        ControlGroups.from_env({"RECSYS_CONTROL_SHARE": "ten"})
    with pytest.raises(ValueError, match=r"share must be in \[0, 1\)"):
        ControlGroups.from_env({"RECSYS_CONTROL_SHARE": "1.5"})


@pytest.fixture(scope="module")
def bundle(synth_bundle_dir):
    from recsys.bundle import ModelBundle

    return ModelBundle.load(synth_bundle_dir)


def _day(bundle) -> pd.Timestamp:
    return bundle.catalog["start_date"].max() + pd.Timedelta(days=1)


@pytest.mark.parametrize("backfill", [True, False])
def test_only_customers_who_would_get_an_offer_are_held_back_from_it(bundle, backfill):
    """Assignment comes after eligibility and ranking: a held-back offer is eligible for the
    customer and in the top k they would get, so both arms hold like customers."""
    ranker, day = bundle.ranker, _day(bundle)
    prepared = ranker.prepare(bundle.catalog)
    ids = bundle.customers.index[:150]
    control = ControlGroups(share=0.3, salt="t", backfill=backfill)
    plain, _ = ranker.decide(ids, prepared, k=4, as_of=day)
    ranked, held = ranker.decide(ids, prepared, k=4, as_of=day, control=control)
    eligible = ranker.eligibility(pd.Index(ids), prepared, day, None, None)
    top = {(c, o) for c, o in zip(plain[C.CUSTOMER_ID], plain[C.OFFER_ID])}
    sent = list(zip(ranked[C.CUSTOMER_ID], ranked[C.OFFER_ID]))
    kept = list(zip(held[C.CUSTOMER_ID], held[C.OFFER_ID]))
    assert len(kept) > 20 and not set(kept) & set(sent)
    for c, o in kept:
        assert eligible[ids.get_loc(c), prepared.position[o]]
        assert control.held_out(c, o)
    if backfill:  # the first hold-backs are drawn from the plain top k; their places go to the next offers
        assert {p for p in kept if p in top} and len(sent) == len(plain[C.OFFER_ID])
    else:  # no refill: what is sent is the plain top k less what is held back
        assert set(kept) <= top and set(sent) == top - set(kept)
    assert (held[C.PROPENSITY] == 0.3).all()
    _again, held_again = ranker.decide(ids, prepared, k=4, as_of=day, control=control)
    assert list(zip(held_again[C.CUSTOMER_ID], held_again[C.OFFER_ID])) == kept


def test_the_global_control_group_gets_no_offers(bundle):
    ranker, day = bundle.ranker, _day(bundle)
    control = ControlGroups(share=0.0, global_share=0.2, global_salt="g")
    ids = bundle.customers.index[:200]
    plain, _ = ranker.decide(ids, ranker.prepare(bundle.catalog), k=3, as_of=day)
    ranked, held = ranker.decide(ids, ranker.prepare(bundle.catalog), k=3, as_of=day, control=control)
    members = {c for c in ids if control.in_global_control(c)}
    assert 15 < len(members) < 70
    assert not members & set(ranked[C.CUSTOMER_ID]) and set(held[C.CUSTOMER_ID]) == members
    would = {(c, o) for c, o in zip(plain[C.CUSTOMER_ID], plain[C.OFFER_ID]) if c in members}
    assert set(zip(held[C.CUSTOMER_ID], held[C.OFFER_ID])) == would


def test_welch_interval_is_scipys():
    rng = np.random.default_rng(1)
    a, b = rng.gamma(2.0, 3.0, 300), rng.gamma(2.0, 2.5, 500)
    diff, lo, hi = welch_interval(a, b)
    ci = stats.ttest_ind(a, b, equal_var=False).confidence_interval(0.95)
    assert diff == pytest.approx(a.mean() - b.mean()) and (lo, hi) == pytest.approx((ci.low, ci.high))
    assert np.isnan(welch_interval(a[:1], b)[0])


def _planted(seed: int, n: int = 1000, effect: float = 0.0, share: float = 0.5):
    """An experiment with heterogeneous effects: customer i gains effect x 2 x u_i (u uniform,
    mean effect ``effect``); skewed spend, like a basket's."""
    rng = np.random.default_rng(seed)
    u = rng.uniform(0, 1, n)
    base = rng.gamma(0.6, 40.0, n)
    tau = effect * 2 * u
    control = rng.random(n) < share
    spend = base + np.where(control, 0.0, tau + rng.normal(0, 5, n))
    frame = pd.DataFrame(
        {
            "group": "X",
            "arm": np.where(control, "control", "treated"),
            "total_spend": spend,
            "offer_spend": spend,
            "visits": 0,
            "redemptions": 0,
        }
    )
    return frame, tau.mean()


def test_intervals_cover_the_planted_average_effect_at_their_rate():
    """Over 600 seeds the 95% Welch interval covers each sample's planted average effect close to
    95% of the time, and an effect of $5 per customer (half the spend's standard deviation over
    14 days in the synthetic data) is detected most of the time with 1,000 customers."""
    covered, detected = [], []
    for seed in range(600):
        frame, ate = _planted(seed, effect=5.0)
        row = lift_table(frame, margin=1.0).iloc[0]
        covered.append(row["total_spend_lift_low"] <= ate <= row["total_spend_lift_high"])
        detected.append(row["total_spend_lift_low"] > 0)
    assert 0.93 <= np.mean(covered) <= 0.97
    assert np.mean(detected) > 0.6
    null = [lift_table(_planted(s)[0], margin=1.0).iloc[0]["total_spend_lift_low"] > 0 for s in range(600, 1000)]
    assert np.mean(null) < 0.05  # no effect: a one-sided false alarm at most 2.5% in expectation


def test_the_experiment_table_reads_nothing_after_a_window(synth_experiments):
    tables, _truth = synth_experiments
    ds = Dataset(**validate_tables(tables)[0])
    ev = ds.offer_events[ds.offer_events[C.OFFER_ID].str.startswith("OX")]
    e = experiment_table(ds.transactions, ev, ds.offers, products=ds.products)
    assert set(e["arm"]) == {"treated", "control"} and len(e) == len(assignments(ev))
    first_end = e["assigned_at"].min() + pd.Timedelta(days=14)
    later = ds.transactions[ds.transactions[C.TIMESTAMP] > first_end]
    shifted = later.assign(**{C.AMOUNT: later[C.AMOUNT] * 100})  # a different future
    tx = pd.concat([ds.transactions[ds.transactions[C.TIMESTAMP] <= first_end], shifted])
    first = e["assigned_at"] == e["assigned_at"].min()
    again = experiment_table(tx, ev, ds.offers, products=ds.products)
    pd.testing.assert_frame_equal(
        e[first].reset_index(drop=True), again[again["assigned_at"] == e["assigned_at"].min()].reset_index(drop=True)
    )
    cut = experiment_table(
        ds.transactions[ds.transactions[C.TIMESTAMP] <= first_end + pd.Timedelta(days=1)],
        ev,
        ds.offers,
        products=ds.products,
    )
    assert set(cut["assigned_at"]) == {e["assigned_at"].min()}  # unfinished windows are left out
    both = pd.concat([ev, ev[ev[C.EVENT] == C.SENT].head(3).assign(**{C.EVENT: C.HELD_OUT, C.EVENT_ID: "dup"})])
    assert len(assignments(both)) == len(assignments(ev)) - 3  # a pair in both arms is contaminated: left out


def test_lift_of_the_generator_covers_its_planted_effects(synth_experiments):
    tables, truth = synth_experiments
    ds = Dataset(**validate_tables(tables)[0])
    ev = ds.offer_events[ds.offer_events[C.OFFER_ID].str.startswith("OX")]
    e = experiment_table(ds.transactions, ev, ds.offers, products=ds.products)
    table = lift_table(e).set_index("group")
    effects = truth["experiment_effects"].groupby(C.OFFER_ID)[["effect_total_spend", "effect_redemptions"]].mean()
    for offer, planted in effects.iterrows():
        row = table.loc[offer]
        assert row["total_spend_lift_low"] <= planted["effect_total_spend"] <= row["total_spend_lift_high"]
        assert row["redemptions_lift_low"] <= planted["effect_redemptions"] <= row["redemptions_lift_high"]
        assert row["discount_cost"] == pytest.approx(2.0 * row["redemptions_treated_mean"])
    camp = lift_table(campaign_experiment(e))
    assert sorted(camp["group"]) == sorted(str(c) for c in ev[C.CAMPAIGN_ID].unique())


def test_verdicts_say_what_was_measured():
    frame, _ = _planted(3, n=4000, effect=20.0)
    assert lift_table(frame, margin=1.0).iloc[0]["verdict"].startswith("adds $")
    costly = frame.assign(cost=np.where(frame["arm"] == "treated", 100.0, 0.0))
    assert lift_table(costly, margin=1.0).iloc[0]["verdict"].startswith("costs $")
    none = frame[frame["arm"] == "treated"]
    assert lift_table(none).iloc[0]["verdict"] == "no control group: lift cannot be measured"
    with pytest.raises(ValueError, match="arm must be 'treated' or 'control', not 'both'"):
        lift_table(frame.assign(arm="both"))


def test_store_events_join_the_dataset_events_once_in_its_id_types():
    dataset = pd.DataFrame(
        {
            C.EVENT_ID: ["a", "b"],
            C.CUSTOMER_ID: [1, 2],
            C.OFFER_ID: [10, 11],
            C.EVENT: C.SENT,
            C.TIMESTAMP: pd.to_datetime(["2024-01-02", "2024-01-01"]),
        }
    )
    store = pd.DataFrame(
        {
            C.EVENT_ID: ["b", "c"],
            C.CUSTOMER_ID: ["2", "3"],
            C.OFFER_ID: ["11", "10"],
            C.EVENT: [C.SENT, C.HELD_OUT],
            C.TIMESTAMP: pd.to_datetime(["2024-01-01", "2024-01-03"]),
        }
    )
    both = combine_offer_events(dataset, store)
    assert both[C.EVENT_ID].tolist() == ["b", "a", "c"] and both[C.CUSTOMER_ID].tolist() == [2, 1, 3]
    assert pd.api.types.is_integer_dtype(both[C.OFFER_ID])
    from recsys.errors import DataValidationError

    with pytest.raises(DataValidationError, match="customer_id: events store: not an id"):
        combine_offer_events(dataset, store.assign(**{C.CUSTOMER_ID: ["x", "3"]}))


@pytest.mark.skipif(not HILLSTROM.exists(), reason=f"the Hillstrom experiment is not at {HILLSTROM}")
def test_hillstrom_lift_is_the_randomised_difference_of_means():
    e = load_hillstrom(HILLSTROM)
    table = lift_table(e, outcomes=("visit", "conversion", "spend"), revenue="spend", margin=1.0).set_index("group")
    raw = pd.read_csv(HILLSTROM)
    none = raw[raw["segment"] == "No E-Mail"]
    for email in ("Mens E-Mail", "Womens E-Mail"):
        mail = raw[raw["segment"] == email]
        assert table.loc[email, "treated"] == len(mail) and table.loc[email, "control"] == len(none)
        for outcome in ("visit", "conversion", "spend"):
            plain = mail[outcome].mean() - none[outcome].mean()
            ci = stats.ttest_ind(mail[outcome], none[outcome], equal_var=False).confidence_interval(0.95)
            assert table.loc[email, f"{outcome}_lift"] == pytest.approx(plain)
            assert (table.loc[email, f"{outcome}_lift_low"], table.loc[email, f"{outcome}_lift_high"]) == pytest.approx(
                (ci.low, ci.high)
            )
    # the published figures: Mens +7.7 points of visits and +$0.77 of spend; Womens +4.5 and +$0.42
    assert table.loc["Mens E-Mail", "visit_lift"] == pytest.approx(0.077, abs=0.001)
    assert table.loc["Mens E-Mail", "spend_lift"] == pytest.approx(0.77, abs=0.01)
    assert table.loc["Womens E-Mail", "spend_lift"] == pytest.approx(0.42, abs=0.01)
    assert table.loc["Mens E-Mail", "verdict"].startswith("adds $0.77 per customer [0.49, 1.05]")


def test_the_hillstrom_loader_refuses_other_files(tmp_path):
    from recsys.errors import DataSourceError

    with pytest.raises(DataSourceError, match="no such file"):
        load_hillstrom(tmp_path / "missing.csv")
    (tmp_path / "other.csv").write_text("a,b\n1,2\n")
    with pytest.raises(DataSourceError, match=r"not the Hillstrom experiment .missing columns: recency"):
        load_hillstrom(tmp_path / "other.csv")


def test_report_lift_writes_the_table_the_figure_and_what_cannot_be_measured(synth_experiments_dir, tmp_path):
    from click.testing import CliRunner

    from commands import main as cli

    out = tmp_path / "lift"
    r = CliRunner().invoke(
        cli,
        [
            "report",
            "lift",
            "--data",
            str(synth_experiments_dir),
            "--out",
            str(out),
            "--events",
            f"sqlite:///{tmp_path / 'none.db'}",
        ],
    )
    assert r.exit_code == 0, r.output
    assert sorted(p.name for p in out.iterdir()) == ["lift.csv", "lift.png", "metrics.json"]
    assert not (tmp_path / "none.db").exists()  # a missing events store is not created
    table = pd.read_csv(out / "lift.csv")
    measured = table[table["control"] > 0]
    assert set(measured.loc[measured["level"] == "offer", "group"]) == {"OX001", "OX002"}
    assert set(measured.loc[measured["level"] == "campaign", "group"].astype(str)) == {"6", "7"}
    plain = table[table["control"] == 0]
    assert len(plain) == 5 and plain["verdict"].str.startswith("no control group").all()
    assert "2 offers" not in r.output and "4 offers and campaigns with a randomised control group" in r.output


@pytest.mark.completejourney
@pytest.mark.slow
def test_the_complete_journey_cannot_show_lift(cj_dataset):
    from recsys.offers import hold_out_events
    from recsys.reporting.lift import lift_report

    ds, _ = hold_out_events(cj_dataset, C.CJ_HELD_OUT_CAMPAIGNS)
    rep = lift_report(ds)
    table = rep.tables["lift"]
    assert len(table) and (table["control"] == 0).all() and not rep.figures
    assert table["verdict"].str.startswith("no control group: lift cannot be measured").all()
    assert "18" not in set(table["group"].astype(str))  # the held-back campaign is not even listed
    assert rep.metrics["note"].startswith("no randomised control group in the data")
