"""The pure rules behind DICOMweb: content negotiation and QIDO matching."""

from __future__ import annotations

import pytest

from telemed.domain.dicomweb_media import (
    choose_frame_form,
    choose_instance_syntax,
    choose_media,
    parse_accept,
)
from telemed.domain.qido_matching import (
    BadQuery,
    Key,
    parse_query,
    person_name_matches,
    value_matches,
)

ELE = "1.2.840.10008.1.2.1"
J2K = "1.2.840.10008.1.2.4.90"
IMPLICIT = "1.2.840.10008.1.2"


def test_accept_items_are_ordered_by_quality_and_q0_is_dropped():
    items = parse_accept(
        'image/png;q=0.5, multipart/related; type="image/x-jls"; transfer-syntax=1.2, image/gif;q=0'
    )
    assert [(i.media, i.multipart, i.syntax) for i in items] == [
        ("image/jls", True, "1.2"),
        ("image/png", False, None),
    ]
    assert parse_accept(None)[0].media == "*/*"


@pytest.mark.parametrize(
    "accept, stored, decodable, expected",
    [
        ('multipart/related; type="application/dicom"', J2K, True, ELE),
        ('multipart/related; type="application/dicom"', J2K, False, None),
        ('multipart/related; type="application/dicom"; transfer-syntax=*', J2K, False, J2K),
        ("application/dicom; transfer-syntax=*", IMPLICIT, True, ELE),
        ("application/dicom", IMPLICIT, True, ELE),
        (f"application/dicom; transfer-syntax={IMPLICIT}", IMPLICIT, True, IMPLICIT),
        (f"application/dicom; transfer-syntax={J2K}", ELE, True, None),
        ("application/pdf", ELE, True, None),
        ("*/*", ELE, True, ELE),
    ],
)
def test_the_syntax_an_instance_is_sent_in(accept, stored, decodable, expected):
    choice = choose_instance_syntax(parse_accept(accept), stored, decodable)
    assert (choice.syntax if choice else None) == expected


@pytest.mark.parametrize(
    "accept, stored, decodable, expected",
    [
        ("*/*", J2K, True, (True, "application/octet-stream", ELE)),
        ('multipart/related; type="application/octet-stream"', J2K, False, None),
        (
            'multipart/related; type="application/octet-stream"; transfer-syntax=*',
            J2K,
            False,
            (False, "application/octet-stream", J2K),
        ),
        ('multipart/related; type="image/jp2"', J2K, False, (False, "image/jp2", J2K)),
        ('multipart/related; type="image/jpeg"', J2K, True, None),
        (
            'multipart/related; type="image/x-dicom-rle"',
            "1.2.840.10008.1.2.5",
            True,
            (False, "image/dicom-rle", "1.2.840.10008.1.2.5"),
        ),
        ('multipart/related; type="image/jpeg"', ELE, True, None),
        (
            "application/octet-stream; transfer-syntax=*",
            IMPLICIT,
            True,
            (True, "application/octet-stream", ELE),
        ),
    ],
)
def test_the_form_frames_are_sent_in(accept, stored, decodable, expected):
    choice = choose_frame_form(parse_accept(accept), stored, decodable)
    got = (choice.native, choice.part_media, choice.syntax) if choice else None
    assert got == expected


def test_rendered_and_json_media():
    offered = ("image/jpeg", "image/png", "image/gif")
    assert choose_media(parse_accept("image/gif"), offered) == "image/gif"
    assert choose_media(parse_accept("image/*;q=0.5, image/png"), offered) == "image/png"
    assert choose_media(parse_accept("image/webp"), offered) is None
    assert choose_media(parse_accept("*/*"), offered) == "image/jpeg"


@pytest.mark.parametrize(
    "name, wanted, fuzzy, expected",
    [
        ("Zhang^San", "zhang^san", False, True),
        ("Zhang^San", "zhang", False, False),
        ("Zhang^San", "zh*", False, True),
        ("Zhang^San", "zhang", True, True),
        ("Zhang^San", "san zh", True, True),
        ("Zhang^San", "si", True, False),
        ("García^José", "jose garc", True, True),
        ("GARCÍA^JOSÉ", "garcía", True, True),
        ("Zhang^San=张^三", "张", True, True),
        ("Zhang^San=张^三", "三", True, True),
        ("Zhang^San=张^三", "张^三", False, True),
        ("=王小明", "王小", True, True),
        ("=王小明", "小明", True, False),  # ideographic names are not split into characters
        ("Ｌｉ^Ｗｅｉ", "li", True, True),  # full-width Latin folds to half width
    ],
)
def test_person_name_rule(name, wanted, fuzzy, expected):
    assert person_name_matches(name, wanted, fuzzy) is expected


def test_ranges_and_numbers():
    date = Key("StudyDate", "00080020", "DA", "20260101-20260131")
    assert value_matches(["20260115"], date, False)
    assert not value_matches(["20260201"], date, False)
    time = Key("StudyTime", "00080030", "TM", "0930-1000")
    assert value_matches(["093000.5"], time, False)
    assert not value_matches(["100001"], time, False)
    number = Key("SeriesNumber", "00200011", "IS", "3")
    assert value_matches([3], number, False) and not value_matches([30], number, False)
    uids = Key("SOPInstanceUID", "00080018", "UI", "1.2,1.3")
    assert value_matches(["1.3"], uids, False) and not value_matches(["1.23"], uids, False)
    assert not value_matches([], Key("StudyID", "00200010", "SH", "S1"), False)
    assert value_matches([], Key("StudyID", "00200010", "SH", "*"), False)


def test_query_parsing_names_what_is_wrong():
    query = parse_query(
        [
            ("PatientName", "li*"),
            ("00200010", "S1"),
            ("includefield", "PatientAge,all"),
            ("limit", "5"),
            ("offset", "2"),
            ("fuzzymatching", "true"),
        ]
    )
    assert [k.keyword for k in query.keys] == ["PatientName", "StudyID"]
    assert query.include == ["00101010", "all"] and query.limit == 5 and query.offset == 2
    assert query.fuzzy
    with pytest.raises(BadQuery) as twice:
        parse_query([("PatientID", "1"), ("00100020", "2")])
    assert twice.value.field == "00100020"
    assert parse_query([("limit", "999999")]).limit == 5000
