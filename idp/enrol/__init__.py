"""One-time registration of the Soft Token: identity proofing with Paotang, then binding the
user's phone."""
