"""The sequence vocabulary: planes from ImageOrientationPatient, DWI names, the editable YAML mapping."""

import numpy as np
import pytest

from sarcomri.cohort.sequences import (
    PLANAR_SEQUENCES,
    SequenceMap,
    b_value_of,
    dwi_name,
    is_canonical,
    plane_from_orientation,
)
from sarcomri.errors import InputError

AXIAL = [1, 0, 0, 0, 1, 0]
SAGITTAL = [0, 1, 0, 0, 0, -1]
CORONAL = [1, 0, 0, 0, 0, -1]


def test_plane_from_orientation_uses_the_slice_normal():
    assert plane_from_orientation(AXIAL) == "axi"
    assert plane_from_orientation(SAGITTAL) == "sag"
    assert plane_from_orientation(CORONAL) == "cor"
    t = np.radians(20)  # an axial slab tilted by 20 degrees stays axial
    assert plane_from_orientation([1, 0, 0, 0, np.cos(t), np.sin(t)]) == "axi"
    with pytest.raises(InputError, match="parallel"):
        plane_from_orientation([1, 0, 0, 1, 0, 0])
    with pytest.raises(InputError, match="6 finite numbers"):
        plane_from_orientation([1, 0, 0])


def test_dwi_names_and_vocabulary():
    assert dwi_name(1000.0) == "DWI_b1000" and dwi_name(49.6) == "DWI_b50"
    assert b_value_of("DWI_b800") == 800 and b_value_of("T2axi") is None
    assert all(is_canonical(s) for s in PLANAR_SEQUENCES)
    assert is_canonical("ADC") and is_canonical("ADC_computed") and is_canonical("T1CEFS")
    assert not is_canonical("T2oblique") and not is_canonical("DWI")


def test_default_map_names_vendor_descriptions_and_planes_from_geometry():
    m = SequenceMap.load()
    assert m.name_series("t2_tse_tra", None, AXIAL).name == "T2axi"
    assert m.name_series("t2_tse_tra", None, SAGITTAL).name == "T2sag"  # geometry wins over the description
    assert m.name_series("ep2d_diff_tra_DYNDIST_ADC", None, AXIAL).name == "ADC"
    dwi = m.name_series("ep2d_diff_tra_DYNDIST", None, AXIAL)
    assert dwi.name == "DWI" and dwi.diffusion
    assert m.name_series("tfl3d PD reftra1.5x1.5t3", None, AXIAL).skip
    assert m.name_series("vibe_fs_tra_post_gd", None, AXIAL).name == "fsT1CEaxi"
    unmapped = m.name_series("spectroscopy csi", None, AXIAL)
    assert unmapped.name is None and not unmapped.skip


def test_canonical_names_map_to_themselves():
    m = SequenceMap.load()
    for name in PLANAR_SEQUENCES:
        plane = {"axi": AXIAL, "sag": SAGITTAL, "cor": CORONAL}[name[-3:]]
        assert m.name_series(name, None, plane).name == name


def test_user_map_and_its_errors(tmp_path):
    p = tmp_path / "map.yaml"
    p.write_text("rules:\n  - name: T1\n    match: ['MR_T1_image']\n")
    assert SequenceMap.load(p).name_series("STS_001_MR_T1_image").name == "T1"
    p.write_text("rules:\n  - name: T1\n    match: ['(unclosed']\n")
    with pytest.raises(InputError, match="bad regular expression"):
        SequenceMap.load(p)
    p.write_text("rules:\n  - match: ['x']\n")
    with pytest.raises(InputError, match="needs 'name' and 'match'"):
        SequenceMap.load(p)
    with pytest.raises(InputError, match="cannot read"):
        SequenceMap.load(tmp_path / "missing.yaml")
