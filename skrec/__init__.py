"""skrec: recommender models behind the scikit-learn estimator API."""

from .base import BaseRecommender
from .models import (
    ALS,
    EASE,
    MF,
    SLIM,
    BERT4Rec,
    GRU4Rec,
    Item2Vec,
    NeuMF,
    Popular,
    Random,
    SASRec,
)
from .persistence import load, save

__version__ = "0.1.0"

#: Every estimator skrec exports; tests/test_common.py runs each through the contract.
ESTIMATORS = [
    "ALS",
    "BERT4Rec",
    "EASE",
    "GRU4Rec",
    "Item2Vec",
    "MF",
    "NeuMF",
    "Popular",
    "Random",
    "SASRec",
    "SLIM",
]

__all__ = [
    "BaseRecommender",
    "ALS",
    "BERT4Rec",
    "EASE",
    "GRU4Rec",
    "Item2Vec",
    "MF",
    "NeuMF",
    "Popular",
    "Random",
    "SASRec",
    "SLIM",
    "load",
    "save",
]
