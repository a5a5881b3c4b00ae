"""Home: where a new user stands (dataset, default model, device, latest runs)."""
