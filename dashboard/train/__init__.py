"""Train: a new run or a study, and the runs, live."""
