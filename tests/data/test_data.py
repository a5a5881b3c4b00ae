"""fer_core.data (sources, readers, cache) on tiny synthetic datasets in the three formats users have."""
import zipfile

import numpy as np
import pytest

from fer_core.data import fer2013 as data_module
from fer_core.data.dataset import dataset_report
from fer_core.data.fer2013 import load_dataset
from fer_core.data.sources import resolve_data_path
from fer_core.errors import DataError
from fer_core.labels import EMOTIONS

from tests.conftest import encode, face

PER_CLASS = (6, 3, 3)  # Training, PublicTest, PrivateTest images per emotion


def assert_labels_match_pixels(split):
    """Synthetic faces carry their label as a bright band at rows 6*label..6*label+5."""
    for img, label in zip(split.images, split.labels):
        assert img[label * 6:label * 6 + 6].mean() > 150, f"label {EMOTIONS[label]} does not match its image"


@pytest.mark.parametrize("fmt", ["zip", "folder", "csv"])
def test_each_format_gives_the_literature_splits(fmt, make_kaggle_zip, make_kaggle_folder, make_fer_csv):
    source = {"zip": make_kaggle_zip, "folder": make_kaggle_folder, "csv": lambda: make_fer_csv(per_usage=3)}[fmt]()
    ds = load_dataset(source)
    assert ds.format == fmt
    assert not ds.val_from_train
    n_train, n_val, n_test = PER_CLASS if fmt != "csv" else (3, 3, 3)
    for split, n in (("train", n_train), ("val", n_val), ("test", n_test)):
        assert list(ds[split].class_counts()) == [n] * 7
        assert ds[split].images.shape == (7 * n, 48, 48) and ds[split].images.dtype == np.uint8
        assert_labels_match_pixels(ds[split])
    if fmt != "csv":
        assert all("PublicTest_" in i for i in ds["val"].ids)
        assert all("PrivateTest_" in i for i in ds["test"].ids)


def test_labels_are_mapped_by_folder_name_not_sort_order(make_kaggle_zip):
    ds = load_dataset(make_kaggle_zip())
    neutral = ds["train"].labels[np.char.find(ds["train"].ids.astype(str), "/neutral/") >= 0]
    assert set(neutral) == {EMOTIONS.index("neutral")} == {6}  # Kaggle's sort order would give 4


def test_folder_without_prefixes_gets_a_deterministic_stratified_val_split(make_kaggle_folder, tmp_path):
    root = make_kaggle_folder(per_class=(20, 0, 5), prefixes=False)
    first = load_dataset(root, use_cache=False)
    second = load_dataset(root, use_cache=False)
    assert first.val_from_train
    assert list(first["val"].class_counts()) == [2] * 7          # 10% of 20 per class
    assert list(first["train"].class_counts()) == [18] * 7
    assert list(first["test"].class_counts()) == [5] * 7          # test/ without prefixes is the test split
    assert list(first["val"].ids) == list(second["val"].ids)
    assert not set(first["val"].ids) & set(first["train"].ids)


def test_csv_without_usage_column_is_split_deterministically(tmp_path):
    rows = ["emotion,pixels"] + [f"{c},{' '.join(map(str, face(c, i).ravel()))}" for c in range(7) for i in range(20)]
    path = tmp_path / "plain.csv"
    path.write_text("\n".join(rows))
    ds = load_dataset(path)
    assert ds.val_from_train
    assert len(ds["train"]) + len(ds["val"]) + len(ds["test"]) == 140
    assert list(ds["val"].class_counts()) == [2] * 7 and list(ds["test"].class_counts()) == [2] * 7


def test_second_load_comes_from_the_cache(make_kaggle_zip, monkeypatch):
    source = make_kaggle_zip()
    first = load_dataset(source)
    monkeypatch.setattr(data_module, "read_image_tree", lambda *a: pytest.fail("decoded again despite the cache"))
    second = load_dataset(source)
    assert np.array_equal(first["train"].images, second["train"].images)
    assert list(first["test"].ids) == list(second["test"].ids)


@pytest.mark.parametrize("damage", ["labels out of range", "fewer labels than images", "not 48x48", "bad meta"])
def test_a_crafted_cache_is_checked_and_decoded_again(make_kaggle_zip, tmp_path, damage):
    import json

    from fer_core.data.cache import cache_file_for
    source, cache = make_kaggle_zip(), tmp_path / "cache"
    truth = load_dataset(source, cache_dir=cache)
    (path,) = cache.glob("*.npz")
    with np.load(path) as z:
        arrays = dict(z)
    if damage == "labels out of range":
        arrays["train_labels"] = arrays["train_labels"] + 40
    elif damage == "fewer labels than images":
        arrays["test_labels"] = arrays["test_labels"][:3]
    elif damage == "not 48x48":
        arrays["val_images"] = arrays["val_images"][:, :20, :20]
    else:
        arrays["meta"] = np.array(json.dumps({"format": "zip", "val_from_train": "yes", "problems": []}))
    with open(path, "wb") as fh:
        np.savez(fh, **arrays)
    assert cache_file_for(source, cache) == path
    again = load_dataset(source, cache_dir=cache)
    assert again.counts() == truth.counts() and np.array_equal(again["val"].images, truth["val"].images)


def test_a_changed_source_invalidates_the_cache(make_kaggle_zip):
    source = make_kaggle_zip()
    assert len(load_dataset(source)["train"]) == 42
    with zipfile.ZipFile(source, "a") as zf:
        zf.writestr("train/happy/Training_99999.jpg", encode(face(3, 99999)))
    reloaded = load_dataset(source)
    assert len(reloaded["train"]) == 43


def test_stale_cache_entries_are_removed(make_kaggle_zip, tmp_path):
    cache = tmp_path / "cache"
    source = make_kaggle_zip()
    load_dataset(source, cache_dir=cache)
    with zipfile.ZipFile(source, "a") as zf:
        zf.writestr("train/happy/Training_99999.jpg", encode(face(3, 99999)))
    load_dataset(source, cache_dir=cache)
    assert len(list(cache.glob("*.npz"))) == 1


def test_dataset_report_counts_and_imbalance(make_kaggle_zip):
    report = dataset_report(load_dataset(make_kaggle_zip(extra=[
        (f"train/happy/Training_{900 + i}.jpg", encode(face(3, 900 + i)), 3) for i in range(6)])))
    assert report["splits"]["train"]["counts"]["happy"] == 12
    assert report["splits"]["train"]["imbalance_ratio"] == 2.0
    assert report["splits"]["val"]["imbalance_ratio"] == 1.0


# ----------------------------------------------------------------------------- bad data: one clear line

def test_missing_path_names_it(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        load_dataset(tmp_path / "nowhere.zip")


def test_empty_folder(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="empty"):
        load_dataset(tmp_path / "empty")


def test_default_path_comes_from_fer_data(make_kaggle_zip, monkeypatch):
    source = make_kaggle_zip()
    monkeypatch.setenv("FER_DATA", str(source))
    assert resolve_data_path(None) == source


def test_data_folder_holding_a_zip_is_found(make_kaggle_zip):
    source = make_kaggle_zip()
    assert resolve_data_path(source.parent) == source


def test_unknown_class_folder_is_named(make_kaggle_zip):
    source = make_kaggle_zip(extra=[("train/contempt/Training_1.jpg", encode(face(0, 1)), 0)])
    with pytest.raises(DataError, match="unknown class folder 'contempt'"):
        load_dataset(source)


def test_zip_that_is_not_fer2013(tmp_path):
    path = tmp_path / "photos.zip"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("readme.txt", "hello")
    with pytest.raises(DataError, match="no images found"):
        load_dataset(path)


def test_file_that_is_not_a_zip(tmp_path):
    path = tmp_path / "archive.zip"
    path.write_bytes(b"this is not a zip")
    with pytest.raises(DataError, match="not a valid zip"):
        load_dataset(path)


def test_corrupt_image_is_skipped_and_named(make_kaggle_zip):
    source = make_kaggle_zip(extra=[("train/sad/Training_777.jpg", b"\xff\xd8 not really a jpeg", 4),
                                    ("train/sad/Training_778.jpg", b"", 4)])
    ds = load_dataset(source)
    assert len(ds["train"]) == 42
    assert any("Training_777.jpg" in p and "skipped" in p for p in ds.problems)
    assert any("Training_778.jpg" in p and "empty file" in p for p in ds.problems)


def test_corrupt_image_in_strict_mode_raises(make_kaggle_zip):
    source = make_kaggle_zip(extra=[("train/sad/Training_777.jpg", b"garbage", 4)])
    with pytest.raises(DataError, match="Training_777.jpg"):
        load_dataset(source, strict=True, use_cache=False)


def test_image_of_another_size_is_resized_and_reported(make_kaggle_folder):
    big = np.kron(face(2, 5), np.ones((2, 2), np.uint8))  # 96x96
    root = make_kaggle_folder(extra=[("train/fear/Training_555.png", encode(big, ".png"), 2)])
    ds = load_dataset(root)
    assert len(ds["train"]) == 43
    assert any("Training_555.png" in p and "96x96" in p and "resized to 48x48" in p for p in ds.problems)
    img = ds["train"].images[list(ds["train"].ids).index("train/fear/Training_555.png")]
    assert img.shape == (48, 48) and img[12:18].mean() > 150


def test_csv_row_with_wrong_pixel_count_is_named(make_fer_csv):
    source = make_fer_csv(bad_rows=["3," + " ".join(["7"] * 2303) + ",Training", "9," + " ".join(["7"] * 2304) + ",Training"])
    ds = load_dataset(source)
    assert len(ds) == 3 * 7 * 4
    lines = [p for p in ds.problems if "2303 pixel values, expected 2304" in p]
    assert len(lines) == 1 and "line 86" in lines[0]
    assert any("emotion '9' is not 0..6" in p for p in ds.problems)


def test_csv_with_wrong_header(tmp_path):
    path = tmp_path / "fer2013.csv"
    path.write_text("a,b,c\n1,2,3\n")
    with pytest.raises(DataError, match="not a FER2013 CSV"):
        load_dataset(path)


def test_without_drops_flagged_ids(make_kaggle_zip):
    ds = load_dataset(make_kaggle_zip())
    drop = list(ds["train"].ids[:5]) + list(ds["test"].ids[:1])
    trimmed = ds.without(drop)
    assert len(trimmed["train"]) == 37 and len(trimmed["test"]) == 20 and len(trimmed["val"]) == 21


def test_the_integration_tests_find_fer2013_where_users_put_it(tmp_path, monkeypatch, make_kaggle_zip):
    """$FER_DATA first, then data/ in the project, then ../shared/data/ (what conftest.requires_fer2013 uses)."""
    import shutil

    import tests.conftest as conftest
    monkeypatch.delenv("FER_DATA", raising=False)
    monkeypatch.setattr(conftest, "REPO", tmp_path / "repo")
    monkeypatch.setattr(conftest, "SHARED", tmp_path / "shared")
    assert conftest.find_fer2013() is None
    archive = make_kaggle_zip()
    (tmp_path / "repo" / "data").mkdir(parents=True)
    shutil.copy(archive, tmp_path / "repo" / "data" / "archive.zip")
    assert conftest.find_fer2013() == tmp_path / "repo" / "data" / "archive.zip"
    monkeypatch.setenv("FER_DATA", str(archive))
    assert conftest.find_fer2013() == archive


def test_a_zip_of_undecodable_megabytes_is_read_in_bounded_memory_with_few_warnings(tmp_path, caplog):
    import logging
    import tracemalloc

    from fer_core.data import readers
    source = tmp_path / "zeros.zip"
    with zipfile.ZipFile(source, "w", zipfile.ZIP_DEFLATED) as zf:
        for i in range(120):
            zf.writestr(f"train/happy/Training_{i}.jpg", b"\0" * 2**20)  # 120 MiB unpacked, 140 KB stored
        for label, name in ((0, "angry"), (4, "sad")):
            zf.writestr(f"train/{name}/Training_x{label}.jpg", encode(face(label, label)))
    tracemalloc.start()
    with caplog.at_level(logging.WARNING):
        dataset = readers.read_image_tree(source, strict=False)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert len(dataset.problems) == 120 and len(dataset["train"]) + len(dataset["val"]) + len(dataset["test"]) == 2
    assert peak < 2 * readers.CHUNK_BYTES + 16 * 2**20  # a chunk at a time, not the 120 MiB
    assert len(caplog.records) <= readers._Problems.LOGGED + 1
