"""skrec estimators, one module per family."""

from .baselines import Popular, Random
from .factorization import ALS
from .linear import EASE, SLIM

__all__ = ["ALS", "EASE", "Popular", "Random", "SLIM"]
