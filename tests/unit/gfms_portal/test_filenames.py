"""Attachment names as given (issue 18): Thai kept, only what a disk or header cannot hold
changed; the download header in RFC 6266 / RFC 8187 form."""

from __future__ import annotations

from urllib.parse import unquote

import pytest

from gfms_portal.filenames import content_disposition
from gfms_portal.filenames import keep_filename

RECEIPT = "ใบเสร็จรับเงิน.pdf"


@pytest.mark.parametrize(
    ("given", "kept"),
    [
        (RECEIPT, RECEIPT),
        ("ค่าที่พัก เชียงใหม่ (1).pdf", "ค่าที่พัก เชียงใหม่ (1).pdf"),
        ("receipt.PDF", "receipt.PDF"),
        ("C:\\Users\\somchai\\ใบเสร็จ.pdf", "ใบเสร็จ.pdf"),
        ("../../etc/passwd", "passwd"),
        ('a"b<c>d|e?f*g:h.pdf', "a_b_c_d_e_f_g_h.pdf"),
        ("line\r\nbreak\x00.pdf", "line__break_.pdf"),
        ("  .hidden.pdf. ", "hidden.pdf"),
        ("", "attachment"),
        ("...", "attachment"),
        # Tone mark typed before the vowel below (another keyboard): canonical order (NFC).
        ("ค\u0e48\u0e38.pdf", "ค\u0e38\u0e48.pdf"),
    ],
)
def test_a_name_is_kept_as_given_but_for_what_a_disk_cannot_hold(given, kept):
    assert keep_filename(given) == kept


def test_a_long_thai_name_is_shortened_to_the_disks_limit_keeping_its_extension():
    kept = keep_filename("ใบเสร็จ" * 60 + ".pdf")
    assert kept.endswith(".pdf")
    assert len(kept.encode()) <= 255
    assert kept.startswith("ใบเสร็จ")


def test_the_download_header_carries_the_thai_name_and_an_ascii_fallback():
    header = content_disposition(RECEIPT, fallback="attachment-7.pdf")
    plain, encoded = header.split("; filename*=UTF-8''")
    assert plain == 'attachment; filename="attachment-7.pdf"'
    assert unquote(encoded) == RECEIPT
    header.encode("latin-1")  # a header holds nothing else


def test_an_ascii_name_is_its_own_fallback():
    assert content_disposition("receipt (1).pdf", fallback="x.pdf").startswith(
        'attachment; filename="receipt (1).pdf"; '
    )


@pytest.mark.parametrize("name", ['a".pdf', "a\r\nSet-Cookie: x=1.pdf", "a\\.pdf"])
def test_nothing_breaks_out_of_the_header(name):
    header = content_disposition(name, fallback='evil"\r\n.pdf')
    assert "\r" not in header
    assert "\n" not in header
    assert header.count('"') == 2
