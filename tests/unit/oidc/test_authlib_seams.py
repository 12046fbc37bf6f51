"""The Authlib internals the engine overrides are still there, and still used where we expect:
an upgrade that renames or stops calling one fails here, not in production."""

from __future__ import annotations

import importlib
import inspect
import re

import pytest

from idp.oidc.grants import OpenIDAuthorization
from idp.oidc.server import AUTHLIB_OPENID_HOOKS
from idp.oidc.server import AUTHLIB_SEAMS


def authlib_class(path: str) -> type:
    module, _, name = path.partition(":")
    return getattr(importlib.import_module(module), name)  # type: ignore[no-any-return]


@pytest.mark.parametrize(("path", "member", "caller"), AUTHLIB_SEAMS)
def test_each_overridden_internal_is_still_used_by_authlib(path, member, caller):
    base = authlib_class(path)
    source = inspect.getsource(getattr(base, caller))
    assert re.search(rf"\bself\.{re.escape(member)}\b", source), (
        f"{path}.{caller} no longer uses {member}: review the override"
    )
    if caller != "__init__":  # an attribute set by the constructor has no class member
        assert callable(getattr(base, member, None)), f"{path}.{member} is gone"


def test_openid_code_registers_the_hooks_we_keep_and_skip():
    base = authlib_class("authlib.oidc.core:OpenIDCode")
    registered = re.findall(r'register_hook\(\s*"([a-z_]+)"', inspect.getsource(base.__call__))
    assert tuple(registered) == AUTHLIB_OPENID_HOOKS
    ours = re.findall(
        r'register_hook\(\s*"([a-z_]+)"', inspect.getsource(OpenIDAuthorization.__call__)
    )
    assert tuple(ours) == AUTHLIB_OPENID_HOOKS[1:]


def test_the_seams_are_listed_at_the_top_of_the_server_module():
    import idp.oidc.server as server

    doc = server.__doc__ or ""
    for _path, member, _caller in AUTHLIB_SEAMS:
        assert f"``{member}``" in doc, f"{member} is not documented in idp/oidc/server.py"
