"""The README stays true: its results table is the one the model cards make."""
from fer_core.model_cards import load_cards, results_table
from fer_core.paths import MODELS_DIR, PROJECT_ROOT


def test_readme_results_table_matches_the_model_cards():
    readme = (PROJECT_ROOT / "README.md").read_text()
    assert results_table(load_cards(MODELS_DIR)) in readme, "run `python -m fer_core results-table --write`"


def test_readme_gives_the_two_setup_commands_and_the_test_command():
    readme = (PROJECT_ROOT / "README.md").read_text()
    assert "pip install -r requirements.txt" in readme
    assert "streamlit run dashboard/Home.py" in readme
    assert "python -m pytest" in readme
