"""Home's upload of Kaggle's archive.zip: kept only when it is FER2013."""
import io

import pytest

from fer_core.data import upload as data_access
from fer_core.errors import DataError


@pytest.fixture
def data_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("FER_DATA_DIR", str(tmp_path / "data"))
    return tmp_path / "data"


def test_a_fer2013_archive_is_kept_as_data_fer2013_zip(data_dir, make_kaggle_zip):
    upload = io.BytesIO(make_kaggle_zip().read_bytes())
    target = data_access.save_upload(upload)
    assert target == data_dir / "fer2013.zip" and target.stat().st_size > 0
    assert [p.name for p in data_dir.iterdir()] == ["fer2013.zip"]


@pytest.mark.parametrize("content,message", [(b"not a zip", "not a valid zip"), (None, "no images found")])
def test_anything_else_is_refused_and_not_kept(data_dir, content, message):
    if content is None:  # a real zip, but not FER2013
        import zipfile
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as zf:
            zf.writestr("holiday/photo.txt", "hello")
        content = buffer.getvalue()
    with pytest.raises(DataError, match=message):
        data_access.save_upload(io.BytesIO(content))
    assert list(data_dir.iterdir()) == []
