"""Domain errors of accounts, passwords and sessions."""

from __future__ import annotations

from idp.errors import IdpError


class InvalidCredentialsError(IdpError):
    """Wrong username or password, or the account may not log in now.

    One error for every cause (unknown user, wrong password, throttled, locked, suspended), so
    the answer reveals nothing about the account.
    """

    code = "invalid_credentials"
    message = "The username or password is incorrect, or too many attempts were made."


class AttemptThrottledError(IdpError):
    """Too many failed attempts of the account: this one is not evaluated."""

    code = "throttled"
    message = "Too many failed attempts. Wait a moment and try again."


class PasswordPolicyError(IdpError):
    code = "password_policy"

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class UsernameTakenError(IdpError):
    code = "username_taken"
    message = "That username is already in use."


class CitizenIdError(IdpError):
    code = "invalid_citizen_id"
    message = "The citizen ID must be 13 digits with a valid check digit."


class UnknownUserError(IdpError):
    code = "unknown_user"
    message = "No such user."
