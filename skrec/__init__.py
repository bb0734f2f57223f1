"""skrec: recommender models behind the scikit-learn estimator API."""

from .base import BaseRecommender
from .models import ALS, EASE, MF, SLIM, Item2Vec, NeuMF, Popular, Random

__version__ = "0.1.0"

#: Every estimator skrec exports; tests/test_common.py runs each through the contract.
ESTIMATORS = ["ALS", "EASE", "Item2Vec", "MF", "NeuMF", "Popular", "Random", "SLIM"]

__all__ = [
    "BaseRecommender",
    "ALS",
    "EASE",
    "Item2Vec",
    "MF",
    "NeuMF",
    "Popular",
    "Random",
    "SLIM",
]
