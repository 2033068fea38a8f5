"""Training: splits, trainers, search, evaluation and the registry."""
