"""Figures written into a page itself (``data:`` URIs), so that one HTML file can be mailed or archived alone."""

from __future__ import annotations

import base64
import mimetypes
from pathlib import Path

from sarcomri.errors import InputError

#: The image types a page may embed, by suffix.
MIME = {".png": "image/png", ".svg": "image/svg+xml", ".jpg": "image/jpeg", ".jpeg": "image/jpeg"}


def data_uri(content: bytes, mime: str) -> str:
    """``content`` as a base64 ``data:`` URI of type ``mime`` (e.g. ``image/png``)."""
    return f"data:{mime};base64,{base64.b64encode(content).decode('ascii')}"


def file_data_uri(path: str | Path) -> str:
    """The image file ``path`` as a ``data:`` URI; its type comes from the suffix (see :data:`MIME`)."""
    path = Path(path)
    mime = MIME.get(path.suffix.lower()) or mimetypes.guess_type(path.name)[0]
    if mime is None or not mime.startswith("image/"):
        raise InputError(path, "is not an image a page can embed (png, svg, jpg)")
    try:
        return data_uri(path.read_bytes(), mime)
    except OSError as err:
        raise InputError(path, f"cannot be read ({err})") from None
