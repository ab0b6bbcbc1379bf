import math

import pytest

from recsys.evaluation.ranking import ranking_metrics, user_metrics


def test_one_customer_by_hand():
    # hits at ranks 1 and 3 of 4 recommendations; 3 relevant items, one never recommended
    m = user_metrics(["a", "x", "b", "y"], {"a", "b", "c"}, k=4)
    assert m["precision"] == pytest.approx(2 / 4)
    assert m["recall"] == pytest.approx(2 / 3)  # denominator: every relevant item
    assert m["hit"] == 1.0
    dcg = 1 / math.log2(2) + 1 / math.log2(4)
    idcg = 1 / math.log2(2) + 1 / math.log2(3) + 1 / math.log2(4)
    assert m["ndcg"] == pytest.approx(dcg / idcg)
    assert m["map"] == pytest.approx((1 / 1 + 2 / 3) / 3)


def test_only_the_first_k_count_and_empty_relevance_is_skipped():
    assert user_metrics(["x", "a"], {"a"}, k=1)["recall"] == 0.0
    assert user_metrics(["a"], set(), k=5) is None
    out = ranking_metrics([["a"], ["b"]], [{"a"}, set()], k=1, catalog_size=4)
    assert out["customers"] == 1 and out["recall_at_1"] == 1.0
    assert out["coverage_at_1"] == pytest.approx(2 / 4)


def test_errors_name_the_problem():
    with pytest.raises(ValueError, match="2 recommendation lists for 1"):
        ranking_metrics([["a"], ["b"]], [{"a"}], k=1)
    with pytest.raises(ValueError, match="no customer has a relevant item"):
        ranking_metrics([["a"]], [set()], k=1)
