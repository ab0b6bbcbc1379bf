"""The Complete Journey importer on the real package data."""

from __future__ import annotations

import pytest

from recsys.data import completejourney as cj
from recsys.data import load_dataset
from recsys.data.validate import validate_tables

pytestmark = [pytest.mark.slow, pytest.mark.completejourney]


@pytest.fixture(scope="module")
def raw():
    return cj.read_package()


@pytest.fixture(scope="module")
def tables(raw):
    return cj.build_tables(raw)


def test_row_counts(tables):
    assert len(tables["transactions"]) == 1_469_307
    assert tables["customers"]["customer_id"].nunique() == 2_469
    assert len(tables["customers"]) == 2_469
    assert len(tables["offers"]) == 981  # one per coupon UPC
    events = tables["offer_events"]["event"].value_counts()
    assert events["redeemed"] == 2_102


def test_sent_events_are_campaign_households_times_coupons(raw, tables):
    per_campaign = (
        raw["campaigns"].groupby("campaign_id").size() * cj.campaign_coupons(raw).groupby("campaign_id").size()
    )
    sent = tables["offer_events"].query("event == 'sent'")
    assert len(sent) == per_campaign.sum()
    c8 = sent[sent["campaign_id"] == 8]
    assert c8["customer_id"].nunique() == 1_076 and c8["offer_id"].nunique() == 209
    assert (c8["timestamp"] == "2017-05-08").all()


def test_offers_follow_their_coupons(raw, tables):
    offers = tables["offers"].set_index("offer_id")
    coupon = raw["coupons"].iloc[0]
    offer = offers.loc[coupon["coupon_upc"]]
    assert coupon["product_id"] in offer["product_ids"]
    assert (offers["offer_type"] == "amount_off").all()
    assert (offers["value"] > 0).all()
    # The value is the median coupon discount seen on the coupon's products, 1.0 when none was seen.
    assert offers["value"].median() == pytest.approx(1.0, abs=0.5)
    assert (offers["end_date"] >= offers["start_date"]).all()


def test_discounts_add_up(raw, tables):
    tx = raw["transactions"]
    expected = (tx["retail_disc"] + tx["coupon_disc"] + tx["coupon_match_disc"]).sum()
    assert tables["transactions"]["discount"].sum() == pytest.approx(expected, rel=1e-6)
    assert tables["transactions"]["amount"].sum() == pytest.approx(tx["sales_value"].sum())


def test_held_out_campaign_is_kept_in_the_data(tables):
    ev = tables["offer_events"]
    assert (ev["campaign_id"] == 18).any()


def test_imported_tables_are_valid_and_load_back(tables, tmp_path):
    frames, warnings = validate_tables(tables)
    # 17 products are sold but missing from the product table: reported, not fatal.
    assert {(w.table, w.column) for w in warnings} == {("transactions", "product_id"), ("offers", "product_ids")}
    from recsys.data.sources import write_tables

    write_tables(frames, tmp_path / "cj")
    ds = load_dataset(tmp_path / "cj")
    assert len(ds.transactions) == 1_469_307
    assert ds.summary()["customers"] == 2_469
