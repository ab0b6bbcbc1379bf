"""The bundle's files: the offer ranker's snapshot stored as arrays, exactly as fitted."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from recsys.bundle import ModelBundle
from recsys.cf.base import ModelFileError
from recsys.data import Dataset
from recsys.offers.snapshot import snapshot
from recsys.offers.snapshot_files import load_snapshot, save_snapshot

MATRICES = ("counts", "spend", "decayed", "recent")
VECTORS = ("category_of", "customer_baskets", "customer_redemptions", "product_popularity", "customer_lines")


def _same(a, b) -> None:
    assert a.as_of == b.as_of
    assert a.customer_map.ids.equals(b.customer_map.ids) and a.product_map.ids.equals(b.product_map.ids)
    for name in MATRICES:
        left, right = getattr(a, name).tocsr(), getattr(b, name).tocsr()
        assert left.shape == right.shape and left.dtype == right.dtype == np.float32, name
        assert (left != right).nnz == 0, name
    for name in VECTORS:
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)
    assert list(a.categories) == list(b.categories)
    pd.testing.assert_frame_equal(
        a.offer_history.sort_index(), b.offer_history.sort_index(), check_names=False, check_index_type=False
    )
    np.testing.assert_array_equal(a.category_counts.toarray(), b.category_counts.toarray())


def test_snapshot_round_trips_exactly(synth, tmp_path):
    tables, _ = synth
    ds = Dataset(**tables)
    as_of = ds.transactions["timestamp"].max().normalize()
    snap = snapshot(ds.transactions, as_of, products=ds.products, offer_events=ds.offer_events)
    assert snap.counts.nnz > 1000
    _same(snap, load_snapshot(save_snapshot(snap, tmp_path / "snap")))


def test_counts_that_do_not_fit_16_bits_are_kept_as_floats(synth, tmp_path):
    tables, _ = synth
    ds = Dataset(**tables)
    snap = snapshot(ds.transactions, ds.transactions["timestamp"].max(), products=ds.products)
    snap.counts.data[0] = 70_000.0
    snap.recent.data[:1] = 0.5
    _same(snap, load_snapshot(save_snapshot(snap, tmp_path / "snap")))


def test_the_ranker_pickle_holds_no_customer_state_and_ranks_as_before(synth_bundle_dir, tmp_path):
    import joblib

    pickled = joblib.load(synth_bundle_dir / "ranker.joblib")
    # the pickle keeps parameters, the redemption model and the products; the matrices are arrays
    assert pickled.snapshot_ is None and pickled.cf_model_ is None
    bundle = ModelBundle.load(synth_bundle_dir)
    again = ModelBundle.load(bundle.save(tmp_path / "again"))
    _same(bundle.ranker.snapshot_, again.ranker.snapshot_)
    ids = [*bundle.customers.index[:50].tolist(), "never-seen"]
    pd.testing.assert_frame_equal(bundle.offers(ids, k=5), again.offers(ids, k=5))


def test_a_snapshot_without_its_arrays_is_refused_by_name(synth_bundle_dir, tmp_path):
    import shutil

    copy = tmp_path / "snap"
    shutil.copytree(synth_bundle_dir / "snapshot", copy)
    (copy / "snapshot.npz").unlink()
    with pytest.raises(ModelFileError, match=r"snapshot\.npz"):
        load_snapshot(copy)


def test_the_als_counts_are_kept_once_beside_the_snapshot(synth_bundle_dir):
    import json

    from recsys.cf import ALSRecommender

    assert json.loads((synth_bundle_dir / "bundle.json").read_text())["als_counts"] == "snapshot"
    with np.load(synth_bundle_dir / "als" / "als.npz") as z:
        assert "counts_data" not in z.files
    bundle = ModelBundle.load(synth_bundle_dir)
    assert bundle.ranker.cf_model_.user_counts_ is bundle.ranker.snapshot_.counts  # one matrix in memory
    with pytest.raises(ModelFileError, match="saved without its purchase counts"):
        ALSRecommender.load(synth_bundle_dir / "als")
