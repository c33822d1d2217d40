import base64
import io

import pytest
from PIL import Image

from assistant.errors import AttachmentError
from assistant.model.images import image_to_data_uri, user_message


def png(path, size=(300, 200), color=(200, 10, 10)):
    Image.new("RGB", size, color).save(path, format="PNG")
    return path


def decode(uri):
    header, _, payload = uri.partition(",")
    return header, Image.open(io.BytesIO(base64.b64decode(payload)))


def test_local_png_becomes_data_uri_and_is_downscaled(tmp_path):
    header, img = decode(image_to_data_uri(png(tmp_path / "a.png"), max_side=100))
    assert header == "data:image/png;base64"
    assert max(img.size) == 100 and img.size == (100, 67)


def test_small_image_is_passed_unchanged(tmp_path):
    path = png(tmp_path / "a.png", size=(20, 10))
    uri = image_to_data_uri(path, max_side=100)
    assert base64.b64decode(uri.split(",", 1)[1]) == path.read_bytes()


def test_bmp_is_reencoded_as_png(tmp_path):
    path = tmp_path / "a.bmp"
    Image.new("RGB", (10, 10)).save(path, format="BMP")
    assert image_to_data_uri(path, max_side=100).startswith("data:image/png;base64,")


@pytest.mark.parametrize(
    "content, expected",
    [(b"", "empty"), (b"not an image at all", "not a readable image"), (None, "truncated")],
)
def test_bad_images_give_clear_errors(tmp_path, content, expected):
    path = tmp_path / "bad.png"
    if content is None:  # a real PNG cut in half
        full = png(tmp_path / "full.png", size=(400, 400), color=(1, 2, 3))
        Image.effect_noise((400, 400), 50).save(full)
        path.write_bytes(full.read_bytes()[: full.stat().st_size // 2])
        expected = "not a readable image"
    else:
        path.write_bytes(content)
    with pytest.raises(AttachmentError, match=expected):
        image_to_data_uri(path, max_side=100)


def test_missing_file_and_folder(tmp_path):
    with pytest.raises(AttachmentError, match="does not exist"):
        image_to_data_uri(tmp_path / "nope.png", max_side=100)
    with pytest.raises(AttachmentError, match="is a folder"):
        image_to_data_uri(tmp_path, max_side=100)


def test_unreachable_url_is_an_attachment_error():
    with pytest.raises(AttachmentError, match="could not download"):
        image_to_data_uri("http://127.0.0.1:9/x.png", max_side=100, timeout=2)


def test_user_message_shapes():
    assert user_message("hi", []) == {"role": "user", "content": "hi"}
    msg = user_message("what is this?", ["data:image/png;base64,AA=="])
    assert msg["content"][0]["type"] == "image_url" and msg["content"][-1] == {"type": "text", "text": "what is this?"}
