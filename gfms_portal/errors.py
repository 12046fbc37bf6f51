"""The portal's domain errors: a stable snake_case ``code`` and a safe message, no HTTP."""

from __future__ import annotations


class PortalError(Exception):
    code = "portal_error"

    def __init__(self, detail: str = "") -> None:
        super().__init__(detail or self.code)
        self.detail = detail


class IdpUnavailableError(PortalError):
    code = "idp_unavailable"


class InvalidTokenError(PortalError):
    code = "invalid_token"


class EvidenceInvalidError(PortalError):
    code = "evidence_invalid"


class ConfirmationMismatchError(PortalError):
    code = "confirmation_mismatch"


class SeparationOfDutiesError(PortalError):
    code = "separation_of_duties"


class NotAllowedError(PortalError):
    code = "not_allowed"


class EditingClosedError(NotAllowedError):
    """An approval was signed: the request is what the approvers confirmed, for good."""

    code = "editing_closed"


class InvalidDocumentError(PortalError):
    code = "invalid_document"


class UntrustedKeyError(PortalError):
    code = "untrusted_key"
