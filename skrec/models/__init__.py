"""skrec estimators, one module per family."""

from .baselines import Popular, Random
from .embeddings import Item2Vec
from .factorization import ALS, MF, NeuMF
from .linear import EASE, SLIM

__all__ = ["ALS", "EASE", "Item2Vec", "MF", "NeuMF", "Popular", "Random", "SLIM"]
