"""Data layer: the contract, validated loading, writers, importers and generators."""

from recsys.data.dataset import Dataset, load_dataset, load_offer_tables

__all__ = ["Dataset", "load_dataset", "load_offer_tables"]
