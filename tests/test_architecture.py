"""Import rules: domain packages never touch the web, the mocks and the
portal never import the IdP. Parsed with ast, so nothing is imported to check it."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOMAIN_PACKAGES = ("accounts", "enrol", "mfa", "roles", "revocation", "audit", "store")
WEB_MODULES = ("flask", "werkzeug", "flask_babel", "authlib", "idp.web", "idp.api")
# Authlib's client side is an HTTP client (Paotang proofing); its server side is the web layer.
ALLOWED_AUTHLIB = (
    "authlib.integrations.requests_client",
    "authlib.integrations.base_client",
    "authlib.oauth2.rfc7636",
)
# Domain code may use the OIDC package's tables, never its HTTP machinery.
ALLOWED_OIDC = ("idp.oidc.models",)
SEPARATE_PROCESSES = ("mock_paotang", "mock_nexus", "gfms_portal")


def imports_of(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
    return names


def matches(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def test_domain_packages_do_not_import_the_web_layer():
    offences = []
    for package in DOMAIN_PACKAGES:
        for path in sorted((ROOT / "idp" / package).rglob("*.py")):
            for name in imports_of(path):
                if (matches(name, WEB_MODULES) and not matches(name, ALLOWED_AUTHLIB)) or (
                    matches(name, ("idp.oidc",)) and not matches(name, ALLOWED_OIDC)
                ):
                    offences.append(f"{path.relative_to(ROOT)} imports {name}")
    assert not offences, "domain code must stay free of HTTP:\n" + "\n".join(offences)


def test_separate_processes_never_import_the_idp():
    offences = []
    for package in SEPARATE_PROCESSES:
        for path in sorted((ROOT / package).rglob("*.py")):
            offences += [
                f"{path.relative_to(ROOT)} imports {name}"
                for name in imports_of(path)
                if matches(name, ("idp",))
            ]
    assert not offences, "they talk HTTP, like the real systems:\n" + "\n".join(offences)


def test_only_settings_reads_the_environment():
    offences = []
    for path in sorted((ROOT / "idp").rglob("*.py")):
        if path.name in ("settings.py", "cli.py", "demo.py"):
            continue  # the launchers pass the environment on to the processes they start
        source = path.read_text(encoding="utf-8")
        if "os.environ" in source or "os.getenv" in source:
            offences.append(str(path.relative_to(ROOT)))
    assert not offences, "read settings, not the environment: " + ", ".join(offences)


def test_the_shared_formatting_package_imports_no_process():
    offences = [
        f"{path.relative_to(ROOT)} imports {name}"
        for path in sorted((ROOT / "thai_format").rglob("*.py"))
        for name in imports_of(path)
        if matches(name, ("idp", *SEPARATE_PROCESSES))
    ]
    assert not offences, "thai_format serves every process and belongs to none:\n" + "\n".join(
        offences
    )


# The protocol engine's one tie to Flask is Authlib's Flask adapter, in its server module.
ENGINE_FLASK_NAMES = {"server.py": {"Flask", "request"}}


def test_the_protocol_engine_has_no_pages():
    """``idp.oidc`` is a protocol engine: no views, templates or browser session, and nothing
    of the web layer; the interaction lives with the pages and resumes it."""
    offences = []
    for path in sorted((ROOT / "idp" / "oidc").rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        allowed = ENGINE_FLASK_NAMES.get(path.name, set())
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [(alias.name, None) for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [(node.module, alias.name) for alias in node.names]
            else:
                continue
            for module, name in names:
                where = f"{path.relative_to(ROOT)} imports {module}" + (f".{name}" if name else "")
                web = matches(module, ("idp.web", "idp.api", "werkzeug", "flask_babel"))
                view = matches(module, ("flask",)) and (module != "flask" or name not in allowed)
                if web or view:
                    offences.append(where)
    assert not offences, "the protocol engine must stay free of pages:\n" + "\n".join(offences)
