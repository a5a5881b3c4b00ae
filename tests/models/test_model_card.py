"""The typed model card (fer_core/models/card.py): what it reads from new, old and hand-edited cards, and that it
writes back what it does not know."""
import json

import pytest

from fer_core.errors import FERError
from fer_core.models.card import ENSEMBLE, FORMAT, REFERENCE, SHIPPED, ModelCard
from tests.conftest import REPO


def test_every_shipped_card_reads_with_its_figures():
    for path in sorted((REPO / "models").glob("*.json")):
        card = ModelCard.read(path)
        assert card.ours and card.kind in ("shipped", "reference", "experiment", "ensemble"), path.name
        assert 0 < card.accuracy("test", tta=True) < 1 and card.report("val", tta=False)["n"] == 3589, path.name
        assert card.is_ensemble == (card.kind == ENSEMBLE) and (card.checkpoint is None) == (card.kind != SHIPPED)


@pytest.mark.parametrize("fields,kind", [({"arch": "ensemble", "members": []}, ENSEMBLE),
                                         ({"checkpoint": None}, REFERENCE), ({"checkpoint": "x.pt"}, SHIPPED)])
def test_cards_from_before_kinds_existed_get_their_kind_from_their_fields(fields, kind):
    assert ModelCard(fields).kind == kind


def test_a_hand_edited_card_reads_as_not_known_instead_of_crashing(tmp_path):
    card = ModelCard({"format": FORMAT, "name": "../../etc", "metrics": {"test": "oops"}, "tta_views": True,
                      "calibration": {"plain": {"temperature": 500}, "tta": {"temperature": 1.1}},
                      "formerly": ["old", 3], "speed": [1, 2], "checkpoint": ""}, tmp_path / "mine.json")
    assert card.name == "mine" and card.report("test", True) is None and card.accuracy("test", True) is None
    assert card.tta_views is None and card.temperatures() is None and card.formerly == ["old"]
    assert card.section("speed") == {} and card.checkpoint is None
    with pytest.raises(FERError, match="malformed"):
        card.members()


def test_a_card_is_written_back_with_the_fields_it_does_not_know(tmp_path):
    path = tmp_path / "m.json"
    path.write_text(json.dumps({"format": FORMAT, "name": "m", "future_field": {"kept": [1, 2]}}))
    ModelCard.read(path).update(calibration={"plain": {"temperature": 1.2}, "tta": {"temperature": 0.9}})
    again = ModelCard.read(path)
    assert again.fields["future_field"] == {"kept": [1, 2]} and again.temperatures() == {"plain": 1.2, "tta": 0.9}
    path.write_text("[1, 2]")
    with pytest.raises(FERError, match="model card"):
        ModelCard.read(path)
