"""Transactions validated in batches and kept on disk (recsys.data.batches, recsys.data.line_file):
the same tables, problems, fingerprint and reductions as the lines validated in memory."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from recsys import constants as C
from recsys.customers.history import PurchaseHistory
from recsys.data import batches, load_dataset
from recsys.data.line_file import LineFile
from recsys.data.lines import BasketLines
from recsys.data.sources import write_tables
from recsys.errors import DataValidationError
from recsys.incrementality.experiment import experiment_transactions

BATCH = 997  # rows: the small data's lines in some thirty batches, none of them aligned to anything


@pytest.fixture
def small_batches(monkeypatch):
    monkeypatch.setattr(batches, "BATCH_ROWS", BATCH)


def _write(synth, path, change=None):
    tables = {k: v.copy() for k, v in synth[0].items()}
    if change is not None:
        change(tables)
    write_tables(tables, path)
    return path


def _issues(path, **kw):
    with pytest.raises(DataValidationError) as info:
        load_dataset(path, **kw)
    return [dataclasses.astuple(i) for i in info.value.issues]


def test_staged_lines_are_the_lines_validated_in_memory(synth, tmp_path, small_batches):
    path = _write(synth, tmp_path / "data")
    whole = load_dataset(path)
    staged = load_dataset(path, stage=str(tmp_path / "stage"))
    tx = staged.transactions
    assert isinstance(tx, LineFile) and len(tx) == len(whole.transactions) > 20 * BATCH
    pd.testing.assert_frame_equal(tx.frame(), whole.transactions.reset_index(drop=True))
    for name in (C.PRODUCTS, C.CUSTOMERS, C.OFFERS, C.OFFER_EVENTS):
        pd.testing.assert_frame_equal(getattr(staged, name), getattr(whole, name))
    assert staged.fingerprint() == whole.fingerprint()
    assert staged.summary() == whole.summary()
    assert list(staged.customer_ids()) == list(whole.customer_ids())
    assert (tx.first, tx.last) == (whole.transactions[C.TIMESTAMP].min(), whole.transactions[C.TIMESTAMP].max())
    as_of = whole.transactions[C.TIMESTAMP].quantile(0.5)
    assert (
        tx.buyers_before(as_of)
        == whole.transactions.loc[whole.transactions[C.TIMESTAMP] < as_of, C.CUSTOMER_ID].nunique()
    )
    some = whole.transactions[C.CUSTOMER_ID].unique()[:7]
    pd.testing.assert_frame_equal(
        tx.frame(some).sort_values([C.CUSTOMER_ID, C.TIMESTAMP, C.PRODUCT_ID], ignore_index=True),
        whole.transactions[whole.transactions[C.CUSTOMER_ID].isin(some)].sort_values(
            [C.CUSTOMER_ID, C.TIMESTAMP, C.PRODUCT_ID], ignore_index=True
        ),
    )


def test_the_history_and_basket_lines_of_staged_lines_are_those_of_the_frame(synth, tmp_path, small_batches):
    path = _write(synth, tmp_path / "data")
    whole, staged = load_dataset(path), load_dataset(path, stage=str(tmp_path / "stage"))
    a = PurchaseHistory.of(whole.transactions, whole.products, whole.customers, whole.offer_events)
    b = PurchaseHistory.of(staged.transactions, staged.products, staged.customers, staged.offer_events)
    for table in ("baskets", "first_bought", "departments", "events"):
        pd.testing.assert_frame_equal(getattr(b, table), getattr(a, table), obj=table)
    cut = whole.transactions[C.TIMESTAMP].quantile(0.7)
    with BasketLines.of(whole.transactions) as la, BasketLines.of(staged.transactions) as lb:
        for view in (lambda lines: lines, lambda lines: lines.before(cut)):
            x = pd.DataFrame(view(la).counts()).sort_values(["c", "p"], ignore_index=True)
            y = pd.DataFrame(view(lb).counts()).sort_values(["c", "p"], ignore_index=True)
            assert len(x) > 1000
            pd.testing.assert_frame_equal(y, x)
        pd.testing.assert_series_equal(lb.prices(cut), la.prices(cut))


def _nulls_and_future(tables):
    tx = tables[C.TRANSACTIONS]
    rows = np.arange(5, len(tx), 1500)  # in most batches
    tx.loc[rows[::2], C.CUSTOMER_ID] = None
    tx.loc[rows[1::2], C.TIMESTAMP] = pd.Timestamp("2031-01-01")


def _purchases_below_zero(tables):
    tx = tables[C.TRANSACTIONS]
    rows = tx.index[tx[C.QUANTITY] > 0][3::1100]
    tx.loc[rows, C.AMOUNT] = -tx.loc[rows, C.AMOUNT].abs() - 1


def _fractional_quantities(tables):
    tx = tables[C.TRANSACTIONS]
    tx[C.QUANTITY] = tx[C.QUANTITY].astype("float64")
    tx.loc[tx.index[7::1300], C.QUANTITY] = 1.5
    tables[C.OFFER_EVENTS].loc[0, C.EVENT] = "clicked"  # and a problem in another table


@pytest.mark.parametrize("change", [_nulls_and_future, _purchases_below_zero, _fractional_quantities])
def test_problems_found_batch_by_batch_are_those_found_at_once(synth, tmp_path, small_batches, change):
    path = _write(synth, tmp_path / "data", change)
    stage = tmp_path / "stage"
    stage.mkdir()
    whole = _issues(path)
    assert whole and any(i[0] == C.TRANSACTIONS and i[3] > 1 for i in whole)
    assert _issues(path, stage=str(stage)) == whole
    assert not any(stage.iterdir())  # nothing half-written is left


def test_warnings_found_batch_by_batch_are_those_found_at_once(synth, tmp_path, small_batches):
    def unknown_ids(tables):
        tx = tables[C.TRANSACTIONS]
        tx.loc[tx.index[11::900], C.PRODUCT_ID] = 10**9 + np.arange(len(tx.index[11::900])) % 13
        customers = tables[C.CUSTOMERS]
        tables[C.CUSTOMERS] = customers[np.arange(len(customers)) % 17 != 0]

    path = _write(synth, tmp_path / "data", unknown_ids)
    whole = load_dataset(path)
    staged = load_dataset(path, stage=str(tmp_path / "stage"))
    assert {(w.table, w.column) for w in whole.warnings} >= {
        (C.TRANSACTIONS, C.PRODUCT_ID),
        (C.TRANSACTIONS, C.CUSTOMER_ID),
    }
    assert [dataclasses.astuple(w) for w in staged.warnings] == [dataclasses.astuple(w) for w in whole.warnings]
    with pytest.raises(DataValidationError) as strict:
        load_dataset(path, stage=str(tmp_path / "strict"), strict=True)
    assert "13 unknown products" in str(strict.value)


def test_an_unreadable_parquet_file_is_named(synth, tmp_path):
    path = _write(synth, tmp_path / "data")
    (path / "transactions.parquet").write_bytes(b"PAR1 not really")
    with pytest.raises(DataValidationError, match=r"transactions: cannot read transactions.parquet"):
        load_dataset(path, stage=str(tmp_path))


def test_the_experiments_lines_are_read_from_disk(synth_experiments, tmp_path, small_batches):
    path = tmp_path / "data"
    write_tables(synth_experiments[0], path)
    whole, staged = load_dataset(path), load_dataset(path, stage=str(tmp_path))
    a = experiment_transactions(whole.transactions, whole.offer_events)
    b = experiment_transactions(staged.transactions, staged.offer_events)
    assert a is not None and len(a)
    order = [C.CUSTOMER_ID, C.TIMESTAMP, C.PRODUCT_ID, C.AMOUNT]
    pd.testing.assert_frame_equal(b.sort_values(order, ignore_index=True), a.sort_values(order, ignore_index=True))
