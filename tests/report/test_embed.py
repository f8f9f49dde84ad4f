"""Embedded figures: a data URI decodes back to the file's bytes, with its type; other files are refused."""

import base64

import pytest

from sarcomri.errors import InputError
from sarcomri.report.embed import data_uri, file_data_uri


def test_a_figure_round_trips_through_its_data_uri(tmp_path):
    content = bytes(range(256)) * 3
    (tmp_path / "f.PNG").write_bytes(content)
    uri = file_data_uri(tmp_path / "f.PNG")
    head, _, body = uri.partition(",")
    assert head == "data:image/png;base64"
    assert base64.b64decode(body) == content
    assert data_uri(b"<svg/>", "image/svg+xml") == "data:image/svg+xml;base64," + base64.b64encode(b"<svg/>").decode()


def test_a_file_that_is_not_an_image_is_refused(tmp_path):
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(InputError, match="not an image"):
        file_data_uri(tmp_path / "notes.txt")
    with pytest.raises(InputError, match="cannot be read"):
        file_data_uri(tmp_path / "missing.png")
