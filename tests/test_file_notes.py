"""A stored DICOM file's notes are shown in the reader's language: each template the
reader makes notes from has its words, and a note it really made is worded from them."""

from __future__ import annotations

from flask_babel import force_locale

from telemed.imaging import reading
from telemed.web.file_notes import NOTE_WORDS, file_notes


def test_every_note_template_of_the_reader_has_its_words():
    assert set(NOTE_WORDS) == set(reading.NOTE_TEMPLATES)


def test_a_note_the_reader_made_is_worded_in_each_language(app):
    made = "; ".join(
        [
            reading.decoder_problem("1.2.3.4.5.6"),  # a transfer syntax nobody decodes
            reading.check_head(b"II*\x00" + bytes(124) + b"DICM")[0],
            reading.NOTE_DECODING_FAILED.format(detail="broken stream"),
        ]
    )
    with force_locale("zh_Hans"):
        chinese = file_notes(made)
    with force_locale("en"):
        english = file_notes(made)
    assert english == made
    assert chinese.startswith("传输语法 1.2.3.4.5.6 无法在此解码；")
    assert "TIFF" in chinese and "broken stream" in chinese and "cannot" not in chinese


def test_a_note_from_no_known_template_is_shown_as_stored(app):
    with force_locale("zh_Hans"):
        assert file_notes("an older reader's words") == "an older reader's words"
        assert file_notes(None) == ""
