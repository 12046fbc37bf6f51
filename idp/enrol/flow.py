"""The registration as a state machine: one transition function refuses illegal moves."""

from __future__ import annotations

import enum

from idp.errors import IdpError


class EnrolmentState(enum.StrEnum):
    STARTED = "started"
    PROOFING = "proofing"  # sent to Paotang, answer awaited
    PROOFED = "proofed"  # identity verified and matched to the account
    BINDING = "binding"  # an activation code was shown; the phone has not registered yet
    COMPLETED = "completed"  # the phone is bound
    REJECTED = "rejected"  # the verified person is not the account's: stops here


ALLOWED: dict[EnrolmentState, frozenset[EnrolmentState]] = {
    EnrolmentState.STARTED: frozenset({EnrolmentState.PROOFING}),
    # A new attempt may replace an unanswered one (the user came back later).
    EnrolmentState.PROOFING: frozenset(
        {EnrolmentState.PROOFING, EnrolmentState.PROOFED, EnrolmentState.REJECTED}
    ),
    # Proofing is valid for a while only: past that, the user proves who they are again.
    EnrolmentState.PROOFED: frozenset({EnrolmentState.BINDING, EnrolmentState.PROOFING}),
    # A new code may replace a lost or expired one.
    EnrolmentState.BINDING: frozenset(
        {EnrolmentState.BINDING, EnrolmentState.COMPLETED, EnrolmentState.PROOFING}
    ),
    # A new phone (after loss or replacement) needs fresh proofing; the service allows it
    # only once no phone is active.
    EnrolmentState.COMPLETED: frozenset({EnrolmentState.PROOFING}),
    EnrolmentState.REJECTED: frozenset(),
}


class InvalidTransitionError(IdpError):
    code = "invalid_transition"
    message = "This registration step is not possible now."


def advance(current: EnrolmentState, target: EnrolmentState) -> EnrolmentState:
    """Return ``target`` if the registration may move there from ``current``.

    Raises:
        InvalidTransitionError
    """
    if target not in ALLOWED[current]:
        raise InvalidTransitionError()
    return target
