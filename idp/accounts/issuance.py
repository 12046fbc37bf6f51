"""Issuing accounts as the Ministry's letter describes: a CGD or treasury administrator
creates the user (citizen ID, names, unit) and hands over a username and a temporary password,
shown once; legacy GFMS Token Key holders are flagged and issued the same way. One at a time or
from a CSV file, with a report per row."""

from __future__ import annotations

import csv
import io
import logging
import re
import secrets
import unicodedata
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from idp.accounts import citizen_id as citizen_ids
from idp.accounts.models import User
from idp.accounts.service import Accounts
from idp.accounts.service import get_user_by_username
from idp.audit.service import AuditContext
from idp.audit.service import record
from idp.errors import IdpError
from idp.roles.authority import Authority
from idp.roles.units import get_unit
from idp.store.secrets import DataCipher
from idp.text import is_plain

log = logging.getLogger(__name__)

# Unambiguous when read aloud or copied from paper: no 0/O, 1/l/I.
_ALPHABET = "23456789abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ"
_THAI_DIGITS = str.maketrans("๐๑๒๓๔๕๖๗๘๙", "0123456789")
CSV_COLUMNS = (
    "citizen_id",
    "given_name_th",
    "family_name_th",
    "given_name_en",
    "family_name_en",
    "unit_code",
    "email",
    "legacy_token_key",
    "username",
)
MAX_IMPORT_ROWS = 5000
IMPORT_MAX_BYTES = 2 * 1024 * 1024


class AccountIssueError(IdpError):
    code = "invalid_account"


class CitizenIdTakenError(AccountIssueError):
    code = "citizen_id_taken"
    message = "An account already exists for that citizen ID."


class NamesRequiredError(AccountIssueError):
    code = "names_required"
    message = "Give the Thai given name and family name."


class InvalidFieldError(AccountIssueError):
    code = "invalid_field"
    message = (
        "A field is too long or holds characters it may not: names up to 100 characters, "
        "e-mail up to 254, a username of 3 to 64 lower-case letters, digits, dots, dashes or "
        "underscores."
    )


class ImportFileError(AccountIssueError):
    code = "invalid_import_file"
    message = "The file must be UTF-8 CSV with the columns " + ", ".join(CSV_COLUMNS) + "."


def temporary_password() -> str:
    """Four groups of four (about 92 bits): typed once, at the first login."""
    return "-".join("".join(secrets.choice(_ALPHABET) for _ in range(4)) for _ in range(4))


@dataclass(frozen=True)
class NewAccount:
    citizen_id: str
    given_name_th: str
    family_name_th: str
    unit_code: str
    given_name_en: str = ""
    family_name_en: str = ""
    email: str | None = None
    legacy_token_key: bool = False
    username: str | None = None  # generated from the English names when not given


@dataclass(frozen=True)
class IssuedAccount:
    username: str
    temporary_password: str  # shown once, never stored in the clear
    sub: str


@dataclass(frozen=True)
class RowReport:
    row: int  # the line in the file, the header being line 1
    issued: IssuedAccount | None
    error: str | None = None  # a code, with ``message`` for people
    message: str | None = None


class AccountIssuance:
    """Accounts issued by administrators, one at a time or from a file."""

    def __init__(self, accounts: Accounts, cipher: DataCipher) -> None:
        self._accounts = accounts
        self._cipher = cipher

    def issue_account(
        self,
        db: Session,
        by: Authority,
        account: NewAccount,
        *,
        now: datetime,
        actor: str | None,
        audit: AuditContext,
    ) -> IssuedAccount:
        """Raises IdpError (each subclass says what is wrong); nothing is written then."""
        unit = get_unit(db, account.unit_code)
        by.require(by.may_manage(unit))
        given_th, family_th = account.given_name_th.strip(), account.family_name_th.strip()
        if not given_th or not family_th:
            raise NamesRequiredError()
        _check_fields(account)
        number = citizen_ids.validate(account.citizen_id.translate(_THAI_DIGITS))
        if db.scalar(
            select(User.id).where(
                User.citizen_id_hash == self._cipher.keyed_hash(number, purpose="citizen_id")
            )
        ):
            raise CitizenIdTakenError()
        username = account.username or _new_username(db, account)
        password = temporary_password()
        user = self._accounts.create_user(
            db,
            username=username,
            password=password,
            now=now,
            temporary=True,
            citizen_id=number,
            given_name_th=given_th,
            family_name_th=family_th,
            given_name_en=account.given_name_en.strip(),
            family_name_en=account.family_name_en.strip(),
            email=(account.email or "").strip() or None,
            actor=actor,
            context=audit,
        )
        user.unit_code = unit.code
        user.legacy_token_key = account.legacy_token_key
        record(
            db,
            "account.issued",
            now=now,
            actor=actor,
            context=audit,
            user=user.sub,
            unit=unit.code,
            legacy_token_key=account.legacy_token_key,
        )
        return IssuedAccount(username=user.username, temporary_password=password, sub=user.sub)

    def import_accounts(
        self,
        db: Session,
        by: Authority,
        content: bytes,
        *,
        now: datetime,
        actor: str | None,
        audit: AuditContext,
    ) -> list[RowReport]:
        """Issue an account per row; a bad row is reported and skipped, the others are issued.

        Raises:
            ImportFileError: the file itself is unreadable (nothing is issued).
        """
        try:
            text = content.decode("utf-8-sig")  # spreadsheets write a BOM
            reader = csv.DictReader(io.StringIO(text))
            if reader.fieldnames is None or not set(CSV_COLUMNS[:6]) <= set(reader.fieldnames):
                raise ImportFileError()
            rows = list(reader)
        except (UnicodeDecodeError, csv.Error) as exc:
            raise ImportFileError() from exc
        if len(rows) > MAX_IMPORT_ROWS:
            raise ImportFileError(f"At most {MAX_IMPORT_ROWS} rows per file.")
        reports = []
        for line, row in enumerate(rows, start=2):
            try:
                with db.begin_nested():
                    issued = self.issue_account(
                        db, by, _account_of(row), now=now, actor=actor, audit=audit
                    )
                reports.append(RowReport(row=line, issued=issued))
            except IdpError as error:
                reports.append(
                    RowReport(row=line, issued=None, error=error.code, message=error.message)
                )
            except SQLAlchemyError:
                # The row's savepoint is rolled back; the rest of the file goes on.
                log.warning("idp.accounts.import_row_refused", extra={"row": line})
                reports.append(
                    RowReport(
                        row=line,
                        issued=None,
                        error=InvalidFieldError.code,
                        message=InvalidFieldError.message,
                    )
                )
        record(
            db,
            "account.import",
            now=now,
            actor=actor,
            context=audit,
            rows=len(rows),
            issued=sum(1 for r in reports if r.issued),
        )
        return reports


_USERNAME = re.compile(r"[a-z0-9][a-z0-9._-]{2,63}")


def _check_fields(account: NewAccount) -> None:
    names = (
        account.given_name_th,
        account.family_name_th,
        account.given_name_en,
        account.family_name_en,
    )
    if not all(is_plain(name, limit=100) for name in names):
        raise InvalidFieldError()
    if account.email is not None and not (
        is_plain(account.email, limit=254) and "@" in account.email
    ):
        raise InvalidFieldError()
    if account.username is not None and not _USERNAME.fullmatch(account.username.casefold()):
        raise InvalidFieldError()


def _account_of(row: dict[str, str | None]) -> NewAccount:
    def value(name: str) -> str:
        return (row.get(name) or "").strip()

    legacy = value("legacy_token_key").casefold()
    if legacy not in ("", "0", "1", "yes", "no", "true", "false", "y", "n", "ใช่", "ไม่ใช่"):
        raise AccountIssueError("legacy_token_key must be yes or no.")
    return NewAccount(
        citizen_id=value("citizen_id"),
        given_name_th=value("given_name_th"),
        family_name_th=value("family_name_th"),
        given_name_en=value("given_name_en"),
        family_name_en=value("family_name_en"),
        unit_code=value("unit_code"),
        email=value("email") or None,
        legacy_token_key=legacy in ("1", "yes", "true", "y", "ใช่"),
        username=value("username") or None,
    )


def _new_username(db: Session, account: NewAccount) -> str:
    """given.f from the English names (somchai.j, somchai.j2, ...), or u + digits."""
    given = _ascii_letters(account.given_name_en)
    family = _ascii_letters(account.family_name_en)
    base = f"{given}.{family[:1]}" if given and family else ""
    for attempt in range(1, 100):
        candidate = (base + (str(attempt) if attempt > 1 else "")) if base else _random_name()
        if get_user_by_username(db, candidate) is None:
            return candidate
    return _random_name()


def _ascii_letters(name: str) -> str:
    folded = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode().casefold()
    return re.sub(r"[^a-z]", "", folded)[:40]


def _random_name() -> str:
    return "u" + "".join(secrets.choice("0123456789") for _ in range(9))
