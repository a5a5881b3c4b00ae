"""Model cards, the files that describe models in models/: the card format and shipping (model_cards), saved
ensembles and their metrics (ensembles), per-image predictions beside a card (predictions), the README's results
table (results_table) and the list of runs and cards that Compare shows (catalog)."""
