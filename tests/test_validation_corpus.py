"""A corpus of malformed inputs: each must be refused with its exact problem named."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest

from recsys.data import load_dataset
from recsys.errors import DataSourceError, DataValidationError

NOW = pd.Timestamp("2025-06-01")


def base_tables() -> dict[str, pd.DataFrame]:
    """A tiny valid dataset, as text, the way a CSV export would hold it."""
    return {
        "transactions": pd.DataFrame(
            {
                "customer_id": ["1", "1", "2", "3"],
                "product_id": ["10", "11", "10", "12"],
                "timestamp": ["2025-01-02T10:00:00", "2025-01-02T10:00:00", "2025-02-03T11:30:00", "2025-03-04"],
                "quantity": ["1", "2", "1", "-1"],
                "amount": ["2.50", "4.00", "2.50", "-1.20"],
                "discount": ["0", "0.5", "0", "0"],
            }
        ),
        "products": pd.DataFrame(
            {
                "product_id": ["10", "11", "12"],
                "category": ["milk", "cheese", "bread"],
                "department": ["DAIRY", "DAIRY", "BAKERY"],
            }
        ),
        "customers": pd.DataFrame(
            {
                "customer_id": ["1", "2", "3"],
                "signup_date": ["2024-12-01", "2025-01-15", ""],
                "region": ["north", "south", "east"],
            }
        ),
        "offers": pd.DataFrame(
            {
                "offer_id": ["A1", "A2", "A3"],
                "name": ["20% off cheese", "$1 off bread", "2x points"],
                "offer_type": ["percent_off", "amount_off", "points_multiplier"],
                "value": ["20", "1", "2"],
                "product_ids": ["[11]", "", ""],
                "category": ["", "bread", ""],
                "start_date": ["2025-01-01", "2025-02-01", "2025-01-01"],
                "end_date": ["2025-01-31", "2025-02-28", "2025-12-31"],
                "channels": ["email|app", "", '["sms"]'],
                "min_churn_risk": ["", "", "0.5"],
                "max_redemptions_per_customer": ["1", "", "3"],
            }
        ),
        "offer_events": pd.DataFrame(
            {
                "event_id": ["e1", "e2", "e3"],
                "customer_id": ["1", "1", "2"],
                "offer_id": ["A1", "A1", "A2"],
                "event": ["sent", "redeemed", "sent"],
                "timestamp": ["2025-01-05T09:00:00", "2025-01-07T12:00:00", "2025-02-02T09:00:00"],
            }
        ),
    }


def write_csv(tables: dict[str, pd.DataFrame], path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    for name, df in tables.items():
        df.to_csv(path / f"{name}.csv", index=False)
    return path


@dataclass
class Case:
    name: str
    mutate: Callable[[dict[str, pd.DataFrame], Path], None]
    table: str
    column: str | None
    problem: str
    n_rows: int | None = None
    example: object = None


def set_cell(table: str, column: str, row: int, value):
    def mutate(t, _path):
        t[table].loc[row, column] = value

    return mutate


def drop_table(table: str):
    def mutate(t, _path):
        del t[table]

    return mutate


def drop_column(table: str, column: str):
    def mutate(t, _path):
        t[table] = t[table].drop(columns=[column])

    return mutate


def empty_table(table: str):
    def mutate(t, _path):
        t[table] = t[table].iloc[0:0]

    return mutate


def add_row(table: str, **values):
    def mutate(t, _path):
        t[table] = pd.concat([t[table], pd.DataFrame([values])], ignore_index=True)

    return mutate


def semicolon_products(t, path):
    path.mkdir(parents=True, exist_ok=True)
    t.pop("products").to_csv(path / "products.csv", index=False, sep=";")


def far_future_parquet(t, path):
    """One timestamp's nanoseconds since the epoch stored as milliseconds: a year near 55,000."""
    path.mkdir(parents=True, exist_ok=True)
    df = t.pop("transactions").copy()
    ms = pd.to_datetime(df["timestamp"], format="ISO8601").astype("datetime64[ms]").astype("int64").to_numpy().copy()
    ms[0] = pd.Timestamp(df["timestamp"][0]).value  # nanoseconds where milliseconds belong
    df["timestamp"] = pd.Series(ms.astype("datetime64[ms]"))
    for col in ("customer_id", "product_id", "quantity"):
        df[col] = df[col].astype("int64")
    for col in ("amount", "discount"):
        df[col] = df[col].astype("float64")
    df.to_parquet(path / "transactions.parquet", index=False)


def latin1_products(t, path):
    t["products"].loc[0, "category"] = "crème fraîche"
    del t["products"]
    df = base_tables()["products"]
    df.loc[0, "category"] = "crème fraîche"
    path.mkdir(parents=True, exist_ok=True)
    df.to_csv(path / "products.csv", index=False, encoding="latin-1")


def products_twice(t, path):
    path.mkdir(parents=True, exist_ok=True)
    df = t["products"].astype({"product_id": "int64"})
    df.to_parquet(path / "products.parquet", index=False)


def string_customers(t, _path):
    t["customers"]["customer_id"] = ["C1", "C2", "C3"]
    t["offer_events"]["customer_id"] = ["C1", "C1", "C2"]


CASES = [
    Case("no transactions table", drop_table("transactions"), "transactions", None, "required table is missing"),
    Case(
        "missing amount column",
        drop_column("transactions", "amount"),
        "transactions",
        "amount",
        "required column is missing",
    ),
    Case(
        "unparseable timestamp",
        set_cell("transactions", "timestamp", 2, "yesterday"),
        "transactions",
        "timestamp",
        "is not an ISO 8601",
        1,
        "yesterday",
    ),
    Case(
        "future timestamp",
        set_cell("transactions", "timestamp", 1, "2031-01-01T00:00:00"),
        "transactions",
        "timestamp",
        "is in the future",
        1,
        "2031-01-01T00:00:00",
    ),
    Case(
        "fractional quantity",
        set_cell("transactions", "quantity", 0, "1.5"),
        "transactions",
        "quantity",
        "is not a whole number",
        1,
        "1.5",
    ),
    Case(
        "non-numeric amount",
        set_cell("transactions", "amount", 3, "12,50"),
        "transactions",
        "amount",
        "is not a number",
        1,
        "12,50",
    ),
    Case(
        "null customer id",
        set_cell("transactions", "customer_id", 1, ""),
        "transactions",
        "customer_id",
        "is empty (null)",
        1,
    ),
    Case(
        "negative discount",
        set_cell("transactions", "discount", 2, "-0.3"),
        "transactions",
        "discount",
        "is below the minimum 0",
        1,
        -0.3,
    ),
    Case(
        "negative amount on a purchase",
        set_cell("transactions", "amount", 0, "-2.5"),
        "transactions",
        "amount",
        "is negative on a purchase",
        1,
        -2.5,
    ),
    Case("empty transactions", empty_table("transactions"), "transactions", None, "table is empty"),
    Case(
        "duplicate product id",
        add_row("products", product_id="11", category="x", department="y"),
        "products",
        "product_id",
        "duplicate values",
        2,
        11,
    ),
    Case(
        "duplicate customer id",
        add_row("customers", customer_id="2", signup_date="", region="west"),
        "customers",
        "customer_id",
        "duplicate values",
        2,
        2,
    ),
    Case(
        "future signup",
        set_cell("customers", "signup_date", 0, "2030-05-05"),
        "customers",
        "signup_date",
        "is in the future",
        1,
    ),
    Case(
        "unknown offer type",
        set_cell("offers", "offer_type", 1, "half_price"),
        "offers",
        "offer_type",
        "is not one of percent_off",
        1,
        "half_price",
    ),
    Case(
        "end before start",
        set_cell("offers", "end_date", 1, "2025-01-15"),
        "offers",
        "end_date",
        "is before start_date",
        1,
        "A2",
    ),
    Case(
        "malformed product list",
        set_cell("offers", "product_ids", 0, "[11, "),
        "offers",
        "product_ids",
        "is not a list",
        1,
        "[11, ",
    ),
    Case(
        "non-integer product in list",
        set_cell("offers", "product_ids", 0, "11|x7"),
        "offers",
        "product_ids",
        "integer product ids",
        1,
        "11|x7",
    ),
    Case(
        "unknown channel",
        set_cell("offers", "channels", 1, "email|fax"),
        "offers",
        "channels",
        "names values outside email, app, web, sms",
        1,
    ),
    Case(
        "products and category both",
        set_cell("offers", "category", 0, "cheese"),
        "offers",
        "product_ids",
        "both set",
        1,
        "A1",
    ),
    Case(
        "churn risk above 1",
        set_cell("offers", "min_churn_risk", 2, "1.5"),
        "offers",
        "min_churn_risk",
        "is above the maximum 1",
        1,
        1.5,
    ),
    Case("percent above 100", set_cell("offers", "value", 0, "150"), "offers", "value", "(0, 100]", 1, "A1"),
    Case(
        "zero redemptions allowed",
        set_cell("offers", "max_redemptions_per_customer", 0, "0"),
        "offers",
        "max_redemptions_per_customer",
        "is below the minimum 1",
        1,
        0,
    ),
    Case(
        "duplicate offer id", set_cell("offers", "offer_id", 2, "A2"), "offers", "offer_id", "duplicate values", 2, "A2"
    ),
    Case("empty offers", empty_table("offers"), "offers", None, "table is empty"),
    Case(
        "unknown event type",
        set_cell("offer_events", "event", 1, "clicked"),
        "offer_events",
        "event",
        "is not one of sent, viewed, redeemed",
        1,
        "clicked",
    ),
    Case(
        "event names unknown offer",
        set_cell("offer_events", "offer_id", 2, "ZZ9"),
        "offer_events",
        "offer_id",
        "1 unknown offer",
        1,
        "ZZ9",
    ),
    Case(
        "duplicate event id",
        set_cell("offer_events", "event_id", 2, "e1"),
        "offer_events",
        "event_id",
        "duplicate values",
        2,
        "e1",
    ),
    Case(
        "unparseable event time",
        set_cell("offer_events", "timestamp", 0, "05/01/2025 9am"),
        "offer_events",
        "timestamp",
        "is not an ISO 8601",
        1,
        "05/01/2025 9am",
    ),
    Case(
        "quantity too large for a number",
        set_cell("transactions", "quantity", 0, "1e309"),
        "transactions",
        "quantity",
        "is out of range for a 64-bit integer",
        1,
        "1e309",
    ),
    Case(
        "quantity beyond int64",
        set_cell("transactions", "quantity", 1, "9223372036854775808"),
        "transactions",
        "quantity",
        "is out of range for a 64-bit integer",
        1,
        "9223372036854775808",
    ),
    Case(
        "negative quantity with a positive amount",
        set_cell("transactions", "quantity", 0, "-2"),
        "transactions",
        "quantity",
        "is negative with a positive amount",
        1,
    ),
    Case("semicolon-separated CSV", semicolon_products, "products", "product_id", "looks semicolon-separated"),
    Case(
        "timestamps in the wrong unit",
        far_future_parquet,
        "transactions",
        "timestamp",
        "is outside the representable dates",
        1,
    ),
    Case("non-UTF-8 CSV", latin1_products, "products", None, "is not UTF-8: byte 0xe8"),
    Case("table given twice", products_twice, "products", None, "found both products.parquet and products.csv"),
    Case(
        "id types differ across tables",
        string_customers,
        "transactions",
        "customer_id",
        "ids have different types across tables",
    ),
]


def test_corpus_is_large_enough():
    assert len(CASES) >= 20


def test_base_dataset_is_valid(tmp_path):
    ds = load_dataset(write_csv(base_tables(), tmp_path / "ok"), now=NOW)
    assert len(ds.transactions) == 4
    assert ds.transactions["customer_id"].dtype == "int64"
    assert ds.offers["product_ids"].tolist()[0] == [11]
    assert ds.offers["channels"].tolist()[0] == ["email", "app"]
    assert ds.warnings == []


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_malformed_input_is_named(tmp_path, case: Case):
    tables = base_tables()
    path = tmp_path / "bad"
    case.mutate(tables, path)
    write_csv(tables, path)
    with pytest.raises(DataValidationError) as info:
        load_dataset(path, now=NOW)
    issues = info.value.issues
    matching = [i for i in issues if i.table == case.table and i.column == case.column and case.problem in i.problem]
    assert matching, f"expected {case.table}.{case.column}: {case.problem!r}; got {[str(i) for i in issues]}"
    issue = matching[0]
    if case.n_rows is not None:
        assert issue.n_rows == case.n_rows
    if case.example is not None:
        assert case.example in issue.examples
    message = str(info.value)
    assert case.table in message and case.problem in message


def test_every_problem_is_reported_at_once(tmp_path):
    tables = base_tables()
    tables["transactions"].loc[0, "quantity"] = "x"
    tables["offers"].loc[1, "offer_type"] = "half_price"
    tables["offer_events"].loc[0, "event"] = "clicked"
    with pytest.raises(DataValidationError) as info:
        load_dataset(write_csv(tables, tmp_path / "bad"), now=NOW)
    where = {(i.table, i.column) for i in info.value.issues}
    assert {("transactions", "quantity"), ("offers", "offer_type"), ("offer_events", "event")} <= where


def test_unknown_products_warn_and_fail_when_strict(tmp_path):
    tables = base_tables()
    tables["transactions"].loc[0, "product_id"] = "99"
    path = write_csv(tables, tmp_path / "warn")
    ds = load_dataset(path, now=NOW)
    assert [(w.table, w.column, w.examples) for w in ds.warnings] == [("transactions", "product_id", (99,))]
    with pytest.raises(DataValidationError, match="1 unknown product"):
        load_dataset(path, now=NOW, strict=True)


def test_missing_source_is_a_source_error(tmp_path):
    with pytest.raises(DataSourceError, match="does not exist"):
        load_dataset(tmp_path / "nowhere")


def test_a_missing_sqlite_database_is_refused_and_not_created(tmp_path):
    db = tmp_path / "missing.db"
    with pytest.raises(DataSourceError, match="does not exist"):
        load_dataset(f"sqlite:///{db}")
    assert not db.exists()


def test_a_file_that_is_not_sqlite_is_named(tmp_path):
    db = tmp_path / "notes.db"
    db.write_text("customer_id,product_id\n1,2\n")
    with pytest.raises(DataSourceError, match="is not a SQLite database"):
        load_dataset(f"sqlite:///{db}")


def test_example_values_are_capped(tmp_path):
    tables = base_tables()
    tables["transactions"] = pd.concat([tables["transactions"]] * 5, ignore_index=True)
    tables["transactions"]["quantity"] = [f"q{i}" for i in range(len(tables["transactions"]))]
    with pytest.raises(DataValidationError) as info:
        load_dataset(write_csv(tables, tmp_path / "bad"), now=NOW)
    issue = info.value.issues[0]
    assert issue.n_rows == 20 and len(issue.examples) == 5
    assert json.dumps(list(issue.examples))  # examples are plain values
