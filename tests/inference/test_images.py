"""read_image: every source type becomes RGB uint8, upright; every unusable file gets a clear ImageError."""
from __future__ import annotations

import io
import time

import numpy as np
import pytest
from PIL import Image

from fer_core.errors import ImageError
from fer_core.inference.images import MAX_PIXELS, read_image
from tests.sample_files import BAD_IMAGES, astronaut_rgb, cmyk_jpeg


def encoded(img: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


def test_path_bytes_pil_and_array_give_the_same_rgb(tmp_path):
    rgb = astronaut_rgb()
    path = tmp_path / "astronaut.png"
    Image.fromarray(rgb).save(path)
    for source in (path, str(path), path.read_bytes(), io.BytesIO(path.read_bytes()), Image.open(path), rgb):
        out = read_image(source)
        assert out.dtype == np.uint8 and out.shape == (512, 512, 3)
        assert np.array_equal(out, rgb), type(source)


def test_numpy_colour_order_is_rgb_unless_told_bgr():
    rgb = astronaut_rgb()
    assert np.array_equal(read_image(rgb[..., ::-1], color_order="BGR"), rgb)
    with pytest.raises(ValueError, match="color_order"):
        read_image(rgb, color_order="HSV")


def test_grayscale_and_palette_become_three_equal_channels():
    gray = np.arange(48 * 48, dtype=np.uint8).reshape(48, 48)
    for source in (gray, gray[..., None], encoded(Image.fromarray(gray), "PNG"),
                   encoded(Image.fromarray(gray).convert("P"), "BMP")):
        out = read_image(source)
        assert out.shape == (48, 48, 3)
        assert np.array_equal(out[..., 0], out[..., 2])


def test_fer_style_48x48_jpeg_crop_is_read():
    out = read_image(encoded(Image.fromarray(astronaut_rgb()).convert("L").resize((48, 48)), "JPEG"))
    assert out.shape == (48, 48, 3)


def test_transparency_is_composited_on_white():
    rgba = np.zeros((10, 10, 4), np.uint8)
    rgba[..., 0] = 255
    rgba[:5, :, 3] = 255  # top half opaque red, bottom half transparent
    for source in (rgba, encoded(Image.fromarray(rgba, "RGBA"), "PNG"), encoded(Image.fromarray(rgba, "RGBA"), "WEBP",
                                                                                   lossless=True)):
        out = read_image(source)
        assert out[0, 0].tolist() == [255, 0, 0]
        assert out[9, 9].tolist() == [255, 255, 255]


def test_16_bit_images_are_scaled_to_8_bit():
    ramp = (np.arange(64, dtype=np.uint16) * 1040).reshape(8, 8)  # 0 .. 65520
    png16 = encoded(Image.fromarray(ramp), "PNG")
    assert Image.open(io.BytesIO(png16)).mode.startswith("I")
    for source in (ramp, png16):
        out = read_image(source)
        assert out.dtype == np.uint8
        assert out[0, 0, 0] == 0 and out[-1, -1, 0] >= 250


def test_float_arrays_in_0_1_are_scaled():
    out = read_image(np.full((4, 4, 3), 0.5, np.float32))
    assert out[0, 0].tolist() == [128, 128, 128]


def test_exif_orientation_is_applied():
    img = Image.fromarray(np.zeros((40, 80, 3), np.uint8))  # landscape as stored
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    out = read_image(encoded(img, "JPEG", exif=exif.tobytes()))
    assert out.shape[:2] == (80, 40)  # displayed upright: portrait


def test_cmyk_jpeg_is_converted_to_rgb():
    out = read_image(cmyk_jpeg(), "cmyk.jpg")
    assert out.shape == (60, 80, 3)
    r, g, b = out[30, 40].tolist()
    assert r > 200 and g < 50 and b < 50  # stays red


@pytest.mark.parametrize("name, data, message", BAD_IMAGES, ids=[b[0] for b in BAD_IMAGES])
def test_bad_files_get_a_clear_message_naming_the_file(name, data, message, tmp_path):
    path = tmp_path / name
    path.write_bytes(data)
    for source in (data, path):
        with pytest.raises(ImageError) as err:
            read_image(source, name=name)
        assert message in str(err.value) and name in str(err.value)


def test_decompression_bomb_is_refused_from_its_header_without_decoding():
    name, data, _ = next(b for b in BAD_IMAGES if b[0] == "bomb.png")
    start = time.perf_counter()
    with pytest.raises(ImageError, match="900 megapixels"):
        read_image(data, name=name)
    assert time.perf_counter() - start < 1.0  # decoding 900 MP would take many seconds and ~1 GB


def test_pixel_limit_applies_to_arrays_too():
    with pytest.raises(ImageError, match="megapixels"):
        read_image(np.broadcast_to(np.uint8(0), (1, MAX_PIXELS + 1)), name="wide")  # no memory used


def test_missing_file_and_unsupported_types():
    with pytest.raises(ImageError, match="not found"):
        read_image("/nonexistent/photo.jpg")
    with pytest.raises(ImageError, match="shape"):
        read_image(np.zeros((4, 4, 2), np.uint8))
    with pytest.raises(TypeError):
        read_image(12345)
