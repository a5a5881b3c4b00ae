"""Hyperparameter studies with Optuna: a search space over the training options, trials as run folders,
pruning by epoch, storages shared by workers (`python -m fer_core tune`)."""
