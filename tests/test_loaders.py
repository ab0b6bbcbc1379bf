"""Loaders for every source kind give the same canonical dataset; ids are kept as given."""

from __future__ import annotations

import pandas as pd
import pytest

from recsys.data import load_dataset
from recsys.data.sources import write_tables
from recsys.data.validate import validate_tables
from recsys.errors import DataSourceError
from tests.conftest import frames_equal


@pytest.fixture(scope="module")
def reference(synth):
    tables, _ = synth
    frames, _ = validate_tables(tables)
    return frames


def assert_same_dataset(ds, reference):
    assert set(ds.tables()) == set(reference)
    for name, expected in reference.items():
        got = ds.tables()[name]
        frames_equal(got[expected.columns], expected)
    # Ids keep their kind: customers are strings, products integers.
    assert pd.api.types.is_string_dtype(ds.transactions["customer_id"])
    assert ds.transactions["product_id"].dtype == "int64"
    assert ds.transactions["timestamp"].dtype == "datetime64[ns]"
    assert ds.transactions["quantity"].dtype == "int64"
    assert ds.offers["product_ids"].dropna().map(lambda ids: all(isinstance(i, int) for i in ids)).all()


def test_parquet_directory(tmp_path, reference):
    write_tables(reference, tmp_path / "pq", fmt="parquet")
    assert_same_dataset(load_dataset(tmp_path / "pq"), reference)


def test_csv_directory(tmp_path, reference):
    write_tables(reference, tmp_path / "csv", fmt="csv")
    assert_same_dataset(load_dataset(tmp_path / "csv"), reference)


def test_sqlite_database(tmp_path, reference):
    url = f"sqlite:///{tmp_path / 'data.db'}"
    write_tables(reference, url)
    assert_same_dataset(load_dataset(url), reference)


@pytest.mark.postgres
def test_postgresql_database(postgres_url, reference):
    write_tables(reference, postgres_url)
    ds = load_dataset(postgres_url)
    assert_same_dataset(ds, reference)
    assert "postgresql" in ds.source


def test_string_ids_that_look_like_numbers_stay_strings(tmp_path):
    path = tmp_path / "ids"
    path.mkdir()
    pd.DataFrame(
        {
            "customer_id": ["007", "042"],
            "product_id": ["1", "2"],
            "timestamp": ["2024-01-01", "2024-01-02"],
            "quantity": ["1", "1"],
            "amount": ["1.0", "2.0"],
        }
    ).to_csv(path / "transactions.csv", index=False)
    ds = load_dataset(path)
    assert ds.transactions["customer_id"].tolist() == ["007", "042"]
    assert ds.transactions["product_id"].tolist() == [1, 2]
    ds.save(tmp_path / "out", fmt="csv")
    assert (tmp_path / "out" / "transactions.csv").read_text().splitlines()[1].startswith("007,1,")


def test_timezones_become_utc(tmp_path):
    path = tmp_path / "tz"
    path.mkdir()
    pd.DataFrame(
        {
            "customer_id": [1],
            "product_id": [2],
            "timestamp": ["2024-03-01T12:00:00+02:00"],
            "quantity": [1],
            "amount": [1.0],
        }
    ).to_csv(path / "transactions.csv", index=False)
    assert load_dataset(path).transactions["timestamp"].iloc[0] == pd.Timestamp("2024-03-01T10:00:00")


def test_write_refuses_to_clobber_and_leaves_nothing_half_written(tmp_path, reference):
    dest = tmp_path / "out"
    write_tables(reference, dest)
    before = sorted(p.name for p in dest.iterdir())
    with pytest.raises(DataSourceError, match="exists and is not empty"):
        write_tables(reference, dest)

    broken = dict(reference)
    broken["products"] = reference["products"].assign(bad=[object()] * len(reference["products"]))
    with pytest.raises(Exception):  # noqa: B017 - whichever error the writer raises, nothing is left
        write_tables(broken, dest, overwrite=True)
    assert sorted(p.name for p in dest.iterdir()) == before
    assert [p.name for p in tmp_path.iterdir()] == ["out"]  # no staging left behind


def test_sql_write_is_one_transaction(tmp_path, reference):
    url = f"sqlite:///{tmp_path / 'data.db'}"
    broken = dict(reference)
    broken["products"] = reference["products"].assign(bad=[object()] * len(reference["products"]))
    with pytest.raises(Exception):  # noqa: B017 - whichever error the writer raises, nothing is left
        write_tables(broken, url)
    import sqlalchemy as sa

    engine = sa.create_engine(url)
    assert sa.inspect(engine).get_table_names() == []
    engine.dispose()


def test_bad_url_is_a_source_error():
    with pytest.raises(DataSourceError, match="cannot"):
        load_dataset("nosuchdialect://x/y")


def test_tables_outside_the_contract_are_ignored(tmp_path, reference):
    write_tables(reference, tmp_path / "d")
    pd.DataFrame({"x": [1]}).to_parquet(tmp_path / "d" / "stores.parquet")
    assert "stores" not in load_dataset(tmp_path / "d").tables()
