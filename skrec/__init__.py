"""skrec: recommender models behind the scikit-learn estimator API."""

from .base import BaseRecommender
from .models import Popular, Random

__version__ = "0.1.0"

#: Every estimator skrec exports; tests/test_common.py runs each through the contract.
ESTIMATORS = ["Popular", "Random"]

__all__ = ["BaseRecommender", "Popular", "Random"]
