"""Domain errors of per-login confirmation."""

from __future__ import annotations

from idp.errors import IdpError


class PushUnavailableError(IdpError):
    """The relay could not take the challenge (down, slow, refusing): offer the TOTP code."""

    code = "push_unavailable"
    message = "Your phone cannot be reached right now. Use the code from the app instead."


class ChallengePendingError(IdpError):
    """One pending challenge per user: another sign-in is waiting on the phone."""

    code = "challenge_pending"
    message = "Another sign-in is waiting for confirmation on your phone."


class PushLimitError(IdpError):
    """Too many pushes, or a back-off after denials: no new push for now."""

    code = "push_limited"
    message = "Too many confirmation requests. Wait, or use the code from the app."

    def __init__(self, retry_after: int) -> None:
        super().__init__()
        self.retry_after = retry_after


class PushPausedError(IdpError):
    """Several pushes in a row were declined: none are sent until a login succeeds otherwise."""

    code = "push_paused"
    message = "Requests to your phone are paused. Use the code from the app."


class AnswerRejectedError(IdpError):
    """An answer that is not the bound phone's answer to this challenge: ignored."""

    code = "invalid_answer"
    message = "The answer could not be verified."


class TotpRejectedError(IdpError):
    code = "invalid_code"
    message = "The code is not correct, was already used, or too many codes were tried."


class NoActiveDeviceError(IdpError):
    code = "no_device"
    message = "No phone is bound to this account."
