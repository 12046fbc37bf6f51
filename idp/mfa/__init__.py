"""The authenticators that confirm a login: the bound phone (its key and TOTP seed)."""
