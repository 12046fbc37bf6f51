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


class ActivationCodeError(IdpError):
    """Unknown, expired or already used activation code (the same answer for each)."""

    code = "invalid_activation_code"
    message = "The activation code is not valid. Get a new one on the registration page."


class ProofingExpiredError(IdpError):
    code = "proofing_expired"
    message = "Your identity was verified too long ago. Verify it again, then bind your phone."


class BindingProofError(IdpError):
    """The phone's registration was not signed by the key it presents, or not for us."""

    code = "invalid_binding_proof"
    message = "The phone's registration could not be verified."


class AlreadyBoundError(IdpError):
    """One active phone per user; a new one needs the old one suspended and fresh proofing."""

    code = "already_bound"
    message = "A phone is already bound to this account."


class ProofingStateError(IdpError):
    """The answer does not belong to a proofing attempt of this user that is under way."""

    code = "proofing_state"
    message = "This identity verification is not the one under way. Start again."


class TooManyAttemptsError(IdpError):
    code = "slow_down"
    message = "Too many wrong activation codes from this address. Wait and try again."
