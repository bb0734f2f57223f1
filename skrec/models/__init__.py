"""skrec estimators, one module per family."""

from .baselines import Popular, Random
from .embeddings import Item2Vec
from .factorization import ALS, MF, NeuMF
from .linear import EASE, SLIM
from .sequential import BERT4Rec, GRU4Rec, SASRec

__all__ = [
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
