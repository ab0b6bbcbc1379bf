"""Collaborative filtering: planted preferences recovered, persistence, cold start, weighting."""

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from recsys import constants as C
from recsys.cf import (
    ALSRecommender,
    ItemKNNRecommender,
    ModelFileError,
    PopularityRecommender,
    RepeatPurchaseRecommender,
    evaluate_next_period,
    next_period_cut,
    next_period_split,
    select_als,
)
from recsys.cf.als import _weight
from recsys.data.dataset import Dataset
from recsys.data.synthetic import DEPARTMENTS, SEGMENT_DEPARTMENT
from recsys.data.validate import validate_tables

ALS_SMALL = {"factors": 16, "iterations": 10}


@pytest.fixture(scope="module")
def ds(synth):
    return Dataset(**validate_tables(synth[0])[0])


@pytest.fixture(scope="module")
def split(ds):
    return next_period_split(ds.transactions, 28)


@pytest.fixture(scope="module")
def als(split):
    return ALSRecommender(**ALS_SMALL).fit(split[0])


def test_split_is_temporal(split):
    train, test, cut = split
    assert train[C.TIMESTAMP].max() < cut <= test[C.TIMESTAMP].min()


def test_als_recommends_the_planted_department(ds, synth, als):
    truth = synth[1]["customers"].set_index(C.CUSTOMER_ID)
    dept_of = ds.products.set_index(C.PRODUCT_ID)[C.DEPARTMENT]
    names = list(DEPARTMENTS)
    customers = als.customer_map_.ids[:150].tolist()
    preferred = [names[SEGMENT_DEPARTMENT[truth.loc[c, "segment"]]] for c in customers]

    def share(recs):
        return np.mean([np.mean([dept_of[p] == d for p in r]) for r, d in zip(recs, preferred)])

    als_share = share(als.recommend_many(customers, 10, exclude_purchased=True))
    pop_share = share(
        PopularityRecommender().fit(ds.transactions).recommend_many(customers, 10, exclude_purchased=True)
    )
    assert als_share > 0.6
    assert als_share > pop_share + 0.25


def test_next_period_metrics_beside_baselines(split, als):
    train, test, _ = split
    models = {
        "popularity": PopularityRecommender().fit(train),
        "repeat": RepeatPurchaseRecommender().fit(train),
        "als": als,
        "item_knn": ItemKNNRecommender().fit(train),
    }
    r = evaluate_next_period(models, train, test, k=10).set_index(["model", "task"])
    assert set(r.index.get_level_values("task")) == {"all", "discovery"}
    for col in ("precision_at_10", "recall_at_10", "ndcg_at_10", "map_at_10", "hit_at_10", "coverage_at_10"):
        assert r[col].between(0, 1).all(), col
    # discovery: planted preferences make ALS and item-kNN far better than popularity at new products
    assert r.loc[("als", "discovery"), "recall_at_10"] > 2 * r.loc[("popularity", "discovery"), "recall_at_10"]
    assert r.loc[("item_knn", "discovery"), "recall_at_10"] > 2 * r.loc[("popularity", "discovery"), "recall_at_10"]
    assert r.loc[("repeat", "all"), "recall_at_10"] > r.loc[("popularity", "all"), "recall_at_10"]


def test_save_and_load_give_identical_model(tmp_path, als):
    als.save(tmp_path / "als")
    back = ALSRecommender.load(tmp_path / "als")
    np.testing.assert_array_equal(back.user_factors_, als.user_factors_)
    np.testing.assert_array_equal(back.item_factors_, als.item_factors_)
    assert back.get_params() == als.get_params()
    ids = als.customer_map_.ids[:20].tolist()
    assert back.recommend_many(ids, 10) == als.recommend_many(ids, 10)
    assert not list(tmp_path.glob("als/*.pkl"))


def test_load_names_what_is_missing(tmp_path, als):
    als.save(tmp_path / "m")
    (tmp_path / "m" / "products.parquet").unlink()
    with pytest.raises(ModelFileError, match=r"missing products\.parquet"):
        ALSRecommender.load(tmp_path / "m")


def test_cold_start_and_recomputed_factors(split, als):
    train, _, _ = split
    popular = PopularityRecommender(window_days=None).fit(train).recommend_many(["nobody"], 5)[0]
    assert als.recommend_many(["nobody"], 5)[0] == popular
    assert als.user_vector("nobody") is None
    # A customer's factors recomputed from their own history come close to the trained ones.
    cid = als.customer_map_.ids[3]
    own = train[train[C.CUSTOMER_ID] == cid]
    again = als.user_vector(history=own)
    stored = als.user_vector(cid)
    cos = again @ stored / np.linalg.norm(again) / np.linalg.norm(stored)
    assert cos > 0.9
    # ... and a brand-new customer with a few purchases gets a usable vector
    new = own.head(20).assign(**{C.CUSTOMER_ID: "C-new"})
    assert np.linalg.norm(als.user_vector("C-new", history=new)) > 0


def test_weighting_matches_implicit_on_training_rows():
    from implicit.nearest_neighbours import bm25_weight, tfidf_weight

    rng = np.random.default_rng(0)
    counts = sp.random(40, 30, density=0.2, random_state=1, format="csr", dtype=np.float32)
    counts.data = rng.integers(1, 5, counts.nnz).astype(np.float32)
    df = np.bincount(counts.indices, minlength=30)
    idf = (np.log(40) - np.log1p(df)).astype(np.float32)
    avg = float(np.ravel(counts.sum(axis=1)).mean())
    ours = _weight(counts, "bm25", idf, avg, 100.0, 0.8).toarray()
    np.testing.assert_allclose(ours, bm25_weight(counts, K1=100, B=0.8).toarray(), rtol=1e-5)
    np.testing.assert_allclose(
        _weight(counts, "tfidf", idf, avg, 0, 0).toarray(), tfidf_weight(counts).toarray(), rtol=1e-5
    )
    # one customer alone is weighted exactly as inside the matrix
    np.testing.assert_allclose(_weight(counts[5], "bm25", idf, avg, 100.0, 0.8).toarray(), ours[5:6], rtol=1e-6)


def test_bad_weighting_is_named(split):
    with pytest.raises(ValueError, match="weighting must be one of bm25, tfidf, none, not 'log'"):
        ALSRecommender(weighting="log").fit(split[0])


def test_selection_uses_a_split_inside_training(split):
    train, _, _cut = split
    best, table = select_als(train, {"factors": (4, 16), "regularization": (0.05,)}, iterations=5)
    assert len(table) == 2 and set(table["factors"]) == {4, 16}
    assert isinstance(best["factors"], int) and best["iterations"] == 5
    assert table["ndcg_at_10"].max() == table.loc[table["factors"] == best["factors"], "ndcg_at_10"].iloc[0]
    ALSRecommender(**best).fit(train)  # the chosen parameters fit as they are


# The recommender contract: every model and baseline, built by its factory, keeps the
# Recommender interface (fit returns self, n products per customer, unknown customers get the
# popular products, purchases excluded on request, save/load round-trips where supported).
RECOMMENDERS = {
    "popularity": lambda: PopularityRecommender(),
    "repeat_purchase": lambda: RepeatPurchaseRecommender(),
    "als": lambda: ALSRecommender(**ALS_SMALL),
    "item_knn": lambda: ItemKNNRecommender(),
}


@pytest.mark.parametrize("name", sorted(RECOMMENDERS))
def test_recommender_contract(name, split, tmp_path):
    from recsys.cf import Recommender

    train = split[0]
    model = RECOMMENDERS[name]()
    assert isinstance(model, Recommender)
    assert model.fit(train) is model
    customers = model.customer_map_.ids[:30].tolist()
    recs = model.recommend_many([*customers, "nobody"], 7)
    assert [len(r) for r in recs] == [7] * 31 and all(len(set(r)) == 7 for r in recs)
    popular = model.product_map_.ids[np.argsort(-model.popularity_, kind="stable")[:7]].tolist()
    assert recs[-1] == popular
    assert model.recommend(customers[0], 7) == recs[0]
    fresh = model.recommend_many(customers, 7, exclude_purchased=True)
    for c, r in zip(customers, fresh):
        row = model.customer_map_.position(c)
        bought = set(model.product_map_.ids[model.user_counts_[row].indices])
        assert not bought & set(r)
    try:
        path = model.save(tmp_path / name)
    except NotImplementedError:
        with pytest.raises(NotImplementedError):
            type(model).load(tmp_path / name)
        return
    assert type(model).load(path).recommend_many(customers, 7) == model.recommend_many(customers, 7)


@pytest.mark.parametrize("exclude", [False, True])
@pytest.mark.parametrize("n", [1, 10, 60])
def test_repeat_purchases_from_each_row_are_the_dense_ranking(split, exclude, n):
    """The repeat-purchase baseline ranks from each customer's row of counts; the base class
    ranks every product's score (``_scores``): the same lists, ties included, unknown ids too."""
    from recsys.cf.base import Recommender

    train, _, _ = split
    model = RepeatPurchaseRecommender().fit(train)
    customers = [*model.customer_map_.ids[:400], "nobody"]
    dense = Recommender.recommend_many(model, customers, n, exclude_purchased=exclude)
    assert model.recommend_many(customers, n, exclude_purchased=exclude) == dense
    bought = np.diff(model.user_counts_.indptr)[:400]
    if n == 10:  # customers with fewer products than asked for (filled with popular ones) and more
        assert (bought < n).any() and (bought > n).any()


@pytest.mark.parametrize("exclude", [False, True])
def test_als_top_products_are_the_best_scores(split, als, exclude):
    """ALS ranks through implicit's top-k: the products and order of scoring every product
    (the base class), on data without ties; and the n best scores whatever the ties."""
    from recsys.cf.base import Recommender

    customers = list(als.customer_map_.ids[:300])
    fast = als.recommend_many(customers, 10, exclude_purchased=exclude)
    assert fast == Recommender.recommend_many(als, customers, 10, exclude_purchased=exclude)
    rows = als.customer_map_.positions(customers)
    scores = als._scores(rows)
    if exclude:
        bought = als.user_counts_[rows].tocoo()
        scores[bought.row, bought.col] = -np.inf
    picked = np.take_along_axis(scores, als.product_map_.positions(np.ravel(fast)).reshape(len(rows), 10), axis=1)
    np.testing.assert_allclose(picked, -np.sort(-scores, axis=1)[:, :10], rtol=1e-6)
    every = len(als.product_map_)  # more than there are unpurchased products: the base class ranks
    assert als.recommend_many(customers[:5], every, exclude_purchased=exclude) == Recommender.recommend_many(
        als, customers[:5], every, exclude_purchased=exclude
    )


@pytest.mark.parametrize("on_disk", [False, True])
def test_next_period_on_basket_lines_is_the_plain_statement_of_their_pairs(ds, monkeypatch, on_disk):
    """On basket lines the evaluation asks DuckDB for the distinct ids and the new pairs; the
    same metrics come from frames of the views' own pairs (every training pair in memory)."""
    from recsys.data import duck
    from recsys.data.lines import BasketLines

    if on_disk:
        monkeypatch.setattr(duck, "ON_DISK_FROM", 0)
    with BasketLines.of(ds.transactions) as lines:
        cut = next_period_cut(lines, 28)
        train, test = lines.before(cut), lines.since(cut)
        models = {"repeat": RepeatPurchaseRecommender().fit(train), "als": ALSRecommender(**ALS_SMALL).fit(train)}
        got = evaluate_next_period(models, train, test, k=10)

        def frame(view):
            pairs = view.counts()
            return pd.DataFrame({C.CUSTOMER_ID: pairs["c"], C.PRODUCT_ID: pairs["p"]})

        want = evaluate_next_period(models, frame(train), frame(test), k=10)
        fresh = test.new_pairs(train)
    pd.testing.assert_frame_equal(got, want)
    assert got.set_index(["model", "task"]).loc[("als", "discovery"), "recall_at_10"] > 0
    # the new pairs: bought in the test period, never before the cut
    t = ds.transactions[ds.transactions[C.QUANTITY] > 0]
    before = set(zip(t.loc[t[C.TIMESTAMP] < cut, C.CUSTOMER_ID], t.loc[t[C.TIMESTAMP] < cut, C.PRODUCT_ID]))
    after = set(zip(t.loc[t[C.TIMESTAMP] >= cut, C.CUSTOMER_ID], t.loc[t[C.TIMESTAMP] >= cut, C.PRODUCT_ID]))
    assert set(zip(fresh["c"], fresh["p"])) == after - before
