"""The data-health audit on a synthetic dataset with planted duplicates, conflicts and blank images."""
import numpy as np

from fer_core.data.audit import audit_dataset
from fer_core.data.dataset import FER2013, Split


def distinct_faces(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, 48, 48), dtype=np.uint8)


def make(splits: dict) -> FER2013:
    return FER2013("synthetic", "zip", {name: Split(img, np.array(lab, dtype=np.int64), np.array(ids))
                                        for name, (img, lab, ids) in splits.items()})


def test_planted_problems_are_found_and_test_images_never_excluded():
    train = distinct_faces(20, seed=1)
    test = distinct_faces(5, seed=2)
    train[1] = train[0]                      # exact duplicate within train, same label
    train[3] = train[2]                      # exact duplicate within train, different label
    test[0] = train[4]                       # leakage: a training face in PrivateTest
    train[5] = np.clip(train[6].astype(int) + 2, 0, 255).astype(np.uint8)  # near duplicate
    train[7] = 128                           # blank
    train_labels = [0, 0, 1, 2, 3] + [4] * 15
    ds = make({"train": (train, train_labels, [f"train/x/Training_{i}.jpg" for i in range(20)]),
               "val": (distinct_faces(3, seed=3), [0, 1, 2], [f"test/x/PublicTest_{i}.jpg" for i in range(3)]),
               "test": (test, [3] * 5, [f"test/x/PrivateTest_{i}.jpg" for i in range(5)])})
    result = audit_dataset(ds)
    summary = result.summary()
    assert summary["exact"]["groups"] == 3
    assert summary["exact"]["cross_split"] == 1  # train[4] leaked into PrivateTest
    assert summary["exact"]["label_conflicts"] == 1  # train[2] and train[3]: same face, labels 1 and 2
    assert summary["near"]["groups"] >= 1
    assert summary["blank"] == 1 and result.blank_ids == ["train/x/Training_7.jpg"]
    assert "train/x/Training_7.jpg" in result.exclude
    assert not any("PrivateTest" in i for i in result.exclude)
    assert result.exclude_text().splitlines() == result.exclude


def test_a_clean_dataset_has_no_findings():
    ds = make({name: (distinct_faces(10, seed=s), [s] * 10, [f"{name}/{i}" for i in range(10)])
               for s, name in enumerate(("train", "val", "test"))})
    summary = audit_dataset(ds).summary()
    assert summary["exact"]["groups"] == 0 and summary["near"]["groups"] == 0 and summary["blank"] == 0
