"""The Predict page in Streamlit's AppTest: photos, bad files, downloads, the whole-image switch and video."""
from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from fer_core.inference.faces import YUNET_ENV
from tests.conftest import REPO, YUNET_ONNX
from tests.sample_files import BAD_IMAGES, BAD_VIDEOS, astronaut_rgb, cmyk_jpeg, jpeg_bytes, photo_jpeg, write_face_video

PAGE = str(REPO / "pages" / "predict.py")


@pytest.fixture
def page(tiny_checkpoint, monkeypatch):
    """The page with the tiny checkpoint chosen as 'another checkpoint file' (no shipped model needed)."""
    monkeypatch.delenv(YUNET_ENV, raising=False)
    at = AppTest.from_file(PAGE, default_timeout=120).run()
    assert not at.exception
    at.selectbox(key="model").select("Another checkpoint file…").run()
    at.text_input(key="checkpoint_path").input(str(tiny_checkpoint)).run()
    assert not at.exception and not at.error
    return at


def upload_photos(at, files):
    at.file_uploader(key="photos").set_value([(name, data, "application/octet-stream") for name, data in files])
    return at.run()


def test_a_photo_shows_the_annotated_image_a_chart_and_downloads(page):
    at = upload_photos(page, [("astronaut.jpg", jpeg_bytes(astronaut_rgb()))])
    assert not at.exception and not at.error
    captions = [img.captions[0] for img in at.get("image")]
    assert len(captions) == 2 and captions[0].startswith("astronaut.jpg: ") and "%" in captions[0]
    assert captions[1].startswith("what the network read")  # the 48x48 face, beside its chart
    assert len(at.get("plotly_chart")) == 1
    assert [b.label for b in at.get("download_button")] == ["Annotated PNG", "Results as CSV", "Results as JSON"]
    assert any(md.value.startswith("**Face 1:") for md in at.markdown)


def test_heat_maps_show_beside_each_face_and_in_the_png(page):
    at = upload_photos(page, [("astronaut.jpg", jpeg_bytes(astronaut_rgb()))])
    plain_png = next(b for b in at.get("download_button") if b.label == "Annotated PNG").proto.url
    at.toggle(key="explain").set_value(True).run()
    assert not at.exception and not at.warning
    images = at.get("image")
    assert len(images) == 3 and images[2].captions[0].startswith("where it found ")
    at.selectbox(key="explain_emotion").select("sad").run()
    assert not at.exception and at.get("image")[2].captions[0].startswith("where it found sad (")
    assert next(b for b in at.get("download_button") if b.label == "Annotated PNG").proto.url != plain_png


def test_an_onnx_model_predicts_and_says_why_it_has_no_heat_maps(page, tiny_checkpoint, tmp_path):
    from fer_core.models.loading import export_onnx
    onnx = export_onnx(tiny_checkpoint, tmp_path / "tiny.onnx")
    page.text_input(key="checkpoint_path").input(str(onnx)).run()
    page.toggle(key="explain").set_value(True).run()
    at = upload_photos(page, [("astronaut.jpg", jpeg_bytes(astronaut_rgb()))])
    assert not at.exception and any("PyTorch checkpoint" in w.value for w in at.warning)
    assert len(at.get("image")) == 2 and len(at.get("plotly_chart")) == 1  # the photo and what the network read


def test_every_bad_file_gets_its_message_and_the_good_ones_still_work(page):
    files = [(name, data) for name, data, _ in BAD_IMAGES]
    files += [("astronaut.jpg", jpeg_bytes(astronaut_rgb())), ("cmyk.jpg", cmyk_jpeg())]
    at = upload_photos(page, files)
    assert not at.exception
    errors = [e.value for e in at.error]
    assert len(errors) == len(BAD_IMAGES)
    for (name, _, message), error in zip(BAD_IMAGES, errors):
        assert name in error and message in error
    captions = [img.captions[0] for img in at.get("image") if not img.captions[0].startswith("what the network")]
    assert [c.split(":")[0] for c in captions] == ["astronaut.jpg", "cmyk.jpg"]  # CMYK is converted, not refused


def test_a_photo_without_a_face_says_so_and_the_switch_classifies_crops(page):
    at = upload_photos(page, [("noise.jpg", photo_jpeg())])
    assert any("No face found in noise.jpg" in i.value for i in at.info)
    next(b for b in at.button if b.label == "Read the whole photo as one face").click().run()
    assert not at.exception and any("the whole photo was read as one face" in md.value for md in at.markdown)
    at.toggle(key="whole_image").set_value(True).run()
    assert not at.exception and len(at.get("plotly_chart")) == 1


def test_tta_off_and_a_missing_checkpoint(page, tmp_path):
    at = upload_photos(page, [("astronaut.jpg", jpeg_bytes(astronaut_rgb()))])
    at.toggle(key="tta").set_value(False).run()
    assert not at.exception and len(at.get("plotly_chart")) == 1
    at.text_input(key="checkpoint_path").input(str(tmp_path / "gone.pt")).run()
    assert any("checkpoint not found" in e.value for e in at.error)


def test_a_bad_yunet_path_falls_back_to_haar_with_a_warning(page, tmp_path):
    at = page
    at.text_input(key="yunet").input(str(tmp_path / "nope.onnx")).run()
    assert any("YuNet model not found" in w.value for w in at.warning)
    at = upload_photos(at, [("astronaut.jpg", jpeg_bytes(astronaut_rgb()))])
    assert len(at.get("plotly_chart")) == 1


@pytest.mark.skipif(not YUNET_ONNX.exists(), reason=f"YuNet model not at {YUNET_ONNX}")
def test_yunet_finds_the_face(page):
    page.text_input(key="yunet").input(str(YUNET_ONNX)).run()
    at = upload_photos(page, [("astronaut.jpg", jpeg_bytes(astronaut_rgb()))])
    assert not at.warning and len(at.get("plotly_chart")) == 1


def test_video_is_analysed_with_a_timeline_summary_and_downloads(page, tmp_path):
    clip = tmp_path / "clip.mp4"
    write_face_video(clip, frames=12, fps=10)
    at = page
    at.file_uploader(key="video").set_value(("clip.mp4", clip.read_bytes(), "video/mp4")).run()
    at.number_input(key="every_n").set_value(3).run()
    at.button(key="analyse").click().run()
    assert not at.exception and not at.error
    assert "clip.mp4: 4 frames analysed, 4 with a face" in at.success[0].value
    assert len(at.get("plotly_chart")) == 2  # the summary shares and the emotions over time
    assert [b.label for b in at.get("download_button")] == ["Frames as CSV", "Frames as JSON", "Annotated video"]
    assert len(at.get("video")) == 1
    assert len(at.dataframe[0].value) == 4  # one row per face per sampled frame


@pytest.mark.parametrize("name, data, message", BAD_VIDEOS, ids=[b[0] for b in BAD_VIDEOS])
def test_bad_videos_get_their_message(page, name, data, message):
    at = page
    at.file_uploader(key="video").set_value((name, data, "video/mp4")).run()
    at.button(key="analyse").click().run()
    assert not at.exception
    assert [e.value for e in at.error] == [at.error[0].value] and message in at.error[0].value
    assert name in at.error[0].value
