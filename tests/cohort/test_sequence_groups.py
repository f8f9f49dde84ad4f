"""The one parser of channel groups ("T1+T2": the input sequences of one model) and its inverse."""

from __future__ import annotations

import pytest

from sarcomri.cohort.sequences import GROUP_SEPARATOR, group_name, parse_group
from sarcomri.config import ClassificationConfig
from sarcomri.errors import InputError
from sarcomri.seg3d.config import Seg3DConfig


@pytest.mark.parametrize(("text", "group"), [
    ("T2axi", ("T2axi",)),
    ("DWI_b0+DWI_b1000+ADC", ("DWI_b0", "DWI_b1000", "ADC")),
    ("T1 + T2", ("T1", "T2")),  # spaces around the separator are not part of a name
])
def test_parse_and_name_are_inverse(text, group):
    assert parse_group(text) == group
    assert group_name(group) == text.replace(" ", "") and parse_group(group_name(group)) == group


@pytest.mark.parametrize(("text", "problem"), [
    ("", "empty sequence name"),
    ("T1++T2", "empty sequence name"),
    ("+T2", "empty sequence name"),
    ("T1+T1", "lists a sequence twice"),
    ("T1+T2 fs", "not a sequence name"),
    ("../T1", "not a sequence name"),
])
def test_bad_groups_are_named(text, problem):
    with pytest.raises(InputError, match=problem):
        parse_group(text)


@pytest.mark.parametrize("names", [(), ("T1", ""), ("T1+T2", "ADC")])
def test_group_name_refuses_what_parse_group_cannot_read(names):
    with pytest.raises(InputError):
        group_name(names)


def test_configs_read_their_groups_with_it():
    cls = ClassificationConfig(name="x", cohort="c", sequences=["T2axi", "DWI_b0+ADC"])
    assert cls.channel_groups() == [("T2axi",), ("DWI_b0", "ADC")]
    seg = Seg3DConfig(name="x", cohort="c", sequences=["T1+T2"])
    assert seg.channel_groups() == [("T1", "T2")] and GROUP_SEPARATOR == "+"
