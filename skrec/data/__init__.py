"""Data preparation: id encoding, interactions, sequences, samplers."""
