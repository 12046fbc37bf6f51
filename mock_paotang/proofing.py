"""What the Paotang app checks: the card against the civil registration, then the face.

Each refusal has its own code and message, as the real app tells the citizen why.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from mock_paotang import registry
from mock_paotang.registry import Citizen


@dataclass(frozen=True)
class RefusedError(Exception):
    code: str
    message_th: str
    message_en: str


BAD_CHECK_DIGIT = RefusedError(
    "bad_check_digit",
    "เลขประจำตัวประชาชนไม่ถูกต้อง (หลักตรวจสอบไม่ตรง) กรุณาตรวจสอบอีกครั้ง",
    "The citizen ID is not valid (its check digit is wrong). Please check it.",
)
BAD_LASER_FORMAT = RefusedError(
    "bad_laser_format",
    "เลขหลังบัตรต้องมีตัวอักษรภาษาอังกฤษ 2 ตัวและตัวเลข 10 หลัก เช่น JT0-1234567-89",
    "The laser code is two letters and ten digits, as printed: JT0-1234567-89.",
)
UNKNOWN_CITIZEN = RefusedError(
    "unknown_citizen",
    "ไม่พบข้อมูลบัตรประจำตัวประชาชนนี้ในทะเบียนราษฎร",
    "This ID card is not found in the civil registration.",
)
LASER_MISMATCH = RefusedError(
    "laser_mismatch",
    "ข้อมูลบัตรไม่ถูกต้อง: เลขหลังบัตรไม่ตรงกับบัตรที่ออกให้ (สถานะบัตร: ไม่ปกติ)",
    "The card data is not valid: the laser code does not match the issued card.",
)
CARD_EXPIRED = RefusedError(
    "card_expired",
    "บัตรประจำตัวประชาชนหมดอายุแล้ว กรุณาต่ออายุบัตรที่สำนักทะเบียน",
    "The ID card has expired. Please renew it at a registration office.",
)
FACE_MISMATCH = RefusedError(
    "face_mismatch",
    "ใบหน้าไม่ตรงกับภาพในบัตร กรุณาลองใหม่ในที่ที่มีแสงสว่างเพียงพอ หรือติดต่อสาขาธนาคาร",
    "The face does not match the card photo. Try again in good light, or visit a branch.",
)
DOPA_UNAVAILABLE = RefusedError(
    "dopa_unavailable",
    "ไม่สามารถตรวจสอบกับกรมการปกครองได้ในขณะนี้ กรุณาลองใหม่ภายหลัง",
    "The civil registration cannot be reached right now. Please try again later.",
)

BY_CODE = {
    r.code: r
    for r in (
        BAD_CHECK_DIGIT, BAD_LASER_FORMAT, UNKNOWN_CITIZEN, LASER_MISMATCH,
        CARD_EXPIRED, FACE_MISMATCH, DOPA_UNAVAILABLE,
    )
}  # fmt: skip


def verify(
    citizen_id: str, laser_code: str, face: str, *, today: date, forced: str | None
) -> Citizen:
    """Check the card and the face as the app does; return the verified citizen.

    Raises:
        RefusedError: the first check that failed.
    """
    number = registry.normalise_citizen_id(citizen_id)
    if not registry.has_valid_check_digit(number):
        raise BAD_CHECK_DIGIT
    laser = registry.normalise_laser_code(laser_code)
    if not registry.is_laser_code(laser):
        raise BAD_LASER_FORMAT
    if forced == "dopa_unavailable":
        raise DOPA_UNAVAILABLE
    citizen = registry.find(number)
    if citizen is None or forced == "unknown_citizen":
        raise UNKNOWN_CITIZEN
    if laser != citizen.laser_code or forced == "laser_mismatch":
        raise LASER_MISMATCH
    if citizen.card_expires < today or forced == "card_expired":
        raise CARD_EXPIRED
    if face != "match" or forced == "face_mismatch":
        raise FACE_MISMATCH
    return citizen
