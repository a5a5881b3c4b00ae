"""FER+ crowd labels (data/ferplus.py): the votes' rules, the join to the Kaggle zip through the index and to
fer2013.csv by row, training on the majority and on the vote shares, and the FER+ benchmark in evaluate."""
from __future__ import annotations

import csv
import gzip
import json

import numpy as np
import pytest

from fer_core.cli import main
from fer_core.data import ferplus
from fer_core.data.fer2013 import load_dataset
from fer_core.errors import DataError
from fer_core.labels import EMOTIONS

from tests.conftest import find_fer2013, kaggle_entries

HEADER = "Usage,Image name," + ",".join(ferplus.VOTE_COLUMNS)
COLUMN = {name: i for i, name in enumerate(ferplus.VOTE_COLUMNS)}


def votes_row(**counts) -> list[int]:
    row = [0] * len(ferplus.VOTE_COLUMNS)
    for name, n in counts.items():
        row[COLUMN[name]] = n
    return row


def write_votes(path, rows: dict[int, list[int]], usage=lambda row: "Training"):
    """A fer2013new.csv of FER+'s 35,887 rows: the given rows' votes, ten 'unknown' votes elsewhere."""
    default = votes_row(unknown=10)
    lines = [HEADER] + [f"{usage(i)},fer{i:07d}.png," + ",".join(map(str, rows.get(i, default)))
                        for i in range(ferplus.ROWS)]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_the_crowds_votes_become_a_majority_and_soft_targets():
    votes = np.array([votes_row(happiness=6, neutral=4),            # a majority
                      votes_row(contempt=4, disgust=2, anger=4),     # contempt folds into disgust: 6 of 10
                      votes_row(happiness=5, sadness=5),             # no majority (half is not more than half)
                      votes_row(NF=6, fear=4),                       # not a face
                      votes_row(fear=9, surprise=1)])                # a lone vote is noise
    crowd = ferplus.crowd_labels(votes)
    assert [EMOTIONS[k] if k >= 0 else None for k in crowd.majority] == ["happy", "disgust", None, None, "fear"]
    assert crowd.soft[0, EMOTIONS.index("happy")] == pytest.approx(0.6)
    assert crowd.soft[4, EMOTIONS.index("fear")] == 1.0 and crowd.soft[4, EMOTIONS.index("surprise")] == 0.0
    assert np.allclose(crowd.soft[[0, 1, 2, 4]].sum(1), 1.0) and crowd.soft[3].sum() == pytest.approx(1.0)


def test_a_file_that_is_not_fer_plus_is_one_clear_error(tmp_path, monkeypatch):
    bad = tmp_path / "fer2013new.csv"
    bad.write_text("emotion,pixels,Usage\n0,1 2 3,Training\n")
    with pytest.raises(DataError, match="not FER\\+'s fer2013new.csv"):
        ferplus.read_votes(bad)
    bad.write_text(HEADER + "\nTraining,a.png,1,0,0,0,0,0,0,0,0,9\n")
    with pytest.raises(DataError, match="has 1 rows"):
        ferplus.read_votes(bad)
    monkeypatch.delenv(ferplus.VOTES_ENV, raising=False)
    monkeypatch.setenv("FER_DATA_DIR", str(tmp_path / "empty"))
    with pytest.raises(DataError, match="no FER\\+ votes file found.*--ferplus PATH"):
        ferplus.find_votes_file()


@pytest.fixture
def crowd_zip(tmp_path, monkeypatch, make_kaggle_zip):
    """A Kaggle zip, an index for it (row i = its i-th image) and votes: every image's crowd says 'happy' except
    the first, which has no majority."""
    entries = kaggle_entries()
    index = tmp_path / "index.csv.gz"
    with gzip.open(index, "wt", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["row", "kaggle_path"])
        writer.writerows((i, rel) for i, (rel, _, _) in enumerate(entries))
    monkeypatch.setattr(ferplus, "INDEX_FILE", index)
    rows = {i: votes_row(happiness=8, surprise=2) for i in range(len(entries))}
    rows[0] = votes_row(happiness=3, sadness=3, unknown=4)
    return make_kaggle_zip(), write_votes(tmp_path / "fer2013new.csv", rows), entries


def test_the_kaggle_zip_joins_through_the_index(crowd_zip):
    data, votes, entries = crowd_zip
    dataset = load_dataset(data)
    crowd = ferplus.with_crowd_labels(dataset, votes)
    assert len(crowd) == len(dataset) - 1  # the image without a majority is left out
    assert entries[0][0] not in set(crowd["train"].ids)
    for split in crowd.splits.values():
        assert (split.labels == EMOTIONS.index("happy")).all()
        assert np.allclose(split.targets[:, EMOTIONS.index("happy")], 0.8)
        assert split.subset(np.arange(2)).targets.shape == (2, 7)


def test_fer2013_csv_joins_by_row_and_must_keep_its_order(tmp_path, make_fer_csv):
    source = make_fer_csv(per_usage=2)  # rows: Training (14), PublicTest (14), PrivateTest (14), each 2 per class
    columns = ["anger", "disgust", "fear", "happiness", "sadness", "surprise", "neutral"]  # FER2013's order
    usage = lambda row: ("Training", "PublicTest", "PrivateTest")[row // 14] if row < 42 else "Training"  # noqa: E731
    # row i's crowd says the emotion after its FER2013 label: a misaligned join would show as wrong labels
    rows = {i: votes_row(**{columns[(i // 2 % 7 + 1) % 7]: 9}) for i in range(42)}
    votes = write_votes(tmp_path / "fer2013new.csv", rows, usage)
    dataset = load_dataset(source)
    crowd = ferplus.with_crowd_labels(dataset, votes)
    for name in ("train", "val", "test"):
        assert list(crowd[name].labels) == [(label + 1) % 7 for label in dataset[name].labels]
    shuffled = tmp_path / "sorted.csv"
    lines = source.read_text().splitlines()
    shuffled.write_text("\n".join([lines[0], *lines[15:29], *lines[1:15], *lines[29:]]) + "\n")  # splits swapped
    with pytest.raises(DataError, match="not in fer2013.csv's row order"):
        ferplus.with_crowd_labels(load_dataset(shuffled), votes)


def test_training_on_the_vote_shares_and_evaluating_on_the_majority(crowd_zip, tmp_path, capsys):
    data, votes, _ = crowd_zip
    out = tmp_path / "runs"
    assert main(["train", "--data", str(data), "--labels", "ferplus-soft", "--ferplus", str(votes), "--epochs", "1",
                 "--batch-size", "16", "--tta-views", "2", "--out", str(out), "--name", "crowd"]) == 0
    config = json.loads((out / "crowd" / "config.json").read_text())
    assert config["labels"] == "ferplus-soft"
    evaluation = json.loads((out / "crowd" / "eval.json").read_text())
    assert evaluation["test"]["plain"]["n"] == 3 * 7  # every PrivateTest image has the crowd's majority here
    capsys.readouterr()
    assert main(["evaluate", "--checkpoint", str(out / "crowd" / "best.pt"), "--data", str(data), "--labels",
                 "ferplus", "--ferplus", str(votes), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["label_source"] == "ferplus" and report["per_class"]["happy"]["support"] == report["n"] == 21


def test_crowd_labels_are_checked_before_a_run_starts(crowd_zip, tmp_path, capsys, monkeypatch):
    data, votes, _ = crowd_zip
    monkeypatch.delenv(ferplus.VOTES_ENV, raising=False)
    monkeypatch.setenv("FER_DATA_DIR", str(tmp_path / "nothing"))
    out = tmp_path / "runs"
    assert main(["train", "--data", str(data), "--labels", "ferplus", "--out", str(out)]) == 2
    assert "FER+" in capsys.readouterr().err and not out.exists()
    assert main(["train", "--data", str(data), "--labels", "ferplus-soft", "--ferplus", str(votes), "--teacher",
                 str(votes), "--out", str(out)]) == 2
    assert "cannot also learn a --teacher" in capsys.readouterr().err


@pytest.mark.integration
def test_the_shipped_index_joins_every_image_of_the_real_zip():
    source = find_fer2013()
    votes = find_fer2013().parent / "dev" / ferplus.VOTES_NAME if source else None
    if source is None or not votes.is_file():
        pytest.skip("needs fer2013.zip and dev/fer2013new.csv (../shared/data)")
    crowd = ferplus.with_crowd_labels(load_dataset(source), votes)
    assert [len(crowd[s]) for s in ("train", "val", "test")] == [25_108, 3_205, 3_156]


def test_the_dataset_page_shows_where_the_crowd_disagrees(crowd_zip, tmp_path, monkeypatch):
    from streamlit.testing.v1 import AppTest

    from tests.conftest import REPO
    data, votes, _ = crowd_zip
    monkeypatch.setenv("FER_DATA", str(data))
    monkeypatch.setenv("FER_RUNS_DIR", str(tmp_path / "runs"))
    monkeypatch.setenv(ferplus.VOTES_ENV, str(votes))
    at = AppTest.from_file(str(REPO / "pages" / "dataset.py"), default_timeout=180).run()
    at.toggle(key="crowd_on").set_value(True).run()
    assert not at.exception
    agreement = next(m for m in at.metric if m.label.startswith("crowd majority agrees"))
    # the crowd says happy everywhere but on one angry image: only FER2013's 12 happy images agree, of 83
    assert agreement.value == f"{12 / 83:.1%}"
    at.selectbox(key="crowd_given").set_value("angry").run()
    at.selectbox(key="crowd_says").set_value("happy").run()
    assert not at.exception and at.image  # angry faces the crowd calls happy, with their votes
    monkeypatch.setenv(ferplus.VOTES_ENV, str(tmp_path / "missing.csv"))
    at = AppTest.from_file(str(REPO / "pages" / "dataset.py"), default_timeout=180).run()
    at.toggle(key="crowd_on").set_value(True).run()
    assert not at.exception and any("does not exist" in i.value for i in at.info)
