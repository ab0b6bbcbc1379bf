"""Data layer: the contract, validated loading, writers, importers and generators."""

from recsys.data.dataset import Dataset, load_dataset

__all__ = ["Dataset", "load_dataset"]
