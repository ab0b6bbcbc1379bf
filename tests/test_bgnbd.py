"""BG/NBD against the published CDNOW estimates (Fader, Hardie & Lee 2005)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from recsys.customers.bgnbd import BGNBD, rfm_summary

# Table 1 of Fader, Hardie & Lee (2005), CDNOW sample of 2,357 customers, weeks.
PUBLISHED = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}
PUBLISHED_LL = -9582.4


@pytest.fixture(scope="module")
def cdnow():
    datasets = pytest.importorskip("lifetimes.datasets", reason="lifetimes ships the CDNOW sample")
    d = datasets.load_cdnow_summary()
    return d.rename(columns={"frequency": "x", "recency": "t_x"})[["x", "t_x", "T"]]


@pytest.fixture(scope="module")
def fitted(cdnow):
    return BGNBD().fit(cdnow)


def test_matches_published_estimates(fitted):
    for name, value in PUBLISHED.items():
        assert fitted.params_[name] == pytest.approx(value, rel=0.005), name
    assert fitted.log_likelihood_ == pytest.approx(PUBLISHED_LL, abs=0.1)
    assert fitted.converged_


def test_p_alive_properties(fitted, cdnow):
    p = fitted.p_alive(cdnow)
    assert ((p > 0) & (p <= 1)).all()
    assert (p[cdnow["x"] == 0] == 1.0).all()  # no repeat purchase: never seen to die
    # same x and T: the more recent the last purchase, the likelier alive
    probe = pd.DataFrame({"x": [5, 5], "t_x": [30.0, 10.0], "T": [38.0, 38.0]})
    alive = fitted.p_alive(probe)
    assert alive.iloc[0] > alive.iloc[1]


def test_expected_purchases_match_the_paper(fitted):
    # Section 4 of the paper: a customer with x=2, t_x=30.43, T=38.86 expects about 1.23
    # purchases in the next 39 weeks.
    probe = pd.DataFrame({"x": [2], "t_x": [30.43], "T": [38.86]})
    assert fitted.expected_purchases(probe, days=39 * 7).iloc[0] == pytest.approx(1.226, abs=0.01)


def test_agrees_with_reference_implementation(fitted, cdnow):
    lifetimes = pytest.importorskip("lifetimes")
    ref = lifetimes.BetaGeoFitter().fit(cdnow["x"], cdnow["t_x"], cdnow["T"])
    p_ref = ref.conditional_probability_alive(cdnow["x"], cdnow["t_x"], cdnow["T"])
    assert np.abs(fitted.p_alive(cdnow).to_numpy() - p_ref).max() < 1e-3
    e_ref = ref.conditional_expected_number_of_purchases_up_to_time(10, cdnow["x"], cdnow["t_x"], cdnow["T"])
    assert np.abs(fitted.expected_purchases(cdnow, days=70).to_numpy() - e_ref).max() < 1e-2


def test_penalty_shrinks_parameters(cdnow):
    free = BGNBD().fit(cdnow)
    shrunk = BGNBD(penalizer=0.1).fit(cdnow)
    assert sum(v**2 for v in shrunk.params_.values()) < sum(v**2 for v in free.params_.values())


def test_rfm_summary_by_purchase_day():
    t = pd.DataFrame(
        {
            "customer_id": ["A", "A", "A", "B"],
            "timestamp": pd.to_datetime(
                ["2024-01-01 09:00", "2024-01-01 17:00", "2024-01-15 00:00", "2024-01-08 00:00"]
            ),
        }
    )
    s = rfm_summary(t, "2024-01-29")
    assert s.loc["A"].tolist() == [1.0, 2.0, 4.0]  # one repeat day, last at week 2, observed 4 weeks
    assert s.loc["B"].tolist() == [0.0, 0.0, 3.0]


def test_planted_churners_have_lower_p_alive(synth):
    tables, truth = synth
    summary = rfm_summary(tables["transactions"], "2024-12-31")
    p = BGNBD(penalizer=0.001).fit(summary).p_alive(summary)
    churned = truth["customers"].set_index("customer_id")["churned"].reindex(p.index)
    assert p[churned].mean() < p[~churned].mean() - 0.3


def test_bad_summary_is_refused():
    with pytest.raises(ValueError, match="needs column 'T'"):
        BGNBD().fit(pd.DataFrame({"x": [1.0], "t_x": [1.0]}))
    with pytest.raises(ValueError, match="t_x <= T"):
        BGNBD().fit(pd.DataFrame({"x": [1.0], "t_x": [5.0], "T": [2.0]}))
