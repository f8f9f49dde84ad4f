"""Diffusion b-values (s/mm^2) from DICOM headers: the standard tag first, then the vendors' private tags.

Where the b-value of a diffusion-weighted image is stored:

========================  ============  ===========================================================
tag                       vendor        value
========================  ============  ===========================================================
(0018,9087)               standard      DiffusionBValue (FD); enhanced and recent classic images
(0019,100C)               Siemens       private, creator ``SIEMENS MR HEADER``; IS, often read as
                                        raw bytes such as ``b'800 '``
(0043,1039)               GE            private, creator ``GEMS_PARM_01``; IS with 4 values, the
                                        first is the b-value; values of 1e9 or more carry a flag in
                                        the 10^9 digit (``b + 1e9``), so the b-value is taken mod 1e9
(2001,1003)               Philips       private, creator ``Philips Imaging DD 001``; FL
========================  ============  ===========================================================

A private tag is trusted only when its private creator is the expected one or absent (anonymisers
sometimes drop creators); a block reserved by another creator is ignored.
"""

from __future__ import annotations

import math
import re
import struct

import pydicom

#: (group, element offset in the block, expected private creator)
_PRIVATE = {
    "siemens": (0x0019, 0x0C, "SIEMENS MR HEADER"),
    "ge": (0x0043, 0x39, "GEMS_PARM_01"),
    "philips": (0x2001, 0x03, "Philips Imaging DD 001"),
}
_DESCRIPTION_B = re.compile(r"(?<![a-z0-9])b\s*[=_-]?\s*(\d{2,4})(?![0-9])", re.I)


def b_value(ds: pydicom.Dataset) -> float | None:
    """The b-value of one diffusion-weighted image in s/mm^2, or None when no known tag holds one."""
    std = ds.get((0x0018, 0x9087))
    if std is not None:
        value = _first_number(std.value)
        if value is not None:
            return value
    for vendor, (group, offset, creator) in _PRIVATE.items():
        elem = _private_element(ds, group, offset, creator)
        if elem is None:
            continue
        value = _first_number(elem.value, philips=vendor == "philips")
        if value is None:
            continue
        if vendor == "ge" and value >= 1e9:
            value = math.fmod(value, 1e9)
        return value
    return None


def b_value_from_description(description: str | None) -> float | None:
    """A b-value written in a series description (``DWI b800``, ``b=1000``), or None."""
    if not description:
        return None
    m = _DESCRIPTION_B.search(description)
    return float(m.group(1)) if m else None


def _private_element(ds: pydicom.Dataset, group: int, offset: int, creator: str):
    """The private element at (group, 0x10 block + offset), if its creator is the expected one or absent."""
    tag = (group, 0x1000 + offset)
    if tag not in ds:
        return None
    owner = ds.get((group, 0x0010))
    if owner is not None:
        text = owner.value.decode("latin-1") if isinstance(owner.value, bytes) else str(owner.value)
        if text.strip().upper() != creator.upper():
            return None
    return ds[tag]


def _first_number(value, philips: bool = False) -> float | None:
    """The first number in a DICOM value: a number, a multi-value, a string or raw bytes."""
    if value is None:
        return None
    if isinstance(value, bytes):
        if philips and len(value) == 4:
            number = struct.unpack("<f", value)[0]
            return float(number) if math.isfinite(number) else None
        value = value.decode("latin-1", errors="replace").replace("\x00", "")
    if isinstance(value, str):
        value = value.split("\\")[0].strip()
        if not value:
            return None
        try:
            number = float(value)
        except ValueError:
            return None
        return number if math.isfinite(number) else None
    if isinstance(value, list | tuple | pydicom.multival.MultiValue):
        return _first_number(value[0], philips) if len(value) else None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None
