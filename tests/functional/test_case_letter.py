"""The letter itself: the case page gives the head of unit a ready-to-sign Thai letter to CGD
as a PDF with its Thai font embedded, filled with the case's facts, and where to send it."""

from __future__ import annotations

import io
import unicodedata

from pypdf import PdfReader
from sqlalchemy import select

from idp.accounts.models import User
from idp.audit.models import AuditEvent
from tests.functional.test_admin_api import call
from tests.functional.test_admin_console import console
from tests.functional.test_helpdesk_console import stack  # noqa: F401 - the fixture
from tests.functional.test_lost_phones import helpdesk_token

_ARABIC = str.maketrans("๐๑๒๓๔๕๖๗๘๙", "0123456789")


def pdf_text(content: bytes) -> str:
    """The PDF's text as a reader copies it, made comparable: NFKC (SARA AM), Arabic digits,
    no zero-width break opportunities."""
    reader = PdfReader(io.BytesIO(content))
    text = "\n".join(page.extract_text() for page in reader.pages)
    return unicodedata.normalize("NFKC", text).translate(_ARABIC).replace("\u200b", "")


def embedded_fonts(content: bytes) -> set[str]:
    reader = PdfReader(io.BytesIO(content))
    names = set()
    for page in reader.pages:
        for font in page["/Resources"]["/Font"].values():
            descendant = font.get_object()["/DescendantFonts"][0].get_object()
            if "/FontFile2" in descendant["/FontDescriptor"]:
                names.add(str(descendant["/BaseFont"]).split("+")[-1])
    return names


def flat(text: str) -> str:
    return " ".join(unicodedata.normalize("NFKC", text).split())


def test_the_head_of_unit_downloads_the_letter_filled_with_the_case(stack):  # noqa: F811
    with stack.deps.sessions.begin() as session:
        malee = session.scalar(select(User).where(User.username == "malee"))
        malee.given_name_th, malee.family_name_th = "มาลี", "ใจดี"
        head = session.scalar(select(User).where(User.username == "head1"))
        head.given_name_th, head.family_name_th = "สมศรี", "ผู้นำ"
    case = call(stack, helpdesk_token(stack), "POST", "/users/malee/suspend-phone",
                json={"reason": "stolen", "lost_at": "2026-11-20T18:30"}).json()  # fmt: skip
    page = console(stack, "head1", f"/admin/cases/{case['id']}")
    assert 'id="letter-pdf"' in page.page.text
    channels = page.page.text.split('id="send-channels"')[1].split("</ul>")[0]
    for channel in ("gfmiscc@gfmis.go.th", "0 2032 2636", "@gfmiscc", "กรมบัญชีกลาง"):
        assert channel in channels

    answer = page.go(f"{stack.idp}/admin/cases/{case['id']}/letter.pdf")
    assert answer.status_code == 200
    assert answer.headers["Content-Type"] == "application/pdf"
    assert answer.headers["Content-Disposition"].startswith("attachment;")
    assert answer.content.startswith(b"%PDF-")
    assert embedded_fonts(answer.content) >= {"Sarabun"}  # Thai shows on any machine
    text = pdf_text(answer.content)
    body = flat(text)
    for fact in (
        "กองระบบการคลังภาครัฐ กรมบัญชีกลาง",
        "มาลี ใจดี",
        "(รหัสผู้ใช้งาน malee)",
        "หน่วย 0000000001 (รหัสหน่วยงาน 0000000001)",
        "ได้ถูกโจรกรรม เมื่อวันที่ 20 พฤศจิกายน 2569 เวลา 18.30 น.",
        "กค 0402.2/ว 24",
        "ภายใน 3 วันทำการ",
        f"(เลขที่เรื่อง {case['id']})",
        "(สมศรี ผู้นำ)",  # the head of unit who downloads it signs it
        "หัวหน้าหน่วยงานผู้เบิก",
        "gfmiscc@gfmis.go.th",
        "ภายในวันที่ 25 พฤศจิกายน 2569",
    ):
        assert flat(fact) in body, fact
    with stack.deps.sessions() as session:
        assert session.scalar(select(AuditEvent.event).where(
            AuditEvent.event == "revocation.case_letter_drafted")) is not None  # fmt: skip


def test_no_one_else_reads_the_letter_and_an_investigation_has_none(stack):  # noqa: F811
    helpdesk = helpdesk_token(stack)
    lost = call(stack, helpdesk, "POST", "/users/malee/suspend-phone",
                json={"reason": "lost"}).json()  # fmt: skip
    # Attack: a user without an administrative role asks for someone's letter by its id.
    somchai = console(stack, "somchai", "/account")
    stolen = somchai.go(f"{stack.idp}/admin/cases/{lost['id']}/letter.pdf")
    assert stolen.status_code == 403
    assert not stolen.content.startswith(b"%PDF")
    # Another province's treasury office is no head of this unit and no helpdesk.
    other = console(stack, "treasury2", "/admin")
    refused = other.go(f"{stack.idp}/admin/cases/{lost['id']}/letter.pdf")
    assert refused.status_code == 403
    investigation = call(stack, helpdesk, "POST", "/users/prasert/suspend-phone",
                         json={"reason": "compromised"}).json()  # fmt: skip
    desk = console(stack, "helpdesk1", f"/admin/cases/{investigation['id']}")
    assert 'id="letter-pdf"' not in desk.page.text
    none = desk.go(f"{stack.idp}/admin/cases/{investigation['id']}/letter.pdf")
    assert none.status_code == 409
    # The helpdesk may print a lost phone's letter for the unit, left for the head to sign.
    printed = desk.go(f"{stack.idp}/admin/cases/{lost['id']}/letter.pdf")
    assert printed.status_code == 200
    assert "หัวหน้าหน่วยงานผู้เบิก" in pdf_text(printed.content)
