"""Domain errors of registration."""

from __future__ import annotations

from idp.errors import IdpError


class KycUnavailableError(IdpError):
    """Paotang did not answer in time or answered with a server error: try again later."""

    code = "kyc_unavailable"
    message = "The identity verification service is not available. Try again later."


class KycResponseInvalidError(IdpError):
    """The answer could not have come from Paotang for this attempt (signature, audience,
    nonce, freshness, shape): nothing in it is believed."""

    code = "kyc_response_invalid"
    message = "The identity verification answer could not be trusted."


class KycRefusedError(IdpError):
    """Paotang did not verify the person (refused card or face, or the user cancelled)."""

    code = "kyc_refused"
    message = "Paotang did not verify your identity."

    def __init__(self, reason: str) -> None:
        super().__init__()
        self.reason = reason


class IdentityMismatchError(IdpError):
    """The verified person is not the person the account was issued to."""

    code = "identity_mismatch"
    message = "The verified identity does not match this account."


class RegistrationClosedError(IdpError):
    code = "registration_closed"
    message = "Registration is not open now."


class ProofingStateError(IdpError):
    """The answer does not belong to a proofing attempt of this user that is under way."""

    code = "proofing_state"
    message = "This identity verification is not the one under way. Start again."
