"""Basket lines in DuckDB: the snapshot's sums equal the plain pandas statement of them, in
memory and on disk, at any cut; the database file goes when the lines are closed."""

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from recsys import constants as C
from recsys.data import duck as duck_module
from recsys.data.dataset import Dataset
from recsys.data.duck import DuckSettings
from recsys.data.lines import DAY_NS as DAY
from recsys.data.lines import BasketLines
from recsys.data.validate import validate_tables
from recsys.errors import ConfigurationError
from recsys.offers.snapshot import HALF_LIFE_DAYS, RECENT_DAYS, basket_lines, snapshot


@pytest.fixture(scope="module")
def ds(synth):
    return Dataset(**validate_tables(synth[0])[0])


def plain_snapshot(tx: pd.DataFrame, as_of: pd.Timestamp) -> tuple[pd.DataFrame, pd.Series]:
    """The snapshot's sums per (customer, product) and baskets per customer, said in pandas."""
    tx = tx[(tx[C.TIMESTAMP] < as_of) & (tx[C.QUANTITY] > 0)]
    keys = [C.CUSTOMER_ID, C.PRODUCT_ID, C.BASKET_ID]
    lines = tx.groupby(keys).agg(ts=(C.TIMESTAMP, "min"), amount=(C.AMOUNT, "sum")).reset_index()
    lines["amount"] = lines["amount"].clip(lower=0)
    age = (as_of - lines["ts"]) / pd.Timedelta(days=1)
    lines["decayed"], lines["recent"] = 0.5 ** (age / HALF_LIFE_DAYS), (age <= RECENT_DAYS).astype(float)
    sums = lines.groupby([C.CUSTOMER_ID, C.PRODUCT_ID]).agg(
        counts=("ts", "size"), spend=("amount", "sum"), decayed=("decayed", "sum"), recent=("recent", "sum")
    )
    return sums, lines.groupby(C.CUSTOMER_ID)[C.BASKET_ID].nunique()


def dense(snap, matrix) -> pd.Series:
    m = matrix.tocoo()
    index = pd.MultiIndex.from_arrays(
        [snap.customer_map.ids[m.row], snap.product_map.ids[m.col]], names=[C.CUSTOMER_ID, C.PRODUCT_ID]
    )
    return pd.Series(m.data.astype(np.float64), index=index).sort_index()


@pytest.mark.parametrize("on_disk", [False, True])
def test_snapshot_sums_equal_the_plain_statement_in_memory_and_on_disk(ds, monkeypatch, on_disk):
    monkeypatch.setattr(duck_module, "ON_DISK_FROM", 0 if on_disk else 10**9)
    tx = ds.transactions
    cuts = [tx[C.TIMESTAMP].quantile(q).floor("D") + pd.Timedelta(hours=13) for q in (0.3, 0.8)]
    with basket_lines(tx) as lines:
        assert (lines.directory is not None) == on_disk
        for as_of in cuts:  # one set of lines, many cuts
            snap = snapshot(tx, as_of, products=ds.products, lines=lines)
            sums, baskets = plain_snapshot(tx, as_of)
            for name in ("counts", "spend", "decayed", "recent"):
                got = dense(snap, getattr(snap, name))
                want = sums[name][sums[name] > 0].sort_index()
                assert list(got.index) == list(want.index), name
                np.testing.assert_allclose(got.to_numpy(), want.to_numpy(), rtol=1e-5, err_msg=name)
            assert list(snap.customer_map.ids) == sorted(baskets.index)
            np.testing.assert_array_equal(snap.customer_baskets, baskets.reindex(snap.customer_map.ids).to_numpy())
            np.testing.assert_allclose(snap.customer_lines, sums.groupby(level=0)["counts"].sum().to_numpy())


@pytest.mark.parametrize("on_disk", [False, True])
def test_a_snapshot_of_some_customers_holds_their_rows_of_the_snapshot_of_everyone(ds, monkeypatch, on_disk):
    monkeypatch.setattr(duck_module, "ON_DISK_FROM", 0 if on_disk else 10**9)
    tx, events = ds.transactions, ds.offer_events
    as_of = tx[C.TIMESTAMP].quantile(0.7).floor("D")
    ids = np.sort(tx[C.CUSTOMER_ID].unique())
    # a campaign's recipients: some customers with baskets, one who bought nothing yet, one unknown
    late = tx.groupby(C.CUSTOMER_ID)[C.TIMESTAMP].min().loc[lambda t: t >= as_of].index
    some = pd.Index([*ids[::7][:40], *late[:1], 10**9])
    with basket_lines(tx) as lines:
        known = {"products": ds.products, "offer_events": events, "lines": lines}
        everyone = snapshot(None, as_of, **known)
        few = snapshot(None, as_of, customers=some, **known)
    assert len(late) and late[0] not in few.customer_map.ids and 10**9 not in few.customer_map.ids
    assert list(few.customer_map.ids) == sorted(set(some) & set(everyone.customer_map.ids))
    rows = everyone.customer_map.positions(few.customer_map.ids)
    for name in ("counts", "spend", "decayed", "recent", "category_counts"):
        want, got = getattr(everyone, name)[rows], getattr(few, name)
        assert (got != want).nnz == 0 and got.nnz == want.nnz > 0, name
    for name in ("customer_baskets", "customer_redemptions", "customer_lines"):
        np.testing.assert_array_equal(getattr(few, name), getattr(everyone, name)[rows], err_msg=name)
    assert few.customer_redemptions.sum() > 0
    # popularity is every customer's, not the few's
    np.testing.assert_array_equal(few.product_popularity, everyone.product_popularity)
    assert list(few.product_map.ids) == list(everyone.product_map.ids)
    pd.testing.assert_frame_equal(few.offer_history, everyone.offer_history)
    with pytest.raises(ValueError, match="not both"):
        snapshot(tx, as_of, customers=some, customer_map=everyone.customer_map)


def test_lines_sum_a_product_scanned_twice_and_leave_out_returns_text_baskets_and_none():
    t = pd.Timestamp("2024-03-01 10:00")
    tx = pd.DataFrame(
        {
            C.CUSTOMER_ID: [1, 1, 1, 1, 2],
            C.PRODUCT_ID: [10, 10, 11, 12, 10],
            C.BASKET_ID: ["a", "a", "a", "a", "b"],
            C.TIMESTAMP: [t, t + pd.Timedelta(minutes=1), t, t, t],
            C.QUANTITY: [1, 2, 1, -1, 1],
            C.AMOUNT: [2.0, 4.5, -0.5, -3.0, 1.25],
        }
    )
    with BasketLines.of(tx) as lines:
        got = pd.DataFrame(lines.pairs(t + pd.Timedelta(days=1))).set_index(["c", "p"]).sort_index()
        assert got["spend"].to_dict() == {(1, 10): 6.5, (1, 11): 0.0, (2, 10): 1.25}  # 12 is a return
        assert got["baskets"].tolist() == [1.0, 1.0, 1.0]
        assert lines.last() == t.value  # a basket's line is at its first moment
        assert lines.pairs(t)["c"].size == 0  # strictly before the cut
        baskets = pd.Series(*reversed(list(lines.customer_baskets().values())))
        assert baskets.to_dict() == {1: 1, 2: 1}
    # without basket ids each moment is a basket
    with BasketLines.of(tx.drop(columns=C.BASKET_ID)) as lines:
        got = pd.DataFrame(lines.customer_baskets()).set_index("c")["baskets"]
        assert got.to_dict() == {1: 2, 2: 1}


@pytest.mark.parametrize("rows_only", [False, True])
@pytest.mark.parametrize("text_ids", [False, True])
def test_positioned_pairs_are_the_pairs_at_their_map_positions_in_csr_order(ds, text_ids, rows_only):
    import scipy.sparse as sp

    from recsys.cf.interactions import positioned_matrices

    tx = ds.transactions
    as_of = tx[C.TIMESTAMP].quantile(0.6).floor("D")
    # maps that leave out some ids of the lines and hold ids the lines never name
    customers = pd.Index([*sorted(tx[C.CUSTOMER_ID].unique())[5:], 10**9])
    products = pd.Index([*sorted(tx[C.PRODUCT_ID].unique())[:-7], 10**9 + 1])
    if text_ids:  # ids kept as given: numbers in the lines, text in the maps
        customers, products = customers.astype(str), products.astype(str)
    with BasketLines.of(tx) as lines:
        plain = pd.DataFrame(lines.pairs(as_of))
        got = lines.pairs(as_of, rows=customers, columns=products, rows_only=rows_only)
    keys = [
        customers.get_indexer(plain["c"].astype(customers.dtype)),
        products.get_indexer(plain["p"].astype(products.dtype)),
    ]
    want = plain.assign(c=keys[0], p=keys[1])[(keys[0] >= 0) & (keys[1] >= 0)].sort_values(["c", "p"])
    assert got["c"].dtype == np.int32 and len(want) > 0 and len(want) < len(plain)
    for name in ("c", "p", "baskets", "spend", "decayed", "recent"):
        np.testing.assert_array_equal(got[name], want[name].to_numpy(), err_msg=name)
    shape = (len(customers), len(products))
    counts, spend = positioned_matrices(got, shape, ["baskets", "spend"])
    plain_spend = sp.coo_matrix((want["spend"], (want["c"], want["p"])), shape=shape).toarray()
    np.testing.assert_allclose(spend.toarray(), plain_spend, rtol=1e-6)
    assert (
        counts.has_canonical_format and counts.dtype == np.float32 and np.shares_memory(counts.indices, spend.indices)
    )
    (empty,) = positioned_matrices({k: v[:0] for k, v in got.items()}, shape, ["baskets"])
    assert empty.nnz == 0 and empty.shape == shape


def test_on_disk_lines_live_in_a_directory_removed_on_close(monkeypatch, tmp_path, ds):
    monkeypatch.setattr(duck_module, "ON_DISK_FROM", 0)
    monkeypatch.setenv("RECSYS_DUCKDB_TEMP", str(tmp_path))
    monkeypatch.setenv("RECSYS_DUCKDB_MEMORY", "300MB")
    monkeypatch.setenv("RECSYS_DUCKDB_THREADS", "1")
    assert DuckSettings.from_env() == DuckSettings("300MB", 1, str(tmp_path))
    lines = BasketLines.of(ds.transactions)
    (directory,) = tmp_path.iterdir()
    assert (directory / "lines.duckdb").exists()
    limit = lines._db.con.execute("SELECT current_setting('memory_limit'), current_setting('threads')").fetchone()
    assert limit[1] == 1 and limit[0].replace(" ", "").lower().startswith(("286", "300"))
    lines.close()
    assert not os.listdir(tmp_path)
    lines.close()  # a second close does nothing


@pytest.mark.parametrize(
    ("variable", "value"),
    [("RECSYS_DUCKDB_MEMORY", "lots"), ("RECSYS_DUCKDB_THREADS", "0"), ("RECSYS_DUCKDB_THREADS", "x")],
)
def test_a_bad_setting_is_refused_by_name(monkeypatch, variable, value):
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigurationError, match=f"{variable}='{value}'"):
        DuckSettings.from_env()


def test_lines_that_cannot_be_built_leave_no_directory(monkeypatch, tmp_path, ds):
    monkeypatch.setattr(duck_module, "ON_DISK_FROM", 0)
    monkeypatch.setenv("RECSYS_DUCKDB_TEMP", str(tmp_path))
    monkeypatch.setenv("RECSYS_DUCKDB_MEMORY", "1KB")  # DuckDB runs out of memory building them
    with pytest.raises(ConfigurationError, match="RECSYS_DUCKDB_MEMORY='1KB' is too little"):
        BasketLines.of(ds.transactions)
    assert not os.listdir(tmp_path)


def _sorted(result: dict) -> pd.DataFrame:
    frame = pd.DataFrame(result)
    return frame.sort_values(list(frame.columns[:2])).reset_index(drop=True)


def test_a_view_sees_only_the_lines_before_its_end_and_models_fit_on_it_as_on_the_cut_table(ds):
    from recsys.cf import PopularityRecommender, RepeatPurchaseRecommender

    tx = ds.transactions
    cut = tx[C.TIMESTAMP].quantile(0.6).floor("D")
    later = cut + pd.Timedelta(days=30)
    with BasketLines.of(tx) as lines, BasketLines.of(tx[tx[C.TIMESTAMP] < cut]) as cut_lines:
        view = lines.before(later).before(cut)  # views of views end at the earlier end
        assert view.last() == cut_lines.last() < cut.value
        pd.testing.assert_frame_equal(_sorted(view.pairs(later)), _sorted(cut_lines.pairs(cut)))
        pd.testing.assert_frame_equal(_sorted(view.counts()), _sorted(cut_lines.counts()))
        pd.testing.assert_frame_equal(_sorted(view.customer_baskets()), _sorted(cut_lines.customer_baskets()))
        since = cut - pd.Timedelta(days=20)
        pd.testing.assert_frame_equal(_sorted(view.buyers(since)), _sorted(cut_lines.buyers(since)))
        assert len(view.counts()["c"]) < len(lines.counts()["c"])  # the view does hide lines
        for model in (RepeatPurchaseRecommender(), PopularityRecommender(window_days=20)):
            on_view, on_table = type(model)(**model.get_params()).fit(view), model.fit(tx[tx[C.TIMESTAMP] < cut])
            assert list(on_view.customer_map_.ids) == list(on_table.customer_map_.ids)
            assert (on_view.user_counts_ != on_table.user_counts_).nnz == 0
            np.testing.assert_array_equal(on_view.popularity_, on_table.popularity_)
        view.close()  # closes nothing: the lines stay open
        assert len(lines.counts()["c"]) > 0


@pytest.mark.parametrize("on_disk", [False, True])
def test_prices_are_the_mean_amount_of_a_purchased_line_and_a_since_view_starts_at_its_start(ds, monkeypatch, on_disk):
    monkeypatch.setattr(duck_module, "ON_DISK_FROM", 0 if on_disk else 10**9)
    t = pd.Timestamp("2024-03-01 10:00")
    small = pd.DataFrame(
        {
            C.CUSTOMER_ID: [1, 1, 1, 1, 2, 2],
            C.PRODUCT_ID: [10, 10, 11, 12, 10, 11],
            C.BASKET_ID: [7, 7, 7, 7, 8, 9],
            C.TIMESTAMP: [t, t, t, t, t, t + pd.Timedelta(days=3)],
            C.QUANTITY: [1, 2, 1, -1, 1, 1],
            C.AMOUNT: [2.0, 4.5, -0.5, -3.0, 1.25, 1.5],
        }
    )
    with BasketLines.of(small) as lines:
        # product 10: three lines (two in one basket) of 2, 4.5 and 1.25; 11 before the cut: one
        # line of -0.5 (its spend counts as 0, its price as it is); 12 only returned
        assert lines.prices(t + pd.Timedelta(days=1)).to_dict() == {10: 7.75 / 3, 11: -0.5}
        assert lines.first() == t.value and lines.since(t + pd.Timedelta(days=1)).first() == t.value + 3 * DAY
    tx = ds.transactions
    cut, end = (tx[C.TIMESTAMP].quantile(q).floor("D") for q in (0.5, 0.8))
    bought = tx[(tx[C.TIMESTAMP] < end) & (tx[C.QUANTITY] > 0)]
    with BasketLines.of(tx) as lines:
        got = lines.prices(end)
        want = bought.groupby(C.PRODUCT_ID)[C.AMOUNT].mean()
        pd.testing.assert_series_equal(got.sort_index(), want.sort_index(), check_names=False, rtol=1e-9)
        window = lines.before(end).since(cut)  # the test period of a next-period evaluation
        plain = bought[bought[C.TIMESTAMP] >= cut]
        pairs = _sorted(window.counts())
        assert set(zip(pairs["c"], pairs["p"])) == set(zip(plain[C.CUSTOMER_ID], plain[C.PRODUCT_ID]))
        assert window.first() >= cut.value and window.last() < end.value
        assert lines.since(cut).before(end).last() == window.last()  # in either order
        assert window.since(cut - pd.Timedelta(days=9)).first() == window.first()  # a view's start holds


def _plain_recent_buyers(tx: pd.DataFrame, start, cut, days: float) -> dict:
    bought = tx[(tx[C.QUANTITY] > 0) & (tx[C.TIMESTAMP] < cut) & (tx[C.TIMESTAMP] >= start)]
    bought = bought.groupby([C.CUSTOMER_ID, C.PRODUCT_ID, C.BASKET_ID])[C.TIMESTAMP].min().reset_index()
    recent = bought[(cut - bought[C.TIMESTAMP]) <= pd.Timedelta(days=days)]
    return recent.groupby(C.PRODUCT_ID)[C.CUSTOMER_ID].nunique().to_dict()


@pytest.mark.parametrize("on_disk", [False, True])
def test_recent_buyers_are_counted_once_per_start_and_cut_for_the_lines_and_all_their_views(ds, monkeypatch, on_disk):
    monkeypatch.setattr(duck_module, "ON_DISK_FROM", 0 if on_disk else 10**9)
    tx = ds.transactions
    start, cut, end = (tx[C.TIMESTAMP].quantile(q).floor("D") for q in (0.2, 0.6, 0.8))
    first = tx[C.TIMESTAMP].min()
    with BasketLines.of(tx) as lines:
        got = lines.recent_buyers(cut, recent_days=30)
        assert dict(zip(got["p"].tolist(), got["buyers"].tolist())) == _plain_recent_buyers(tx, first, cut, 30)
        # a view ending later, or ending at the cut, sees the same lines before it: the count kept
        assert lines.before(end).recent_buyers(cut, recent_days=30) is got
        assert lines.before(cut).recent_buyers(end, recent_days=30) is got
        with pytest.raises(ValueError, match="read-only"):
            got["buyers"][0] = 0
        # another cut, another window, another start: each its own count
        for view, at, days, since in (
            (lines, end, 30, first),
            (lines, cut, 10, first),
            (lines.since(start), cut, 30, start),
        ):
            other = view.recent_buyers(at, recent_days=days)
            assert other is not got
            assert dict(zip(other["p"].tolist(), other["buyers"].tolist())) == _plain_recent_buyers(tx, since, at, days)


def test_released_lines_on_disk_free_their_connection_and_reopen_at_the_next_query(ds, monkeypatch, tmp_path):
    monkeypatch.setattr(duck_module, "ON_DISK_FROM", 0)
    monkeypatch.setenv("RECSYS_DUCKDB_TEMP", str(tmp_path))
    with BasketLines.of(ds.transactions) as lines:
        view = lines.before(ds.transactions[C.TIMESTAMP].quantile(0.7))
        before = _sorted(view.pairs())
        view.release()  # a view releases the connection it shares with its lines
        assert lines._db.con is None and (Path(lines.directory) / "lines.duckdb").exists()
        pd.testing.assert_frame_equal(_sorted(view.pairs()), before)
        assert lines._db.con is not None
        limit = lines._db.con.execute("SELECT current_setting('threads')").fetchall()[0][0]
        assert limit == DuckSettings.from_env().threads  # reopened within the same limits
    assert not os.listdir(tmp_path)
    monkeypatch.setattr(duck_module, "ON_DISK_FROM", 10**9)
    with BasketLines.of(ds.transactions) as lines:
        lines.release()  # lines in memory would be lost: they keep their connection
        assert lines._db.con is not None and len(lines.counts()["c"])


STOPPED_MID_STAGE = """
import os, signal, sys, time
import mlflow
import pandas as pd
from recsys.data import duck
from recsys.data.lines import DAY_NS as DAY
from recsys.data.lines import BasketLines
from training.cli import terminate_as_exit

duck.ON_DISK_FROM = 0  # a database file, as for large data
t = pd.Timestamp("2024-03-01")
tx = pd.DataFrame({"customer_id": [1, 2], "product_id": [10, 11], "basket_id": [5, 6], "timestamp": [t, t],
                   "quantity": [1, 1], "amount": [2.0, 3.0]})
mlflow.set_tracking_uri(sys.argv[1])
guard = terminate_as_exit() if sys.argv[2] == "guarded" else open(os.devnull)
with guard, mlflow.start_run(run_name="stage") as run, BasketLines.of(tx) as lines:
    print(lines.directory, run.info.run_id, flush=True)
    os.kill(os.getpid(), signal.SIGTERM)  # the scheduler stops the job mid-stage
    time.sleep(30)
"""


@pytest.mark.parametrize("guarded", [True, False])
def test_a_training_stopped_by_sigterm_removes_its_lines_and_fails_its_run(tmp_path, guarded, monkeypatch):
    import subprocess
    import sys

    from mlflow.tracking import MlflowClient

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    from tests.procs import child_env

    env = child_env(RECSYS_DUCKDB_TEMP=str(tmp_path))  # no experiment id another test left set
    argv = [sys.executable, "-c", STOPPED_MID_STAGE, uri, "guarded" if guarded else "plain"]
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120)
    assert done.stdout.strip(), done.stderr  # it stopped before holding its lines: why
    directory, run_id = done.stdout.split()
    status = MlflowClient(uri).get_run(run_id).info.status
    if guarded:  # as `recsys train` runs its stages
        assert done.returncode == 143, done.stderr
        assert not os.path.exists(directory) and status == "FAILED"
    else:  # the default: killed where it stood, its directory left behind
        assert done.returncode == -15 and os.path.isdir(directory) and status == "RUNNING"
        # the next lines made under the same temporary directory remove what it left
        monkeypatch.setattr(duck_module, "ON_DISK_FROM", 0)
        monkeypatch.setenv("RECSYS_DUCKDB_TEMP", str(tmp_path))
        one = {C.CUSTOMER_ID: [1], C.PRODUCT_ID: [10], C.BASKET_ID: [5], C.TIMESTAMP: [pd.Timestamp("2024-03-01")]}
        with BasketLines.of(pd.DataFrame(one)):
            assert not os.path.exists(directory)


def test_only_the_scratch_directories_of_this_hosts_stopped_processes_are_removed(tmp_path, monkeypatch):
    import socket
    import subprocess
    import sys

    stopped = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    host, gone = socket.gethostname(), int(stopped.stdout)
    owners = {
        "recsys-lines-stopped": f"{host} {gone}",
        "recsys-duck-stopped": f"{host} {gone}",
        "recsys-lines-running": f"{host} {os.getpid()}",  # this process
        "recsys-lines-elsewhere": f"another-host {gone}",  # a shared temporary directory
        "recsys-lines-unowned": None,  # being made, or by an older version: not ours to judge
        "other-stopped": f"{host} {gone}",  # not a directory of ours
    }
    for name, owner in owners.items():
        (tmp_path / name).mkdir()
        if owner:
            (tmp_path / name / duck_module.OWNER).write_text(owner)
    made = duck_module.scratch_directory("recsys-lines-", DuckSettings(temp=str(tmp_path)))
    left = sorted(p.name for p in tmp_path.iterdir())
    assert left == sorted([*(n for n in owners if not n.endswith("-stopped")), "other-stopped", Path(made).name])
    assert (Path(made) / duck_module.OWNER).read_text().split() == [host, str(os.getpid())]
