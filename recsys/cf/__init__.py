"""Collaborative filtering on customer x product purchases: one recommender interface
(:class:`Recommender`), implicit ALS and item-kNN, the baselines they are judged against, the
next-period evaluation, and the CF scoring kernel that scores offers by their products."""

from recsys.cf.als import ALSRecommender
from recsys.cf.base import ModelFileError, Recommender
from recsys.cf.baselines import PopularityRecommender, RepeatPurchaseRecommender
from recsys.cf.evaluation import evaluate_next_period, next_period_cut, next_period_split, select_als
from recsys.cf.interactions import IdMap, purchase_counts
from recsys.cf.knn import ItemKNNRecommender
from recsys.cf.scoring import CFIndex, cf_index, cf_max_scores, customer_vectors

__all__ = [
    "ALSRecommender",
    "CFIndex",
    "IdMap",
    "ItemKNNRecommender",
    "ModelFileError",
    "PopularityRecommender",
    "Recommender",
    "RepeatPurchaseRecommender",
    "cf_index",
    "cf_max_scores",
    "customer_vectors",
    "evaluate_next_period",
    "next_period_cut",
    "next_period_split",
    "purchase_counts",
    "select_als",
]
