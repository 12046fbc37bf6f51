from __future__ import annotations

import pytest

from idp.store.secrets import DataCipher
from idp.store.secrets import DecryptionError


def test_round_trip_and_fresh_nonce_each_time(cipher):
    one = cipher.encrypt(b"1101700230074", context="users.citizen_id")
    two = cipher.encrypt(b"1101700230074", context="users.citizen_id")
    assert one != two
    assert cipher.decrypt(one, context="users.citizen_id") == b"1101700230074"


def test_ciphertext_is_bound_to_its_context(cipher):
    token = cipher.encrypt(b"secret", context="signing_keys:a")
    with pytest.raises(DecryptionError):
        cipher.decrypt(token, context="signing_keys:b")


def test_altered_ciphertext_or_wrong_key_fails(cipher):
    token = cipher.encrypt(b"secret", context="c")
    altered = token[:-2] + ("A" if token[-2] != "A" else "B") + token[-1]
    with pytest.raises(DecryptionError):
        cipher.decrypt(altered, context="c")
    with pytest.raises(DecryptionError):
        DataCipher(b"\x01" * 32).decrypt(token, context="c")


def test_keyed_hashes_differ_by_purpose_and_are_stable(cipher):
    a = cipher.keyed_hash("1101700230074", purpose="citizen_id")
    assert a == cipher.keyed_hash("1101700230074", purpose="citizen_id")
    assert a != cipher.keyed_hash("1101700230074", purpose="client_secret")
    assert len(a) == 64
