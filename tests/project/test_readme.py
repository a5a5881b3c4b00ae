"""The README stays true and short: its model zoo and docs/results.md's table are the ones the model cards make."""
from fer_core.cards.model_cards import load_cards
from fer_core.cards.results_table import calibration_table, options_table, recipes, results_table, zoo_table
from fer_core.paths import PROJECT_ROOT

MODELS_DIR = PROJECT_ROOT / "models"


def test_the_results_tables_match_the_model_cards():
    results = (PROJECT_ROOT / "docs" / "results.md").read_text()
    assert results_table(load_cards(MODELS_DIR)) in results, "run `python -m fer_core results-table --write`"
    assert calibration_table(load_cards(MODELS_DIR)) in results, "run `python -m fer_core results-table --write`"
    readme = (PROJECT_ROOT / "README.md").read_text()
    assert zoo_table(load_cards(MODELS_DIR)) in readme, "run `python -m fer_core results-table --write`"
    training = (PROJECT_ROOT / "docs" / "training.md").read_text()
    assert recipes(load_cards(MODELS_DIR)) in training and options_table() in training, \
        "run `python -m fer_core results-table --write`"


def test_the_readme_is_for_users_and_short():
    readme = (PROJECT_ROOT / "README.md").read_text()
    assert len(readme.splitlines()) <= 150
    zoo = zoo_table(load_cards(MODELS_DIR)).splitlines()
    assert "**default** (used by default)" in zoo[2], "the default model is the first row"


def test_readme_gives_the_two_setup_commands_and_the_test_command():
    readme = (PROJECT_ROOT / "README.md").read_text()
    assert "pip install -r requirements.txt" in readme
    assert "streamlit run dashboard/Home.py" in readme
    assert "python -m pytest" in readme


def test_every_shipped_model_card_is_complete_and_says_where_it_was_trained():
    from fer_core.models.registry import list_models
    cards = [c for c in load_cards(MODELS_DIR) if c["arch"] != "ensemble"]
    assert {c["arch"] for c in cards} >= set(list_models()), "a reference card per registered architecture"
    for card in cards:
        for split, n in (("val", 3589), ("test", 3589)):
            for mode in ("plain", "tta"):
                report = card["metrics"][split][mode]
                assert report["n"] == n and sum(map(sum, report["confusion_matrix"])) == n, card["name"]
        assert card["learning_curve"] and card["training_seconds"] > 0 and card["hardware"], card["name"]
        if card["hardware"].startswith("CPU"):
            assert "CPU" in card["notes"], f"{card['name']}: a CPU-trained card says so in its notes"
        if card["checkpoint"] is not None:
            assert (MODELS_DIR / card["checkpoint"]).stat().st_size < 20 * 2 ** 20


def test_the_class_balancing_study_has_all_four_methods_on_one_architecture():
    from fer_core.training.balance import BALANCE_METHODS
    study = {c["train_config"]["balance"]: c for c in load_cards(MODELS_DIR) if "balancing" in c.get("studies", [])}
    assert set(study) == set(BALANCE_METHODS)
    from dataclasses import asdict

    from fer_core.training.config import TrainConfig
    defaults = asdict(TrainConfig())  # options added after a run was made had their default in it
    # undersampling's epochs are shorter: it gets more of them, for the same number of images seen
    settings = [{k: v for k, v in {**defaults, **c["train_config"]}.items() if k not in ("balance", "name", "epochs")}
                for c in study.values()]
    assert all(s == settings[0] for s in settings), "only the balancing method differs"
    seen = [c["images_seen"] for c in study.values()]
    assert max(seen) / min(seen) < 1.01, "every method sees the same number of images"
