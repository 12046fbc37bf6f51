"""The head of unit's letter to CGD about a lost phone, ready to sign: a Thai official letter
(หนังสือภายนอก) filled with the case's facts, as a PDF with its Thai font embedded.

The Ministry's letter (กค ๐๔๐๒.๒/ว ๒๔, ข้อ ๔) asks the head of the disbursement unit to write
to the Comptroller General's Department (กองระบบการคลังภาครัฐ) within 3 working days of the
loss. The number and the signature are the unit's to add; everything the IdP knows is filled in.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from datetime import datetime
from pathlib import Path

from fpdf import FPDF
from sqlalchemy.orm import Session

from idp.accounts.models import User
from idp.revocation.models import LostDeviceCase
from idp.revocation.models import SuspensionReason
from idp.roles.assignments import held_roles
from idp.roles.models import Unit
from idp.roles.periods import thai_date
from thai_format import format_date
from thai_format import format_time

_THAI_DIGITS = str.maketrans("0123456789", "๐๑๒๓๔๕๖๗๘๙")
_ROLES_TH = {
    "recorder": "ผู้บันทึก",
    "approve-1": "ผู้อนุมัติเบิกเงิน (อนุมัติ ๑)",
    "approve-2": "ผู้อนุมัติจ่ายเงิน (อนุมัติ ๒)",
}
_WHAT_HAPPENED = {SuspensionReason.LOST: "สูญหาย", SuspensionReason.STOLEN: "ถูกโจรกรรม"}
_REFERENCE = "หนังสือกระทรวงการคลัง ด่วนที่สุด ที่ กค ๐๔๐๒.๒/ว ๒๔ ลงวันที่ ๖ กุมภาพันธ์ ๒๕๖๘"
# Thai puts no spaces between words: "|" marks where a line may break (a zero-width space,
# which the PDF's text keeps and readers ignore).
_BREAK = "\u200b"
LETTER_TITLE = "หนังสือแจ้งโทรศัพท์ที่เชื่อมต่อกับ Soft Token สูญหาย"


def _words(text: str) -> str:
    return text.replace("|", _BREAK)


def _for_pdf(text: str) -> str:
    """SARA AM is shaped into two glyphs of which only the first would carry the character in
    the PDF's text; written as its compatibility decomposition (NIKHAHIT + SARA AA, the same
    to the eye and under NFKC) every glyph carries its own."""
    return text.replace("\u0e33", "\u0e4d\u0e32")


@dataclass(frozen=True)
class CgdContact:
    """Where CGD (กองระบบการคลังภาครัฐ) is reached (the Ministry's letter, ข้อ ๙)."""

    phone: str
    line: str
    email: str
    address: str


@dataclass(frozen=True)
class LetterFacts:
    case_id: str
    unit_code: str
    unit_name: str
    person_name: str
    username: str
    roles: tuple[str, ...]
    reason: SuspensionReason
    lost_on: date
    lost_at: datetime | None
    reported_at: datetime
    letter_due: date
    written_on: date
    signer_name: str | None  # the head of unit downloading it; else a line to sign on


def letter_facts(
    db: Session, case: LostDeviceCase, person: User, *, signer: User | None, now: datetime
) -> LetterFacts:
    """What the letter says, from the case, the person whose phone it was and their unit."""
    unit = db.get(Unit, person.unit_code) if person.unit_code else None
    today = thai_date(now)
    roles = tuple(
        dict.fromkeys(
            held.role
            for held in held_roles(db, person.id, today)
            if unit is None or held.unit == unit.code
        )
    )
    return LetterFacts(
        case_id=case.id,
        unit_code=unit.code if unit else (person.unit_code or ""),
        unit_name=unit.name_th if unit else "",
        person_name=person.display_name("th"),
        username=person.username,
        roles=roles,
        reason=case.reason,
        lost_on=case.lost_on,
        lost_at=case.lost_at,
        reported_at=case.reported_at,
        letter_due=case.letter_due or today,
        written_on=today,
        signer_name=signer.display_name("th") if signer else None,
    )


def thai_digits(text: str) -> str:
    """Official letters write numbers in Thai digits (ระเบียบงานสารบรรณ)."""
    return text.translate(_THAI_DIGITS)


def _day(day: date) -> str:
    return thai_digits(format_date(day, "th", long=True))


def _moment(moment: datetime) -> str:
    return thai_digits(f"{format_date(moment, 'th', long=True)} เวลา {format_time(moment, 'th')}")


def letter_paragraphs(facts: LetterFacts) -> list[str]:
    """The body, paragraph by paragraph (also what a test reads back from the PDF)."""
    unit = f"{facts.unit_name} (รหัสหน่วยงาน {thai_digits(facts.unit_code)})".strip()
    roles = " ".join(_ROLES_TH.get(role, role) for role in facts.roles)
    duty = f" ในฐานะ{roles}" if roles else ""
    lost = _moment(facts.lost_at) if facts.lost_at else _day(facts.lost_on)
    happened = _WHAT_HAPPENED.get(facts.reason, "สูญหาย")
    return [
        _words(
            "ตาม|หนังสือ|ที่|อ้างถึง ข้อ ๔ กำหนด|ให้ กรณี|โทรศัพท์|ที่|เชื่อมต่อ|กับ "
            "Soft Token สูญหาย ให้|หัวหน้า|หน่วยงาน|ผู้เบิก|มี|หนังสือ|แจ้ง|กรมบัญชีกลาง "
            "ภายใน ๓ วันทำการ นับ|จาก|วันที่|โทรศัพท์|ที่|เชื่อมต่อ|กับ Soft Token "
            "สูญหาย นั้น"
        ),
        _words(f"{unit} ขอ|แจ้ง|ว่า โทรศัพท์|ที่|เชื่อมต่อ|กับ Soft Token ของ ")
        + f"{facts.person_name} (รหัสผู้ใช้งาน {facts.username}) "
        + _words(f"ผู้|มี|สิทธิ|เข้า|ปฏิบัติ|งาน|ใน|ระบบ New GFMIS Thai{duty} ")
        + f"ได้{happened} เมื่อวันที่ {lost} "
        + _words("และ|ได้|แจ้ง|ระงับ|สิทธิ|การ|ใช้|งาน Soft Token ดังกล่าว|แล้ว ")
        + f"เมื่อวันที่ {_moment(facts.reported_at)} (เลขที่เรื่อง {facts.case_id})",
        "จึงเรียนมาเพื่อโปรดทราบ",
    ]


def build_letter_pdf(facts: LetterFacts, contact: CgdContact, *, font_dir: Path) -> bytes:
    """The letter as an A4 PDF, Sarabun embedded (subset), Thai shaped with HarfBuzz."""
    pdf = FPDF(format="A4")
    pdf.set_title(LETTER_TITLE)
    pdf.set_creator("Soft Token IdP")
    pdf.add_font("Sarabun", "", str(font_dir / "Sarabun-Regular.ttf"))
    pdf.add_font("Sarabun", "B", str(font_dir / "Sarabun-Bold.ttf"))
    pdf.set_text_shaping(True)  # tone marks over vowels sit right only when shaped
    pdf.set_margins(left=30, top=25, right=20)  # the margins of Thai official letters
    pdf.set_auto_page_break(auto=True, margin=20)
    pdf.add_page()
    pdf.set_font("Sarabun", size=16)
    line = 8.0

    def text(value: str, *, align: str = "L", indent: float = 0, bold: bool = False) -> None:
        pdf.set_font("Sarabun", "B" if bold else "", 16)
        pdf.set_x(pdf.l_margin + indent)
        pdf.multi_cell(0, line, _for_pdf(value), align=align, new_x="LMARGIN", new_y="NEXT")

    text("ที่ ........................", bold=False)
    pdf.set_y(pdf.get_y() - line)
    text(facts.unit_name or "หน่วยงานผู้เบิก", align="R")
    pdf.ln(2)
    text(_day(facts.written_on), indent=75)
    pdf.ln(2)
    text("เรื่อง  แจ้งโทรศัพท์ที่เชื่อมต่อกับ Soft Token สูญหาย")
    text("เรียน  ผู้อำนวยการกองระบบการคลังภาครัฐ กรมบัญชีกลาง")
    text(f"อ้างถึง  {_REFERENCE}")
    pdf.ln(2)
    for paragraph in letter_paragraphs(facts):
        pdf.set_x(pdf.l_margin)
        pdf.multi_cell(
            0, line, " " * 10 + _for_pdf(paragraph), align="L", new_x="LMARGIN", new_y="NEXT"
        )
        pdf.ln(1)
    pdf.ln(4)
    text("ขอแสดงความนับถือ", indent=75)
    pdf.ln(14)
    signer = facts.signer_name or " " * 40
    text(f"({signer})", indent=65)
    text("หัวหน้าหน่วยงานผู้เบิก", indent=70)
    pdf.ln(10)
    pdf.set_font("Sarabun", size=14)
    footer = [
        facts.unit_name or "หน่วยงานผู้เบิก",
        "โทร. ........................",
        f"(ส่งถึงกรมบัญชีกลาง {thai_digits(contact.address)} หรือไปรษณีย์อิเล็กทรอนิกส์ "
        f"{contact.email} ภายในวันที่ {_day(facts.letter_due)})",
    ]
    for value in footer:
        pdf.multi_cell(0, 7, _for_pdf(value), align="L", new_x="LMARGIN", new_y="NEXT")
    return bytes(pdf.output())
