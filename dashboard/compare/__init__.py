"""Compare: every run and model card in one table, side by side, ensembles, studies, real photos."""
