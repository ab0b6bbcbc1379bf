"""The redemption model's examples beyond ``max_examples``: every redemption kept, the other sent
offers sampled and weighted, and the fitted P(redeem) still calibrated (by simulation)."""

import numpy as np
import pandas as pd
import pytest

from recsys import constants as C
from recsys.data.dataset import Dataset
from recsys.data.validate import validate_tables
from recsys.offers import OFFER_FEATURES, OfferRanker
from recsys.offers.examples import redemption_examples, sample_negatives
from recsys.offers.redemption import RedemptionModel
from recsys.transforms import signed_log

KEY = ["campaign", C.CUSTOMER_ID, C.OFFER_ID]


@pytest.fixture(scope="module")
def ds(synth):
    return Dataset(**validate_tables(synth[0])[0])


@pytest.fixture(scope="module")
def before(ds):
    return ds.offers[C.START_DATE].max()


@pytest.fixture(scope="module")
def every(ds, before):
    return redemption_examples(
        ds.transactions, ds.offers, ds.offer_events, before, products=ds.products, max_examples=None
    )


def test_sampled_examples_keep_every_redemption_and_weigh_the_others_by_their_share(ds, before, every):
    assert (every["weight"] == 1.0).all()
    positives, negatives = int(every["redeemed"].sum()), int((every["redeemed"] == 0).sum())
    cap = positives + negatives // 4
    ex = redemption_examples(
        ds.transactions, ds.offers, ds.offer_events, before, products=ds.products, max_examples=cap
    )
    assert int(ex["redeemed"].sum()) == positives
    assert (ex.loc[ex["redeemed"] == 1, "weight"] == 1.0).all()
    rate = (cap - positives) / negatives
    np.testing.assert_allclose(ex.loc[ex["redeemed"] == 0, "weight"], 1.0 / rate)
    kept = int((ex["redeemed"] == 0).sum())
    assert abs(kept - rate * negatives) < 5 * np.sqrt(negatives * rate * (1 - rate))
    # a kept offer's features are those it has among all the examples: sampling drops rows only
    both = ex.merge(every, on=KEY, suffixes=("", "_all"), validate="one_to_one")
    assert len(both) == len(ex)
    for name in OFFER_FEATURES:
        np.testing.assert_array_equal(both[name], both[f"{name}_all"], err_msg=name)
    # the same seed draws the same examples; another seed others
    again = redemption_examples(
        ds.transactions, ds.offers, ds.offer_events, before, products=ds.products, max_examples=cap
    )
    pd.testing.assert_frame_equal(ex, again)
    other = redemption_examples(
        ds.transactions, ds.offers, ds.offer_events, before, products=ds.products, max_examples=cap, random_state=7
    )
    assert not ex[KEY].equals(other[KEY])


def test_examples_below_the_cap_are_all_the_sent_offers(ds, before, every):
    ex = redemption_examples(ds.transactions, ds.offers, ds.offer_events, before, products=ds.products)
    assert len(every) < C.MAX_REDEMPTION_EXAMPLES
    pd.testing.assert_frame_equal(ex, every)


def test_a_cap_below_the_redemptions_keeps_them_and_as_many_others():
    pairs = [pd.DataFrame({"redeemed": [1.0] * 30 + [0.0] * 970}), pd.DataFrame({"redeemed": [1.0] * 10 + [0.0] * 990})]
    out = sample_negatives(pairs, max_examples=20, random_state=0)
    kept = pd.concat(out)
    assert int(kept["redeemed"].sum()) == 40
    assert 20 < int((kept["redeemed"] == 0).sum()) < 60  # about 40 of 1,960
    with pytest.raises(ValueError, match="max_examples"):
        sample_negatives(pairs, max_examples=0)


def _planted(rng, n):
    """OFFER_FEATURES and a redemption drawn from a logistic model of their signed logs."""
    X = pd.DataFrame(rng.exponential(2.0, size=(n, len(OFFER_FEATURES))), columns=list(OFFER_FEATURES))
    beta = np.linspace(-0.6, 0.9, len(OFFER_FEATURES))
    p = 1.0 / (1.0 + np.exp(-(-5.0 + signed_log(X.to_numpy()) @ beta)))
    return X, p, (rng.random(n) < p).astype("int64")


def test_weighted_samples_keep_p_redeem_calibrated_over_many_seeds():
    """Fitted on every redemption and a tenth of the other offers, the weighted model's mean
    P(redeem) is the true rate; unweighted, it would be several times too high."""
    weighted, unweighted, truth = [], [], []
    for seed in range(20):
        rng = np.random.default_rng(seed)
        X, p, y = _planted(rng, 40_000)
        frame = X.assign(redeemed=y)
        cap = int(y.sum()) + int((y == 0).sum()) // 10
        sample = sample_negatives([frame], max_examples=cap, random_state=seed)[0]
        model = RedemptionModel(min_positives=10).fit(sample)
        assert model.negative_rate_ == pytest.approx(0.1, rel=0.02)
        weighted.append(model.predict_proba(X).mean())
        unweighted.append(RedemptionModel(min_positives=10).fit(sample.drop(columns="weight")).predict_proba(X).mean())
        truth.append(p.mean())
    weighted, unweighted, truth = map(np.asarray, (weighted, unweighted, truth))
    relative = weighted / truth - 1
    assert abs(relative.mean()) < 0.03  # no bias beyond the simulation's noise
    assert np.abs(relative).max() < 0.15
    assert (unweighted / truth).min() > 3  # the weights are what keeps it calibrated


def test_the_ranker_and_its_model_say_how_the_examples_were_sampled(ds, before, every):
    cap = int(every["redeemed"].sum()) + int((every["redeemed"] == 0).sum()) // 2
    als = {"factors": 8, "iterations": 3}
    sampled = OfferRanker(als_params=als, max_examples=cap).fit(ds, as_of=before)
    whole = OfferRanker(als_params=als, max_examples=None).fit(ds, as_of=before)
    assert whole.redemption_model_.negative_rate_ == 1.0 and whole.training_examples_ == len(every)
    assert 0.4 < sampled.redemption_model_.negative_rate_ < 0.6
    assert sampled.training_examples_ < len(every)
    assert sampled.redemption_model_.n_positives_ == whole.redemption_model_.n_positives_
