"""Thai (the default) and English for the portal's pages: a small dictionary of the two
languages, Buddhist-era dates in Thai and amounts in baht."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

import thai_format

LANGUAGES = ("th", "en")

TEXT: dict[str, tuple[str, str]] = {
    "portal": ("ระบบ GFMS (จำลอง)", "GFMS portal (simulator)"),
    "login": ("เข้าสู่ระบบด้วย Soft Token", "Sign in with the Soft Token"),
    "logout": ("ออกจากระบบ", "Sign out"),
    "welcome": ("ยินดีต้อนรับ", "Welcome"),
    "logged_out": ("ออกจากระบบแล้ว", "You are signed out"),
    "your_roles": ("บทบาทของท่าน", "Your roles"),
    "no_roles": ("ท่านไม่มีบทบาทในระบบ GFMS วันนี้", "You hold no GFMS role today"),
    "unit": ("หน่วยงานผู้เบิก", "Disbursement unit"),
    "substitute_for": ("ปฏิบัติงานแทน", "acting for"),
    "role:recorder": ("ผู้บันทึก", "Recorder"),
    "role:approve-1": ("ผู้อนุมัติเบิกเงิน", "Approver of withdrawal"),
    "role:approve-2": ("ผู้อนุมัติจ่ายเงิน", "Approver of payment"),
    "documents": ("รายการขอเบิก", "Disbursement requests"),
    "report": ("รายงาน", "Report"),
    "new_document": ("บันทึกรายการขอเบิก", "Record a disbursement request"),
    "edit": ("แก้ไข", "Edit"),
    "save": ("บันทึก", "Save"),
    "number": ("เลขที่เอกสาร", "Document number"),
    "type": ("ประเภท", "Type"),
    "amount": ("จำนวนเงิน (บาท)", "Amount (THB)"),
    "payee": ("ผู้รับเงิน", "Payee"),
    "description": ("รายละเอียด", "Description"),
    "attachments": ("เอกสารแนบ", "Attachments"),
    "attachment_hint": ("PDF, PNG หรือ JPEG", "PDF, PNG or JPEG"),
    "recorder": ("ผู้บันทึก", "Recorded by"),
    "status": ("สถานะ", "Status"),
    "created_at": ("วันที่บันทึก", "Recorded on"),
    "signatures": ("ลายมือชื่ออิเล็กทรอนิกส์", "Electronic signatures"),
    "signed_at": ("ลงนามเมื่อ", "Signed on"),
    "confirmed_on_phone": ("ยืนยันบนโทรศัพท์แล้ว", "confirmed on the phone"),
    "approve-1": ("อนุมัติเบิกเงิน (ยืนยันบนโทรศัพท์)", "Approve withdrawal (confirm on phone)"),
    "approve-2": ("อนุมัติจ่ายเงิน (ยืนยันบนโทรศัพท์)", "Approve payment (confirm on phone)"),
    "export": ("ส่งออกชุดเอกสารพร้อมลายมือชื่อ", "Export the signed bundle"),
    "status:recorded": (
        "บันทึกแล้ว รอผู้มีสิทธิลงนามยื่นคำขอเบิก",
        "Recorded, awaiting the claimant's signature",
    ),
    "status:submitted": (
        "ยื่นคำขอเบิกแล้ว รอเจ้าหน้าที่การเงินตรวจสอบ",
        "Claim signed, awaiting the finance officer's check",
    ),
    "status:returned": ("ส่งกลับให้แก้ไข", "Sent back for correction"),
    "status:checked": ("ตรวจสอบแล้ว รออนุมัติเบิก", "Checked, awaiting withdrawal approval"),
    "role:claim": ("ผู้มีสิทธิยื่นคำขอเบิก", "Claimant"),
    "role:check": ("เจ้าหน้าที่การเงิน (ตรวจสอบแล้ว)", "Finance officer (checked)"),
    "claim": ("ลงนามยื่นคำขอเบิก (ยืนยันบนโทรศัพท์)", "Sign and submit the claim (confirm on phone)"),
    "check": ("ลงนามว่าตรวจสอบแล้ว (ยืนยันบนโทรศัพท์)", "Sign as checked (confirm on phone)"),
    "send_back": ("ส่งกลับให้แก้ไข", "Send back for correction"),
    "reason": ("เหตุผล", "Reason"),
    "claimant": ("ผู้มีสิทธิยื่นคำขอเบิก (ชื่อผู้ใช้)", "Claimant (username)"),
    "my_claims": ("คำขอเบิกของฉัน", "My claims"),
    "returned_notice": ("ส่งกลับให้ผู้ยื่นคำขอแก้ไขแล้ว", "Sent back to the claimant"),
    "signed_notice": ("ลงนามแล้ว", "Signed"),
    "type:other": ("ค่าใช้จ่ายอื่น", "Other expense"),
    "audit": ("ตรวจสอบเอกสารและลายมือชื่ออิเล็กทรอนิกส์", "Audit of documents and e-signatures"),
    "audit_scope": ("หน่วยงานที่ตรวจสอบได้", "Units in scope"),
    "retention": ("ระยะเวลาเก็บรักษา", "Retention"),
    "years": ("ปี", "years"),
    "period_start": ("ตั้งแต่วันที่", "From"),
    "period_end": ("ถึงวันที่", "To"),
    "export_period": ("ส่งออกชุดเอกสารทั้งหมดของช่วงเวลา", "Export every bundle of the period"),
    "kept_until": ("เก็บรักษาถึง", "Kept until"),
    "verified": ("ตรวจสอบลายมือชื่อถูกต้อง", "signature verifies"),
    "not_verified": ("ตรวจสอบลายมือชื่อไม่ผ่าน", "signature does NOT verify"),
    "status:withdrawal_approved": (
        "อนุมัติเบิกแล้ว รออนุมัติจ่าย",
        "Withdrawal approved, awaiting payment approval",
    ),
    "status:payment_approved": ("อนุมัติจ่ายแล้ว", "Payment approved"),
    "type:travel": ("ค่าใช้จ่ายในการเดินทางไปราชการ", "Travel expenses"),
    "type:meeting_allowance": ("ค่าเบี้ยประชุม", "Meeting allowance"),
    "type:housing_rent": ("ค่าเช่าบ้าน", "Housing rent"),
    "type:medical_welfare": ("ค่ารักษาพยาบาล", "Medical welfare"),
    "type:child_education_welfare": ("ค่าการศึกษาบุตร", "Child education welfare"),
    "type:training": ("ค่าใช้จ่ายในการฝึกอบรม", "Training"),
    "type:overtime": ("ค่าตอบแทนการปฏิบัติงานนอกเวลาราชการ", "Overtime"),
    "nothing": ("ไม่มีรายการ", "Nothing here"),
    "approved_notice": ("ลงนามอนุมัติแล้ว", "Approval signed"),
    "recorded_notice": ("บันทึกรายการแล้ว", "Request recorded"),
    "home": ("หน้าแรก", "Home"),
    "error": ("ไม่สามารถดำเนินการได้", "This could not be done"),
    "err:idp_unavailable": (
        "ระบบยืนยันตัวตนไม่พร้อมให้บริการชั่วคราว ข้อมูลที่บันทึกไว้ยังอยู่ครบ กรุณาลองใหม่ภายหลัง",
        "The sign-in service is unavailable for now. Nothing you recorded is lost; "
        "please try again later.",
    ),
    "err:invalid_token": (
        "การยืนยันตัวตนไม่ถูกต้องหรือหมดอายุ กรุณาเข้าสู่ระบบใหม่",
        "The sign-in was invalid or expired. Please sign in again.",
    ),
    "err:evidence_invalid": (
        "หลักฐานการยืนยันบนโทรศัพท์ไม่ถูกต้อง ไม่ได้ลงนาม",
        "The phone's confirmation evidence is invalid; nothing was signed.",
    ),
    "err:confirmation_mismatch": (
        "เอกสารหรือรายการที่ยืนยันไม่ตรงกับเอกสารปัจจุบัน ไม่ได้ลงนาม กรุณาอนุมัติใหม่",
        "What was confirmed is not the document as it is now; nothing was signed. "
        "Please approve again.",
    ),
    "err:separation_of_duties": (
        "ขัดหลักการแบ่งแยกหน้าที่: บุคคลเดียวลงนามได้เพียงหนึ่งในสี่ขั้นของเอกสาร"
        " (ยื่นคำขอ ตรวจสอบ อนุมัติเบิก อนุมัติจ่าย) รวมถึงการปฏิบัติงานแทน",
        "Separation of duties: one person gives at most one of a document's four signatures "
        "(claim, check, withdrawal, payment), substitutes included.",
    ),
    "err:not_allowed": (
        "ท่านไม่มีสิทธิ์ดำเนินการนี้ หรือเอกสารไม่อยู่ในสถานะที่ทำได้",
        "You may not do this, or the document is not in a state that allows it.",
    ),
    "err:editing_closed": (
        "แก้ไขรายการนี้ไม่ได้แล้ว เนื่องจากมีการลงนามอนุมัติแล้ว",
        "This request can no longer be edited: an approval was signed.",
    ),
    "err:invalid_document": ("ข้อมูลไม่ถูกต้อง", "The request is not valid"),
    "err:used": (
        "คำขอนี้ถูกใช้ไปแล้วหรือหมดอายุ ไม่มีการเปลี่ยนแปลงใด ๆ",
        "This request was already used or expired; nothing changed.",
    ),
    "err:denied": ("การยืนยันถูกปฏิเสธหรือยกเลิก", "The confirmation was denied or cancelled."),
    "err:session": ("กรุณาเข้าสู่ระบบ", "Please sign in."),
    "send_to_phone": ("ส่งไปยืนยันบนโทรศัพท์", "Send to my phone"),
    "phone_waiting": ("รอการยืนยันบนโทรศัพท์", "Waiting for your phone"),
    "phone_waiting_hint": (
        "เปิดแอปบนโทรศัพท์ของท่าน ตรวจสอบว่าข้อความตรงกับด้านล่าง แล้วกดอนุมัติ หน้านี้จะดำเนินการต่อเอง",
        "Open the app on your phone, check that it shows the message below, and approve. "
        "This page carries on by itself.",
    ),
    "binding_message": ("ข้อความยืนยัน", "Message on the phone"),
    "err:phone:denied": (
        "การยืนยันบนโทรศัพท์ถูกปฏิเสธ ไม่มีการลงนาม",
        "The approval was declined on the phone; nothing was signed.",
    ),
    "err:phone:expired": (
        "หมดเวลารอการยืนยันบนโทรศัพท์ ไม่มีการลงนาม กรุณาลองใหม่",
        "The phone was not answered in time; nothing was signed. Please try again.",
    ),
    "err:phone:refused": (
        "ส่งไปยังโทรศัพท์ไม่ได้ (ไม่มีโทรศัพท์ที่ใช้งานได้ หรือมีคำขอรอยืนยันอยู่) "
        "กรุณาลองใหม่ภายหลัง หรือยืนยันผ่านหน้าเข้าสู่ระบบ",
        "The request could not be sent to your phone (no active phone, or another request is "
        "waiting). Try again later, or confirm through the sign-in page.",
    ),
    "err:phone:failed": (
        "การยืนยันบนโทรศัพท์ไม่สำเร็จ ไม่มีการลงนาม",
        "The approval on the phone did not complete; nothing was signed.",
    ),
    "err:session:suspended": (
        "ท่านออกจากระบบแล้ว เนื่องจาก Soft Token ของท่านถูกระงับการใช้งาน "
        "หากท่านไม่ได้แจ้งระงับ กรุณาติดต่อเจ้าหน้าที่ช่วยเหลือ (helpdesk)",
        "You were signed out because your Soft Token was suspended. If you did not ask for "
        "this, please contact the helpdesk.",
    ),
    "err:session:ended": (
        "การเข้าสู่ระบบของท่านสิ้นสุดลงที่ระบบยืนยันตัวตน กรุณาเข้าสู่ระบบใหม่",
        "Your sign-in was ended at the identity provider. Please sign in again.",
    ),
    "err:session:timeout": (
        "หมดเวลาการใช้งาน กรุณาเข้าสู่ระบบใหม่",
        "Your session timed out. Please sign in again.",
    ),
    "err:csrf": ("แบบฟอร์มหมดอายุ กรุณาลองใหม่", "The form expired; please try again."),
    "err:not_found": ("ไม่พบ", "Not found"),
}


def translate(key: str, lang: str) -> str:
    pair = TEXT.get(key)
    if pair is None:
        return key
    return pair[0] if lang == "th" else pair[1]


def format_amount(value: str, lang: str) -> str:
    """1,234.50 บาท (or THB 1,234.50)."""
    text = f"{Decimal(value):,.2f}"
    return f"{text} บาท" if lang == "th" else f"THB {text}"


def format_date(moment: datetime | None, lang: str) -> str:
    """Thai time, as Thai government pages write it: ``2 ธ.ค. 2569 09.30 น.``."""
    return thai_format.format_datetime(moment, lang)
