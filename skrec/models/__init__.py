"""skrec estimators, one module per family."""

from .baselines import Popular, Random

__all__ = ["Popular", "Random"]
