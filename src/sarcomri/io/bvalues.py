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
sometimes drop creators); a block reserved by another creator is ignored. The block is found by its creator,
as PS3.5 section 7.8.1 defines it: a creator may reserve any block (gggg,0010)-(gggg,00FF), so the Siemens
b-value is (0019,xx0C) where (0019,00xx) is ``SIEMENS MR HEADER`` (0x10 on the scanner's own files; software
that rewrites private blocks may renumber it). When no creator is present, the usual block 0x10 is assumed.
docs/dicom_bvalues.md compares every rule with dcm2niix's reading of the same files.
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
        value = first_number(std.value)
        if value is not None:
            return value
    for vendor, (group, offset, creator) in _PRIVATE.items():
        elem = private_element(ds, group, offset, creator)
        if elem is None:
            continue
        value = first_number(elem.value, philips=vendor == "philips")
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


def private_element(ds: pydicom.Dataset, group: int, offset: int, creator: str):
    """The element at ``offset`` in the block of ``group`` that ``creator`` reserves, or in block 0x10 when no
    creator is recorded there (dropped by an anonymiser); None when block 0x10 belongs to another creator."""
    owners = {}
    for tag in ds.keys():
        if tag.group == group and 0x10 <= tag.element <= 0xFF:
            value = ds[tag].value
            text = value.decode("latin-1") if isinstance(value, bytes) else str(value)
            owners[tag.element] = text.replace("\x00", "").strip().upper()
    block = next((slot for slot, text in owners.items() if text == creator.upper()), None)
    if block is None:
        if 0x10 in owners:
            return None
        block = 0x10
    tag = (group, (block << 8) | offset)
    return ds[tag] if tag in ds else None


def first_number(value, philips: bool = False) -> float | None:
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
        return first_number(value[0], philips) if len(value) else None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None
